"""The SDK's client: one node's HTTP API, every answer checked against the trust anchor."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
from urllib.parse import quote

from http_message_signatures.exceptions import HTTPMessageSignaturesException
import msgspec

from ..core.block import Checkpoint, Genesis, Receipt
from ..core.crypto import KeyPair
from ..core.encoding import canonical, convert, decode
from ..core.errors import BlokautoError, error_class
from ..core.tx import Message, Tx, TxBody, sign
from ..modules import default_registry
from ..verify import (TrustAnchor, VerificationError, anchor_for, follow_consensus, verify_checkpoint,
                      verify_state_evidence, verify_tx_evidence)
from ..http_signatures import sign_request
from ._errors import ApiError, remote_error
from ._events import Event, parse_sse
from ._results import StateValue, TxInfo

DEFAULT_TTL_MS = 10 * 60_000


def new_nonce() -> str:
    return os.urandom(16).hex()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class RequestSigner(httpx.Auth):
    """Signs every request with ``key`` (RFC 9421, see ``blokauto.http_signatures``)."""

    requires_request_body = True

    def __init__(self, key: KeyPair) -> None:
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        url = str(request.url)
        encoded = quote(url, safe=_URL_SAFE)
        if encoded != url:  # httpx leaves some characters ({, }, |, ...) as they are; sign (and send) them encoded
            request.url = httpx.URL(encoded)
        try:
            sign_request(self.key, request.method, encoded, request.headers, request.content)
        except HTTPMessageSignaturesException as exc:  # a URL with no host, say: as httpx says of one it cannot send
            raise httpx.UnsupportedProtocol(f"cannot sign a request to {url[:200]!r}: {exc}", request=request) from None
        yield request


_URL_SAFE = ":/?#[]@!$&'()*+,;=%-._~"  # RFC 3986's reserved and unreserved characters, and existing escapes


def signed_http(url: str, key: KeyPair | None, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` for ``url`` whose every request is signed with ``key`` (unsigned without one)."""
    return httpx.Client(base_url=url, auth=RequestSigner(key) if key is not None else None, **kwargs)


class Client:
    """One node's API. ``key`` signs every request (the node answers only what that key may read);
    without one, only public routes answer (health, genesis, checkpoints, a shared report)."""

    def __init__(self, url: str, *, trust: Genesis | Path | bytes | None = None, timeout: float = 30.0,
                 verify: bool = True, key: KeyPair | None = None) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self._http = signed_http(self.url, key, timeout=httpx.Timeout(timeout, connect=10.0))
        self.registry = default_registry()
        self.verify = verify
        #: Where the trust anchor comes from: a file, a Genesis given in code, or (not pinned) the node itself.
        self.trust_source = (str(trust) if isinstance(trust, Path) else "a genesis document given by the caller"
                             if trust is not None else f"the genesis {self.url} serves (not pinned)")
        if isinstance(trust, Path):
            trust = trust.read_bytes()
        if isinstance(trust, bytes):
            trust = decode(trust, Genesis)
        self._genesis: Genesis | None = trust
        # genesis, then one anchor per consensus change followed (see ``follow_consensus``)
        self._anchors: list[TrustAnchor] = [TrustAnchor.from_genesis(trust)] if trust is not None else []

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- plumbing

    def as_key(self, key: KeyPair) -> "Client":
        """This client acting as ``key``: same node, trust anchor and settings; requests signed by ``key``."""
        other = Client(self.url, trust=self._genesis, key=key, verify=self.verify, timeout=self._http.timeout.read or 30.0)
        other._anchors = list(self._anchors)
        return other

    def _request(self, method: str, path: str, *, key: KeyPair | None = None, **kwargs: Any) -> Any:
        """One request, signed by ``key`` if given (else by the client's key, if it has one)."""
        if key is not None and key is not self.key:
            kwargs["auth"] = RequestSigner(key)
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionError(f"cannot reach the node at {self.url}: {exc}") from None
        if r.status_code >= 400:
            try:
                e = r.json()["error"]
                raise remote_error(e["code"], e["message"], e.get("detail") or {}, r.status_code)
            except (ValueError, KeyError, TypeError):
                raise ApiError("http_error", f"HTTP {r.status_code}: {r.text[:200]}", {}, r.status_code) from None
        return r.json()

    @property
    def genesis(self) -> Genesis:
        """The trust anchor. Pass ``trust=`` to pin it; otherwise it is fetched once (trust on first use)."""
        if self._genesis is None:
            self._genesis = convert({k: v for k, v in self._request("GET", "/v1/genesis").items() if k != "hash"}, Genesis)
            self._anchors = [TrustAnchor.from_genesis(self._genesis)]
        return self._genesis

    @property
    def anchor(self) -> TrustAnchor:
        """The newest trust anchor: genesis, or where the last consensus change followed left it."""
        return self.anchors[-1]

    @property
    def anchors(self) -> list[TrustAnchor]:
        _ = self.genesis
        return list(self._anchors)

    def follow_consensus(self) -> int:
        """Fetch the consensus changes after the newest anchor (node keys added or removed, quorum
        changed by governance), verify each with the keys in force before it, and advance. Returns
        how many changes were followed."""
        try:
            doc = self._request("GET", "/v1/consensus/changes", params={"after": self.anchor.height})
        except BlokautoError as err:
            if getattr(err, "http_status", None) == 404:
                return 0  # a node that does not list consensus changes
            raise
        new = follow_consensus(self.anchor, doc.get("changes", []))
        self._anchors += new
        return len(new)

    def _verified(self, height: int, check: Any) -> Any:
        """``check(anchor)`` with the anchor for ``height``; if it fails, follow the consortium's
        consensus changes (a checkpoint signed by node keys added since) and check once more."""
        try:
            return check(anchor_for(self.anchors, height))
        except VerificationError:
            if not self.follow_consensus():
                raise
        return check(anchor_for(self.anchors, height))

    @property
    def chain(self) -> str:
        return self.genesis.chain

    # ---------------------------------------------------------------- building and signing

    def message(self, type_: str, data: dict[str, Any]) -> Message:
        """A message from its type name and plain data (as the CLI and JSON users have it)."""
        spec = self.registry.messages.get(type_)
        if spec is None:
            raise error_class("unknown_message")(type=type_)  # type: ignore[misc]
        return convert({**data, "type": type_}, spec.struct)

    def build(self, msg: Message, sender: KeyPair | str, *, ttl_ms: int = DEFAULT_TTL_MS) -> TxBody[Any]:
        did = sender if isinstance(sender, str) else sender.did
        return TxBody(chain=self.chain, sender=did, msg=msg, nonce=new_nonce(), expires=now_ms() + ttl_ms)

    @staticmethod
    def sign(body: TxBody[Any] | Tx[Any], *keys: KeyPair) -> Tx[Any]:
        if isinstance(body, Tx):
            return sign(body.body, *keys, existing=body.sigs)
        return sign(body, *keys)

    # ---------------------------------------------------------------- submitting

    def submit(self, tx: Tx[Any] | bytes, *, key: KeyPair | None = None) -> str:
        """Submit; returns the id once the node accepted it for ordering (raises on refusal). The
        request is signed by ``key`` (one of the transaction's signers, say) or the client's key."""
        raw = tx if isinstance(tx, bytes) else canonical(tx)
        return self._request("POST", "/v1/txs", key=key, content=raw,
                             headers={"content-type": "application/json"})["id"]

    def submit_batch(self, txs: list[Tx[Any] | bytes], *, key: KeyPair | None = None) -> list[str | BlokautoError]:
        raws = [t if isinstance(t, bytes) else canonical(t) for t in txs]
        body = b"[" + b",".join(raws) + b"]"
        out = self._request("POST", "/v1/txs/batch", key=key, content=body,
                            headers={"content-type": "application/json"})
        return [r["id"] if "id" in r else remote_error(r["error"]["code"], r["error"]["message"], r["error"]["detail"], 400)
                for r in out["results"]]

    def receipt(self, txid: str, *, wait: float = 30.0, key: KeyPair | None = None) -> TxInfo:
        """The committed receipt (waiting up to ``wait`` seconds), proofs checked. Read by the
        transaction's signers (``key``), their organisations, nodes, regulators and police."""
        deadline = time.monotonic() + wait
        while True:
            left = max(0.0, min(60.0, deadline - time.monotonic()))
            try:
                ev = self._request("GET", f"/v1/txs/{txid}", key=key, params={"wait": left} if left else None,
                                   timeout=left + 10)
                break
            except BlokautoError as err:
                if err.code != "unknown_tx" or time.monotonic() >= deadline:
                    raise
        if ev.get("id") != txid:
            raise VerificationError(f"the node answered about transaction {ev.get('id')!r}, not {txid}")
        cp = (self._verified(_height(ev), lambda a: verify_tx_evidence(ev, a)) if self.verify
              else msgspec.convert(ev["checkpoint"], Checkpoint))
        # Everything returned comes from the proven bytes, never from the node's decoded copies.
        receipt = decode(ev["receipt_raw"].encode(), Receipt)
        return TxInfo(txid, cp.header.height, ev["index"], receipt, msgspec.json.decode(ev["tx_raw"]), cp, ev)

    def send(self, msg: Message, sender: KeyPair, *cosigners: KeyPair, wait: float = 30.0,
             ttl_ms: int = DEFAULT_TTL_MS) -> TxInfo:
        """Build, sign (sender first, then co-signers), submit and wait for the receipt. The submission
        is signed with the client's key (a gateway's), or the sender's; the receipt is read as the
        sender, who may always read its own transaction, unless the transaction itself retired the
        sender's key (a rotation, a member revoking its own key) and was committed before the read:
        then as a co-signer, or the client's own key."""
        tx = self.sign(self.build(msg, sender, ttl_ms=ttl_ms), sender, *cosigners)
        txid = self.submit(tx, key=self.key or sender)
        readers = [sender, *cosigners, *([self.key] if self.key is not None else [])]
        for i, reader in enumerate(readers):
            try:
                return self.receipt(txid, wait=wait, key=reader)
            except BlokautoError as err:
                if err.code != "revoked_caller" or i == len(readers) - 1:
                    raise
        raise AssertionError("unreachable: the last reader's refusal is raised")

    # ---------------------------------------------------------------- reading

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/v1/status")

    def block(self, height: int | str = "latest", *, full: bool = False) -> dict[str, Any]:
        return self._request("GET", f"/v1/blocks/{height}", params={"full": full})

    def checkpoint(self, height: int | str = "latest") -> Checkpoint:
        cp = msgspec.convert(self._request("GET", f"/v1/checkpoints/{height}"), Checkpoint)
        if self.verify:
            self._verified(cp.header.height, lambda a: verify_checkpoint(cp, a))
        return cp

    def state(self, key: str, *, min_height: int = -1) -> StateValue:
        """A state value with its proof checked (None when the key is proven absent)."""
        ev = self._request("GET", f"/v1/state/{key}", params={"min_height": min_height})
        if ev.get("key") != key:
            raise VerificationError(f"the node answered about {ev.get('key')!r}, not {key!r}")
        cp = (self._verified(_height(ev), lambda a: verify_state_evidence(ev, a)) if self.verify
              else msgspec.convert(ev["checkpoint"], Checkpoint))
        raw = ev.get("raw")
        return StateValue(key, None if raw is None else msgspec.json.decode(raw), cp.header.height, cp)

    def query(self, module: str, name: str, *, min_height: int = -1, **params: Any) -> Any:
        """A module query's result; structured parameters (dicts, lists, Structs) travel as JSON.
        ``min_height`` waits (up to 10 s) until the node's state reflects that block."""
        sent = {k: v if isinstance(v, (str, int)) else msgspec.json.encode(v).decode() for k, v in params.items()}
        if min_height >= 0:
            sent["min_height"] = min_height
        return self._request("GET", f"/v1/q/{module}/{name}", params=sent)["result"]

    def report(self, vin: str, *, min_height: int = -1, max_age_ms: int | None = None,
               share: str | None = None) -> dict[str, Any]:
        """A vehicle's history report, verified offline-style (raises ``VerificationError``); read
        with the client's key, or with a share link's token (``share``) and no key at all."""
        from ..verify.report import verify_report

        params: dict[str, Any] = {"min_height": min_height}
        if share:
            params["share"] = share
        report = self._request("GET", f"/v1/reports/{vin}", params=params)
        if self.verify:
            self._verified(_height(report), lambda a: verify_report(
                report, a, now_ms=now_ms(), max_age_ms=max_age_ms, min_height=min_height if min_height >= 0 else None))
        return report

    def report_pdf(self, vin: str, *, share: str | None = None) -> bytes:
        params = {"share": share} if share else None
        r = self._http.get(f"/v1/reports/{vin}/pdf", params=params)
        if r.status_code >= 400:
            self._request("GET", f"/v1/reports/{vin}", params=params)  # raises the refusal
        return r.content

    def report_page(self, vin: str, *, share: str | None = None) -> str:
        params = {"share": share} if share else None
        r = self._http.get(f"/reports/{vin}", params=params)
        if r.status_code >= 400:
            self._request("GET", f"/v1/reports/{vin}", params=params)
        return r.text

    def share_report(self, vin: str, holder: KeyPair, *, ttl_ms: int = 7 * 86_400_000, claims: bool = False) -> str:
        """A link to ``vin``'s report that opens without an account until it expires (at most 90
        days), signed by its holder's key; a sale voids it. The node checks it when it is opened.
        ``claims``: the report it opens also shows the vehicle's insurance claims, proven."""
        from urllib.parse import quote

        from ..share_tokens import make_token

        token = make_token(holder, self.chain, vin, ttl_ms, claims=claims)
        return f"{self.url}/reports/{quote(vin, safe='')}?share={token}"

    def messages(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/messages")

    def params(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/params")

    # ---------------------------------------------------------------- events

    def events(self, *, from_height: int | None = None, last_event_id: str | None = None,
               reconnect: bool = True, idle_timeout: float | None = None) -> Iterator[Event]:
        """Committed events, in order; reconnects with Last-Event-ID so nothing is missed. Without
        ``reconnect``, the stream ends once no event came for ``idle_timeout`` seconds."""
        last = last_event_id
        while True:
            headers = {"accept": "text/event-stream"}
            params: dict[str, Any] = {}
            if last:
                headers["last-event-id"] = last
            elif from_height is not None:
                params["from_height"] = from_height
            try:
                with self._http.stream("GET", "/v1/events", headers=headers, params=params,
                                       timeout=httpx.Timeout(idle_timeout, connect=10.0)) as r:
                    if r.status_code >= 400:
                        r.read()
                        e = r.json()["error"]
                        raise remote_error(e["code"], e["message"], e.get("detail") or {}, r.status_code)
                    for ev in parse_sse(r.iter_lines()):
                        if ev.type == "error" and isinstance(ev.data.get("error"), dict):
                            e = ev.data["error"]  # the node ended the stream with a refusal
                            err = remote_error(e.get("code", ""), e.get("message", ""), e.get("detail") or {}, 503)
                            if e.get("code") == "unavailable" and reconnect:
                                last = ev.id or last
                                raise _Retry from None
                            raise err
                        last = ev.id
                        yield ev
            except _Retry:
                time.sleep(1.0)  # the node asked us to come back later; resume after the last event
                continue
            except (httpx.TransportError, httpx.StreamError) as exc:
                if not reconnect:
                    if isinstance(exc, httpx.ReadTimeout) and idle_timeout is not None:
                        return  # quiet for idle_timeout seconds: caught up
                    raise
                time.sleep(0.5)
                continue
            if not reconnect:
                return


class _Retry(Exception):
    """The event stream ended with ``unavailable``: reconnect after the last event."""


def _height(doc: dict[str, Any]) -> int:
    """The height of the checkpoint an answer carries (-1 if it has none readable: the check says why)."""
    try:
        return int(doc["checkpoint"]["header"]["height"])
    except (KeyError, TypeError, ValueError):
        return -1


