"""The request-signature check itself (``api.auth.Authenticator``), in-process: the time window at
its exact edges, nonces (length, replay, the per-key and global bounds of what is remembered),
the components a signature must cover, digests, and keys that are not Ed25519 did:keys."""

from __future__ import annotations

import time
import httpx
import pytest

from blokauto.api.auth import (Authenticator, DigestMismatch, ReplayedRequest, RequestExpired,
                               RequestSignatureInvalid, TooManySignedRequests, _Seen)
from blokauto.core.access import Caller
from blokauto.core.errors import Unavailable
from blokauto.http_signatures import MAX_AGE_S, MAX_SKEW_S, sign_request

from conftest import K

URL = "http://node.example:8545/v1/q/vehicles/history?vin=WVWZZZ1JZ00000001"


def raw(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.multi_items()]


def signed(created: int | None = None, nonce: str | None = None, body: bytes = b"", method: str = "GET",
           url: str = URL) -> httpx.Headers:
    h = httpx.Headers()
    sign_request(K("sig-user"), method, url, h, body, created=created, nonce=nonce)
    return h


def auth(clock: float | None = None) -> Authenticator:
    """An Authenticator whose clock is ``clock`` (fixed), or the real one."""
    return Authenticator(lambda did: Caller(did), clock=(lambda: clock) if clock is not None else time.time)


@pytest.mark.parametrize("offset,ok", [(-(MAX_AGE_S + MAX_SKEW_S), True), (-(MAX_AGE_S + MAX_SKEW_S) - 1, False),
                                       (0, True), (MAX_SKEW_S, True), (MAX_SKEW_S + 1, False), (-10**9, False)])
def test_the_signature_window_at_its_edges(offset: int, ok: bool) -> None:
    now = float(int(time.time()))
    h = signed(created=int(now) + offset)
    if ok:
        assert auth(now).verify("GET", URL, raw(h), b"") == K("sig-user").did
    else:
        with pytest.raises(RequestExpired):
            auth(now).verify("GET", URL, raw(h), b"")


@pytest.mark.parametrize("nonce,ok", [("a" * 15, False), ("a" * 16, True), ("b" * 128, True), ("c" * 129, False)])
def test_a_nonce_is_16_to_128_characters(nonce: str, ok: bool) -> None:
    h = signed(nonce=nonce)
    if ok:
        auth().verify("GET", URL, raw(h), b"")
    else:
        with pytest.raises(RequestSignatureInvalid):
            auth().verify("GET", URL, raw(h), b"")


def test_the_same_request_twice_is_a_replay_but_another_node_process_would_not_know() -> None:
    a = auth()
    h = signed()
    a.verify("GET", URL, raw(h), b"")
    with pytest.raises(ReplayedRequest):
        a.verify("GET", URL, raw(h), b"")
    auth().verify("GET", URL, raw(h), b"")  # a fresh node (or a restart) has an empty memory: the window bounds it


@pytest.mark.parametrize("method,url,body", [
    ("POST", URL, b""),  # another method
    ("GET", URL.replace("node.example:8545", "other.example:8545"), b""),  # another authority
    ("GET", URL.replace("history", "vehicle"), b""),  # another path
    ("GET", URL.replace("000001", "000002"), b""),  # another query
])
def test_a_signature_does_not_carry_over_to_another_request(method: str, url: str, body: bytes) -> None:
    with pytest.raises(RequestSignatureInvalid):
        auth().verify(method, url, raw(signed()), body)


@pytest.mark.parametrize("covered", [("@method",), ("@method", "@authority", "@path"), ("@authority", "@path", "@query")])
def test_a_signature_that_covers_less_than_the_profile_is_refused(covered: tuple[str, ...]) -> None:
    """Signed with the package itself, correctly, but over fewer components: the query (or the
    method, or the authority) could then be changed without breaking the signature."""
    from http_message_signatures import HTTPMessageSigner

    from blokauto.http_signatures import LABEL, TAG, Ed25519Nacl, _Message, _OneKey

    h = httpx.Headers()
    HTTPMessageSigner(signature_algorithm=Ed25519Nacl, key_resolver=_OneKey(K("sig-user"))).sign(
        _Message("GET", URL, h), key_id=K("sig-user").did, nonce="n" * 32, label=LABEL, tag=TAG,
        covered_component_ids=covered)
    with pytest.raises(RequestSignatureInvalid):
        auth().verify("GET", URL, raw(h), b"")


@pytest.mark.parametrize("tag", ["other/1", None])
def test_a_signature_with_another_tag_or_none_is_refused(tag: str | None) -> None:
    """A signature made for another application (or none) is not one of ours, even if it verifies."""
    from http_message_signatures import HTTPMessageSigner

    from blokauto.http_signatures import COVERED, LABEL, Ed25519Nacl, _Message, _OneKey

    h = httpx.Headers()
    HTTPMessageSigner(signature_algorithm=Ed25519Nacl, key_resolver=_OneKey(K("sig-user"))).sign(
        _Message("GET", URL, h), key_id=K("sig-user").did, nonce="n" * 32, label=LABEL, tag=tag,
        covered_component_ids=COVERED)
    with pytest.raises(RequestSignatureInvalid):
        auth().verify("GET", URL, raw(h), b"")


def test_a_body_must_match_its_signed_digest_and_be_covered() -> None:
    h = signed(method="POST", body=b'{"a":1}')
    with pytest.raises(DigestMismatch):
        auth().verify("POST", URL, raw(h), b'{"a":2}')
    auth().verify("POST", URL, raw(h), b'{"a":1}')
    unsigned_body = signed(method="POST")  # signed without a body, then sent with one
    with pytest.raises((RequestSignatureInvalid, DigestMismatch)):
        auth().verify("POST", URL, raw(unsigned_body), b'{"a":1}')


@pytest.mark.parametrize("keyid", ["did:key:zNOTBASE58!", "did:web:example.com", "did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc"])
def test_a_key_id_that_is_not_an_ed25519_did_key_is_refused(keyid: str) -> None:
    h = signed()
    h["signature-input"] = h["signature-input"].replace(K("sig-user").did, keyid)
    with pytest.raises(RequestSignatureInvalid):
        auth().verify("GET", URL, raw(h), b"")


def test_what_is_remembered_is_bounded_per_key_and_in_all() -> None:
    seen = _Seen(limit=5, per_key=3)
    for i in range(3):
        assert seen.add("k1", f"n{i}", 0.0)
    with pytest.raises(TooManySignedRequests):
        seen.add("k1", "n3", 0.0)
    assert seen.add("k2", "n0", 0.0) and seen.add("k2", "n1", 0.0)
    with pytest.raises(Unavailable):
        seen.add("k3", "n0", 0.0)
    later = MAX_AGE_S + 2 * MAX_SKEW_S + 1.0  # every nonce aged out: the same ones are new again
    assert seen.add("k1", "n0", later) and len(seen) == 1
    assert not seen.add("k1", "n0", later)


def test_a_duplicate_signature_header_or_two_labels_are_refused() -> None:
    h = signed()
    doubled: list[tuple[bytes, bytes]] = raw(h) + [(b"signature-input", h["signature-input"].replace("blokauto=", "x=").encode())]
    with pytest.raises(RequestSignatureInvalid):
        auth().verify("GET", URL, doubled, b"")


def test_oversized_and_binary_headers_do_not_crash_the_check() -> None:
    for value in (b"blokauto=(" + b"\"@method\" " * 10_000 + b")", b"\xff\xfe\x00", b""):
        h = raw(signed())
        h = [(k, value if k == b"signature-input" else v) for k, v in h]
        with pytest.raises(RequestSignatureInvalid):
            auth().verify("GET", URL, h, b"")


def test_fresh_nonces_from_one_key_are_all_accepted() -> None:
    """200 requests in a row from one key, each with its own nonce, all pass (no false replay)."""
    a = auth()
    for i in range(200):
        assert a.verify("GET", URL, raw(signed(nonce=f"{i:032x}")), b"") == K("sig-user").did
