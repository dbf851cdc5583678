"""DIDKit (SpruceID's Rust implementation, ``didkit==0.3.3``) as an independent peer, in its own process.

Run in the test process, DIDKit's async runtime aborts the interpreter at exit in about a third of
runs ("Fatal Python error: PyGILState_Release", exit 134, measured 9 of 25), which would fail a
passing test run. So the tests talk to it through a child process that answers one JSON line per
request and leaves with ``os._exit`` (skipping the finalization that crashes). The test that starts
the child stops it, by its PID.

Keys go to DIDKit as OKP JWKs (RFC 8037) built from a ``KeyPair``: ``d`` is the 32-byte seed
``KeyPair`` keeps, ``x`` the public key.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from blokauto.core.crypto import KeyPair

VERIFY_OPTIONS = json.dumps({"proofPurpose": "assertionMethod"})


def jwk(key: KeyPair) -> str:
    def b64url(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64url(key.public_key), "d": b64url(key.seed)})


class DidkitPeer:
    """The client side: ``issue`` and ``verify`` as DIDKit does them."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, encoding="utf-8")

    def _ask(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the didkit peer (pid {self.process.pid}) stopped: exit {self.process.poll()}"
        return json.loads(line)

    def did(self, key: KeyPair) -> str:
        return self._ask(op="did", jwk=jwk(key))["result"]

    def verification_method(self, key: KeyPair) -> str:
        return self._ask(op="vm", jwk=jwk(key))["result"]

    def issue(self, credential: dict[str, Any], key: KeyPair, *, created: str,
              verification_method: str | None = None) -> dict[str, Any]:
        """DIDKit's Ed25519Signature2020 credential; raises AssertionError with DIDKit's words if it refuses."""
        options = {"proofPurpose": "assertionMethod", "type": "Ed25519Signature2020", "created": created,
                   "verificationMethod": verification_method or f"{key.did}#{key.did[len('did:key:'):]}"}
        answer = self._ask(op="issue", credential=json.dumps(credential), options=json.dumps(options), jwk=jwk(key))
        assert "result" in answer, f"didkit refused to issue: {answer['error']}"
        return json.loads(answer["result"])

    def verify(self, credential: dict[str, Any] | str) -> list[str]:
        """DIDKit's errors for ``credential`` (empty: it verifies)."""
        text = credential if isinstance(credential, str) else json.dumps(credential)
        answer = self._ask(op="verify", credential=text)
        if "error" in answer:
            return [answer["error"]]
        result = json.loads(answer["result"])
        return list(result["errors"]) or ([] if "proof" in result["checks"] else ["no proof was checked"])

    def stop(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def didkit() -> Iterator[DidkitPeer]:
    peer = DidkitPeer()
    try:
        yield peer
    finally:
        peer.stop()


def _serve() -> None:
    import asyncio

    import didkit as dk

    async def answer(request: dict[str, Any]) -> str:
        op = request["op"]
        if op == "did":
            return dk.key_to_did("key", request["jwk"])
        if op == "vm":
            return await dk.key_to_verification_method("key", request["jwk"])
        if op == "issue":
            return await dk.issue_credential(request["credential"], request["options"], request["jwk"])
        if op == "verify":
            return await dk.verify_credential(request["credential"], VERIFY_OPTIONS)
        raise ValueError(f"unknown op {op}")

    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        try:
            reply = {"result": loop.run_until_complete(answer(json.loads(line)))}
        except Exception as e:  # the boundary: every DIDKit refusal goes back as words  # noqa: BLE001
            reply = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    _serve()
