"""Who is asking: every request but the public ones carries an RFC 9421 signature (see
``blokauto.http_signatures``), checked here before its route runs.

    no Signature header                     -> 401 signature_required
    malformed, wrong key, wrong components  -> 401 request_signature_invalid
    created too old or ahead of the clock   -> 401 request_expired
    a nonce this node has seen for the key  -> 401 replayed_request
    body not matching its Content-Digest    -> 401 digest_mismatch
    a key the ledger does not know          -> 401 unknown_caller (unless the route's policy lets it
                                               read what it asks: a device key reading its vehicle,
                                               a buyer submitting a transaction it signs)
    a member key revoked or rotated away    -> 401 revoked_caller

A known caller that may not read what it asks is refused by the route's read policy (403,
``core.access``). The checks use the node's clock (signatures are about now; the ledger's
rules are not), and a replay cache of the nonces seen within ``MAX_AGE_S``.
"""

from __future__ import annotations

import datetime
import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver
from http_message_signatures.exceptions import HTTPMessageSignaturesException, InvalidSignature

from ..core.access import ANONYMOUS, Caller
from ..core.crypto import check_did
from ..core.errors import BlokautoError, Unavailable
from ..http_signatures import BODY_COVERED, COVERED, LABEL, MAX_AGE_S, MAX_SKEW_S, TAG, Ed25519Nacl


class NotAuthenticated(BlokautoError):
    """The request does not say, verifiably, who sent it (401)."""

    code = "not_authenticated"
    template = "The request is not signed by a key this node knows ({reason})."


class SignatureRequired(NotAuthenticated):
    code = "signature_required"
    template = ("{route} answers only signed requests: sign it with your key (RFC 9421 HTTP Message Signatures, "
                "see docs/privacy.md; the SDK's Client(key=...) and the CLI's --as NAME do it for you).")


class RequestSignatureInvalid(NotAuthenticated):
    code = "request_signature_invalid"
    template = ("The request's signature does not hold ({reason}). Sign method, authority, path, query (and the "
                "body's Content-Digest) with tag \"blokauto/1\", keyid your did:key, a nonce and the time now.")


class RequestExpired(NotAuthenticated):
    code = "request_expired"
    template = ("The request was signed at {created}, and this node's clock says {now}: a signature counts for "
                "{max_age} seconds (and at most {skew} seconds ahead). Sign it again now; check your clock.")


class ReplayedRequest(NotAuthenticated):
    code = "replayed_request"
    template = ("This node already answered a request signed by {did} with nonce {nonce!r}: sign each request "
                "with a new nonce.")


class DigestMismatch(NotAuthenticated):
    code = "digest_mismatch"
    template = ("The request's body does not match the Content-Digest it signed ({reason}): the body changed on "
                "the way, or the digest was computed over other bytes.")


class WrongAuthority(NotAuthenticated):
    code = "wrong_authority"
    template = ("The request was signed for {authority}, and this node answers as {own}: a signature is for the "
                "node it was sent to. Sign for the address you send to (a proxy must pass the Host header through "
                "unchanged; a node reached by another name lists it with `node start --public-url`).")


class RevokedCaller(NotAuthenticated):
    code = "revoked_caller"
    template = ("{did} was a member key of {org} and is {status} since block {since}: sign with your "
                "organisation's current key.")


class TooManySignedRequests(BlokautoError):
    code = "too_many_signed_requests"
    retryable = True
    template = ("{did} signed {limit} requests to this node within {window} seconds, the most one key may (each "
                "nonce is remembered that long to refuse replays); wait (Retry-After) or spread the load over keys.")


REPLAY_CACHE_MAX = 1_000_000  # nonces remembered at once (~150 MB); beyond, new requests wait (503) until old ones age out
REPLAY_PER_KEY = 100_000  # of them one key may hold: ~1,400 requests per second for the whole window


class _DidKeys(HTTPSignatureKeyResolver):
    """The public key of a did:key, checked once (canonical, not of small order) and remembered."""

    CACHED = 100_000

    def __init__(self) -> None:
        self._checked: dict[str, bytes] = {}

    def resolve_public_key(self, key_id: str) -> bytes | None:
        key = self._checked.get(key_id)
        if key is not None:
            return key
        try:
            key = check_did(key_id)  # refuses small-order and non-canonical keys too
        except (ValueError, BlokautoError):
            return None
        if len(self._checked) >= self.CACHED:
            self._checked.clear()
        self._checked[key_id] = key
        return key

    def resolve_private_key(self, key_id: str) -> bytes:
        raise InvalidSignature("a node does not sign requests")


class _Verifier(HTTPMessageVerifier):
    max_clock_skew = datetime.timedelta(seconds=MAX_SKEW_S)


class _Seen:
    """Nonces seen within the signature window, oldest first (thread-safe). Each is kept as 16 bytes
    of a hash of (key, nonce); one key may hold at most ``per_key`` of them at once, so a member that
    floods the node with requests is slowed down (429) before it crowds out everyone else's."""

    def __init__(self, limit: int = REPLAY_CACHE_MAX, per_key: int = REPLAY_PER_KEY) -> None:
        self.limit = limit
        self.per_key = per_key
        self._seen: OrderedDict[bytes, tuple[float, str]] = OrderedDict()
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, did: str, nonce: str, now: float) -> bool:
        """Remember (did, nonce) until ``now + MAX_AGE_S + 2 * MAX_SKEW_S``; False if it was seen already."""
        key = hashlib.blake2b(f"{did}\x00{nonce}".encode(), digest_size=16).digest()
        with self._lock:
            while self._seen:
                old, (until, owner) = next(iter(self._seen.items()))
                if until > now:
                    break
                del self._seen[old]
                left = self._count[owner] - 1
                if left:
                    self._count[owner] = left
                else:
                    del self._count[owner]
            if key in self._seen:
                return False
            if self._count.get(did, 0) >= self.per_key:
                err = TooManySignedRequests(did=did, limit=self.per_key, window=MAX_AGE_S + 2 * MAX_SKEW_S)
                err.retry_after = MAX_AGE_S  # type: ignore[attr-defined]
                raise err
            if len(self._seen) >= self.limit:
                err = Unavailable(reason=f"it holds {self.limit} recent request nonces, the most it remembers")
                err.retry_after = 1  # type: ignore[attr-defined]
                raise err
            self._seen[key] = (now + MAX_AGE_S + 2 * MAX_SKEW_S, did)
            self._count[did] = self._count.get(did, 0) + 1
            return True

    def __len__(self) -> int:
        return len(self._seen)


class _Message:
    __slots__ = ("method", "url", "headers")

    def __init__(self, method: str, url: str, headers: Any) -> None:
        self.method, self.url, self.headers = method, url, headers


class _Headers:
    """A read-only view of a request's header lines as the signature package reads them."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]

    def items(self) -> list[tuple[str, str]]:
        return self._items

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(k for k, _ in self._items))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k.lower() == name.lower() for k, _ in self._items)

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self._items if k.lower() == name.lower()), default)

    def __setitem__(self, name: str, value: str) -> None:
        raise TypeError("read-only")

    def __delitem__(self, name: str) -> None:
        raise TypeError("read-only")


class Authenticator:
    """Checks request signatures and says who signed (``caller_of(did)`` asks the ledger)."""

    def __init__(self, caller_of: Callable[[str], tuple[Caller, str | None]],
                 clock: Callable[[], float] = time.time) -> None:
        self.caller_of = caller_of
        self.clock = clock
        self.seen = _Seen()
        self._verifier = _Verifier(signature_algorithm=Ed25519Nacl, key_resolver=_DidKeys())

    def signed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        return any(k.lower() in (b"signature", b"signature-input") for k, _ in headers)

    def verify(self, method: str, url: str, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> str:
        """The did:key that signed the request (raises the ``NotAuthenticated`` saying why not)."""
        headers = _Headers(raw_headers)
        if "signature-input" not in headers or "signature" not in headers:
            raise RequestSignatureInvalid(reason="it needs both the Signature-Input and the Signature header")
        now = self.clock()
        message = _Message(method, url, headers)
        try:
            results = self._verifier.verify(message, max_age=None, expect_tag=TAG, expect_label=LABEL,
                                            require_components=BODY_COVERED if body else COVERED)
        except InvalidSignature as exc:
            raise self._why(exc, headers, now) from None
        except (HTTPMessageSignaturesException, ValueError, TypeError, UnicodeError) as exc:
            raise RequestSignatureInvalid(reason=str(exc)[:200]) from None
        result = results[0]
        params = result.parameters
        did, nonce, created = params.get("keyid"), params.get("nonce"), params.get("created")
        if not isinstance(did, str) or not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
            raise RequestSignatureInvalid(reason="it needs a nonce of 16 to 128 characters")
        if not isinstance(created, int) or not (now - MAX_AGE_S - MAX_SKEW_S <= created <= now + MAX_SKEW_S):
            raise RequestExpired(created=_when(created), now=_when(int(now)), max_age=MAX_AGE_S, skew=MAX_SKEW_S)
        if body or "content-digest" in headers:  # a request without a body has no digest to check
            try:
                self._verifier.verify_body(message, results, body)
            except (InvalidSignature, HTTPMessageSignaturesException) as exc:
                raise DigestMismatch(reason=str(exc)[:200]) from None
        if not self.seen.add(did, nonce, now):
            raise ReplayedRequest(did=did, nonce=nonce[:128])
        return did

    @staticmethod
    def _why(exc: Exception, headers: _Headers, now: float) -> NotAuthenticated:
        text = str(exc)
        if "created" in text and ("future" in text or "age" in text):
            return RequestExpired(created="(see Signature-Input)", now=_when(int(now)), max_age=MAX_AGE_S,
                                  skew=MAX_SKEW_S)
        if "Content-Digest" in text or "content-digest" in text:
            return DigestMismatch(reason=text[:200])
        return RequestSignatureInvalid(reason=text[:200] or "it does not verify")

    def caller(self, did: str) -> tuple[Caller, str | None]:
        """(the caller as the ledger knows it, why it is not known or None); revoked keys raise."""
        return self.caller_of(did)


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD = frozenset({"0.0.0.0", "::", ""})


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def own_authorities(host: str, port: int, public_urls: tuple[str, ...] = ()) -> frozenset[str] | None:
    """The addresses (``@authority``: host:port, lower case, without the scheme's default port) this
    node answers signed requests for: where it listens (every loopback name if it listens on one), and
    each public URL. None when it listens on every address and was given no public URL: then any
    address with its port is taken (and the node says so at start)."""
    from urllib.parse import urlsplit

    names: set[str] = set()
    for url in public_urls:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if not parts.hostname:
            raise ValueError(f"{url!r} is not a URL with a host (like https://node.example.org)")
        default = {"http": 80, "https": 443}.get(parts.scheme)
        p = parts.port or default
        names.add(parts.hostname.lower() if p == default else _authority(parts.hostname.lower(), p or 80))
    if host in WILDCARD:
        return frozenset(names) | {_authority(h, port) for h in LOOPBACK} if names else None
    listen = {host.lower()} | (LOOPBACK if host.lower() in LOOPBACK else set())
    return frozenset(names | {_authority(h, port) for h in listen})


def _when(seconds: Any) -> str:
    if not isinstance(seconds, int) or not -2**40 < seconds < 2**40:
        return repr(seconds)[:40]
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


__all__ = ["ANONYMOUS", "Authenticator", "Caller", "NotAuthenticated", "SignatureRequired", "RevokedCaller"]
