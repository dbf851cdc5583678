"""Keys on disk: one JSON file per key under ``<data>/keys/``, readable only by its owner."""

from __future__ import annotations

import os
import re
from pathlib import Path

import msgspec

from .core.crypto import KeyPair

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeyFile(msgspec.Struct, omit_defaults=True):
    name: str
    did: str
    seed: str
    kind: str = "member"  # member, node, owner, device
    org: str = ""


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a valid key name (letters, digits, '_', '.', '-')")
        return self.directory / f"{name}.json"

    def create(self, name: str, *, kind: str = "member", org: str = "", key: KeyPair | None = None) -> KeyPair:
        path = self.path(name)
        if path.exists():
            raise FileExistsError(f"key {name!r} already exists at {path}")
        key = key or KeyPair.generate()
        self.directory.mkdir(parents=True, exist_ok=True)
        data = msgspec.json.encode(KeyFile(name, key.did, key.seed.hex(), kind, org))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data + b"\n")
        return key

    def load(self, name_or_did: str) -> KeyPair:
        return KeyPair(bytes.fromhex(self.entry(name_or_did).seed))

    def entry(self, name_or_did: str) -> KeyFile:
        if name_or_did.startswith("did:key:"):
            for entry in self.entries():
                if entry.did == name_or_did:
                    return entry
            raise FileNotFoundError(f"no key file for {name_or_did} in {self.directory}")
        path = self.path(name_or_did)
        if not path.exists():
            raise FileNotFoundError(f"no key named {name_or_did!r} in {self.directory}")
        return msgspec.json.decode(path.read_bytes(), type=KeyFile)

    def entries(self) -> list[KeyFile]:
        if not self.directory.exists():
            return []
        return [msgspec.json.decode(p.read_bytes(), type=KeyFile) for p in sorted(self.directory.glob("*.json"))]
