"""Signed HTTP requests: RFC 9421 HTTP Message Signatures with Ed25519 keys named by their did:key.

Every request to a node but the public ones carries two headers made by the
``http-message-signatures`` package (never by hand), plus a Content-Digest (RFC 9530) when it has
a body::

    Content-Digest: sha-256=:<base64 of the body's SHA-256>:
    Signature-Input: blokauto=("@method" "@authority" "@path" "@query" "content-digest");
                     created=1765000000;keyid="did:key:z6Mk…";alg="ed25519";nonce="<32 hex>";tag="blokauto/1"
    Signature: blokauto=:<base64 Ed25519 signature of the signature base>:

What a signature covers (``COVERED``) and the tag are fixed: a node refuses a signature that
covers less. ``created`` must be within ``MAX_AGE_S`` of the node's clock (``MAX_SKEW_S`` ahead
at most) and the nonce new for that key within that window. The SDK, the CLI and the browser page
sign with the key the user already holds; the node checks the signature in ``api.auth``.

Signing and verifying use PyNaCl (libsodium) for Ed25519, as the rest of blokauto does: about twice
as fast as the package's default ``cryptography`` backend, which matters at one signature per request.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, MutableMapping

from http_message_signatures import HTTPMessageSigner, HTTPSignatureAlgorithm, HTTPSignatureKeyResolver
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .core.crypto import KeyPair, public_key_from_did

LABEL = "blokauto"
TAG = "blokauto/1"
#: Components every signature covers; a request with a body also covers its Content-Digest.
COVERED = ("@method", "@authority", "@path", "@query")
BODY_COVERED = (*COVERED, "content-digest")
MAX_AGE_S = 60  # a signature older than this is refused (signature_expired)
MAX_SKEW_S = 5  # nor one created further ahead of the node's clock than this


class Ed25519Nacl(HTTPSignatureAlgorithm):
    """RFC 9421's ``ed25519`` algorithm over raw 32-byte keys, computed by libsodium."""

    algorithm_id = "ed25519"

    def __init__(self, public_key: Any = None, private_key: Any = None) -> None:
        self.public_key = public_key
        self.private_key = private_key

    def sign(self, message: bytes) -> bytes:
        return SigningKey(self.private_key).sign(message).signature

    def verify(self, signature: bytes, message: bytes) -> None:
        from http_message_signatures.exceptions import InvalidSignature

        if len(signature) != 64:
            raise InvalidSignature("an Ed25519 signature is 64 bytes")
        try:
            VerifyKey(self.public_key).verify(message, signature)
        except BadSignatureError:
            raise InvalidSignature("the signature does not match the request and key") from None


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key: KeyPair) -> None:
        self.key = key

    def resolve_private_key(self, key_id: str) -> bytes:
        return self.key.seed

    def resolve_public_key(self, key_id: str) -> bytes:
        return public_key_from_did(key_id)


@dataclass
class _Message:
    """The view of a request the package signs: method, absolute URL, headers (written in place)."""

    method: str
    url: str
    headers: MutableMapping[str, str]


def sign_request(key: KeyPair, method: str, url: str, headers: MutableMapping[str, str], body: bytes = b"", *,
                 created: int | None = None, nonce: str | None = None) -> None:
    """Add Signature-Input and Signature (and Content-Digest for a body) to ``headers``, in place.
    ``url`` is the absolute, percent-encoded URL the request goes to."""
    signer = HTTPMessageSigner(signature_algorithm=Ed25519Nacl, key_resolver=_OneKey(key))
    when = datetime.datetime.fromtimestamp(created, datetime.timezone.utc) if created is not None else \
        datetime.datetime.now(datetime.timezone.utc)
    for name in [n for n in headers if n.lower() == "content-digest"]:
        del headers[name]
    signer.sign(_Message(method.upper(), url, headers), key_id=key.did, created=when,
                nonce=nonce if nonce is not None else os.urandom(16).hex(), label=LABEL, tag=TAG,
                covered_component_ids=COVERED, body=body if body else None)
