"""The web console's routes: the page and its assets, and the two reads it needs beyond the API's own.

    GET /console                      the console (one page; its views are ``#/explorer``, ``#/vehicle/VIN``, ...)
    GET /console/assets/{name}        its scripts, styles and vendored libraries (uPlot, Cytoscape)
    GET /v1/blocks?before=&limit=     the newest blocks' headers and attestations, newest first
    GET /v1/network                   this node and each peer named in network.json: status and checkpoint

The console holds no data of its own and renders nothing on the server: it signs each request
with the key the user loads into the page (as the start page does) and checks what it is served
against the trust anchor in the browser, so a node cannot show it anything it cannot prove.
``/v1/network`` relays what the peers say, but a peer's checkpoint carries its node's signatures,
so the page judges it as if it had fetched it itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from importlib import resources
from typing import Annotated, Any

import httpx
from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from ..core.access import IDENTIFIED, PUBLIC
from ..core.encoding import to_builtins
from .errors import UnknownAsset
from .openapi import documented

ApiDep = NamedDependency[Any]
CallerDep = NamedDependency[Any]

MAX_HEIGHT = 2**53 - 1
BLOCKS_PAGE_MAX = 100
#: The peers' answers are reused this long, so readers of /v1/network never make a node ask its peers more often.
NETWORK_CACHE_S = 1.0
PEER_TIMEOUT_S = 2.0

#: No script but the console's own files; no inline script; requests only to this node.
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: Media types by file ending (Litestar adds "; charset=utf-8" to text types itself).
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": MediaType.HTML, ".txt": "text/plain",
          ".svg": "image/svg+xml"}
#: The browser verifier and request signing the other pages also use, served beside the console's own files.
_SHARED = ("state_keys.js", "verifier.js", "signing.js")


def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file the console may serve, read once: its own folder and the shared verifier."""
    web = resources.files("blokauto.web")
    out: dict[str, tuple[bytes, str]] = {}

    def walk(folder: Any, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
            elif "." + item.name.rsplit(".", 1)[-1] in _TYPES:
                out[prefix + item.name] = (item.read_bytes(), _TYPES["." + item.name.rsplit(".", 1)[-1]])

    walk(web.joinpath("console"), "")
    for name in _SHARED:
        out[name] = (web.joinpath(name).read_bytes(), _TYPES[".js"])
    return out


_ASSETS: dict[str, tuple[bytes, str]] | None = None


def asset(name: str) -> tuple[bytes, str]:
    global _ASSETS
    if _ASSETS is None:
        _ASSETS = _assets()
    found = _ASSETS.get(name)
    if found is None:
        raise UnknownAsset(name=name[:100])
    return found


@get("/console", media_type=MediaType.HTML, include_in_schema=False, opt={"read": PUBLIC})
async def console_page() -> Response:
    body, kind = asset("console.html")
    return Response(body, media_type=kind, headers={"content-security-policy": CONSOLE_CSP,
                                                    "cache-control": "no-cache", "x-content-type-options": "nosniff"})


@get("/console/assets/{name:path}", include_in_schema=False, opt={"read": PUBLIC})
async def console_asset(request: Request, name: FromPath[str]) -> Response:
    """A console file; ``no-cache`` with an ETag (its SHA-256), so a returning browser asks and gets
    304 Not Modified for what it holds, and a node upgraded to other files is never served stale."""
    body, kind = asset(name.lstrip("/"))
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"cache-control": "no-cache", "etag": etag, "x-content-type-options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=kind, headers=headers)


@get("/v1/blocks", sync_to_thread=True, summary="The newest blocks: headers and attestations, newest first",
     opt={"read": IDENTIFIED}, operation_class=documented(errors=(400, 401, 403)))
def list_blocks(api: ApiDep, caller: CallerDep,
                before: Annotated[int, QueryParameter(ge=-1, le=MAX_HEIGHT, description=(
                    "Blocks below this height (-1: from the head down)."))] = -1,
                limit: Annotated[int, QueryParameter(ge=1, le=BLOCKS_PAGE_MAX, description=(
                    f"How many blocks (1-{BLOCKS_PAGE_MAX})."))] = 20) -> dict[str, Any]:
    """Each block's header, hash, transaction count and the attestations this node holds, for any
    known key: what the console's explorer lists and verifies (transaction ids: ``/v1/blocks/{h}``)."""
    head = api.node.head_height
    top = head if before < 0 else min(before - 1, head)
    blocks = []
    for height in range(top, max(top - limit, -1), -1):
        cp = api.reader.checkpoint(height)
        blocks.append({"height": height, "hash": cp.header.hash().hex(), "header": to_builtins(cp.header),
                       "attestations": to_builtins(cp.attestations)})
    return {"head": head, "blocks": blocks}


class _PeerView:
    """What this node's peers say, asked at most once per ``NETWORK_CACHE_S`` whoever reads it."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._at = -1.0
        self._view: dict[str, Any] = {}

    async def get(self, api: Any) -> dict[str, Any]:
        async with self._lock:
            if time.monotonic() - self._at >= NETWORK_CACHE_S:
                self._view = await _ask_peers(api)
                self._at = time.monotonic()
            return self._view


class BadPeerAnswer(Exception):
    """A peer answered with something that is not what a blokauto node answers."""


async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
    """GET ``url`` as JSON, the whole answer within ``PEER_TIMEOUT_S`` (a peer trickling bytes is cut off)."""
    async def fetch() -> Any:
        r = await client.get(url)
        r.raise_for_status()
        return r.json()

    return await asyncio.wait_for(fetch(), PEER_TIMEOUT_S)


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"no whole answer within {PEER_TIMEOUT_S:g} s"
    return f"{type(exc).__name__}: {str(exc)[:200] or 'no answer'}"


async def _ask_peers(api: Any) -> dict[str, Any]:
    node = api.node
    peers = list(node.network.peers) if node.network is not None else []
    own = node.status()
    async with httpx.AsyncClient(timeout=PEER_TIMEOUT_S, follow_redirects=False) as client:
        async def status_of(url: str) -> dict[str, Any]:
            try:
                status = await _get_json(client, url.rstrip("/") + "/v1/status")
                height = status.get("height") if isinstance(status, dict) else None
                if not isinstance(height, int) or isinstance(height, bool) or not 0 <= height <= MAX_HEIGHT:
                    raise BadPeerAnswer(f"its /v1/status is not a node's status (height {str(height)[:40]})")
                return {"url": url, "status": status}
            except (httpx.HTTPError, ValueError, asyncio.TimeoutError, BadPeerAnswer) as exc:
                return {"url": url, "error": _why(exc)}

        answers = await asyncio.gather(*(status_of(u) for u in peers))
        common = min([own["height"]] + [a["status"]["height"] for a in answers if "status" in a])

        async def checkpoint_of(answer: dict[str, Any]) -> None:
            if "status" not in answer or common < 0:
                return
            try:
                answer["checkpoint"] = await _get_json(client, answer["url"].rstrip("/") + f"/v1/checkpoints/{common}")
            except (httpx.HTTPError, ValueError, asyncio.TimeoutError) as exc:
                answer["checkpoint_error"] = _why(exc)

        await asyncio.gather(*(checkpoint_of(a) for a in answers))
    mine = to_builtins(api.reader.checkpoint(common)) if common >= 0 else None
    return {"common_height": common, "self": {"status": own, "checkpoint": mine}, "peers": answers}


@get("/v1/network", summary="This node and its peers: heights, state roots and a checkpoint at a common height",
     opt={"read": IDENTIFIED}, operation_class=documented(errors=(401, 403)))
async def network_view(api: ApiDep, caller: CallerDep) -> dict[str, Any]:
    """This node's status and, for each peer in its ``network.json``, the peer's own status and its
    checkpoint at the highest height every node reached (``common_height``), so a reader can check
    each against the trust anchor and see lag and divergence. A peer that does not answer is listed
    with the error. Peers are asked at most once a second, however many read this."""
    view = getattr(api, "peer_view", None)
    if view is None:
        view = api.peer_view = _PeerView()
    return await view.get(api)


ROUTES = [console_page, console_asset, list_blocks, network_view]
