"""schemathesis hooks for tests/api/test_openapi_conformance.py (loaded by the schemathesis CLI
through ``SCHEMATHESIS_HOOKS=schemathesis_hooks``, with this folder on ``PYTHONPATH``).

Every route but the public ones answers only RFC 9421-signed requests, so every call schemathesis
makes is signed, just before it is sent, with the key named by ``BLOKAUTO_TEST_KEY`` in the key
store ``BLOKAUTO_TEST_KEYS`` (the test signs with the node's key, which may read everything): the
fuzzing then reaches each route's own checks instead of stopping at 401 signature_required.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import requests
import schemathesis

from blokauto.http_signatures import sign_request
from blokauto.keystore import KeyStore


class _Sign(requests.auth.AuthBase):
    """Signs the prepared request as it goes out: its final method, URL (query included) and body."""

    def __init__(self) -> None:
        self.key = KeyStore(Path(os.environ["BLOKAUTO_TEST_KEYS"])).load(os.environ["BLOKAUTO_TEST_KEY"])

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body.encode() if isinstance(r.body, str) else (r.body or b"")
        if not isinstance(body, bytes):  # a streamed body: nothing schemathesis sends here
            body = b""
        sign_request(self.key, r.method or "GET", r.url or "", r.headers, body)
        return r


_SIGN: _Sign | None = None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    global _SIGN
    if _SIGN is None:
        _SIGN = _Sign()
    kwargs["auth"] = _SIGN
