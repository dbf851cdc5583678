"""How a node reaches the consortium's ordering service: ``DATA/network.json``.

A data folder with this file runs networked (transactions ordered through NATS JetStream); one
without it runs solo. The subjects and stream names are derived from the chain id, so every
organisation's node agrees on them without configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

NETWORK_FILE = "network.json"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class NetworkSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One organisation's connection to the ordering service."""

    servers: list[str]
    org: str
    user: str
    password: str
    quorum_wait_ms: int = 5_000  # how long a served checkpoint waits for a quorum of attestations
    format: str = "blokauto-network/1"

    def save(self, data_dir: Path) -> Path:
        path = data_dir / NETWORK_FILE
        path.write_bytes(msgspec.json.format(msgspec.json.encode(self)) + b"\n")
        path.chmod(0o600)  # it holds the organisation's ordering credentials
        return path


def load_network(data_dir: Path) -> NetworkSettings | None:
    path = Path(data_dir) / NETWORK_FILE
    if not path.exists():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=NetworkSettings)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"{path} is not a blokauto network file ({exc})") from None


@dataclass(frozen=True)
class Subjects:
    """Names on the NATS side for one chain.

    ``ORDER`` stream: ``<p>.order.tx`` (signed transactions, message id = tx id) and
    ``<p>.order.cut`` (block cut markers); ``ATTEST`` stream: ``<p>.attest.<org>`` (each
    organisation's signed attestations of the headers it committed).
    """

    chain: str

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.chain):
            raise ValueError(f"chain id {self.chain!r} cannot name a NATS subject (letters, digits, - and _ only)")

    @property
    def prefix(self) -> str:
        return f"blokauto.{self.chain}"

    @property
    def order_stream(self) -> str:
        return f"BLOKAUTO-{self.chain}-ORDER"

    @property
    def attest_stream(self) -> str:
        return f"BLOKAUTO-{self.chain}-ATTEST"

    @property
    def tx(self) -> str:
        return f"{self.prefix}.order.tx"

    @property
    def cut(self) -> str:
        return f"{self.prefix}.order.cut"

    @property
    def order_all(self) -> str:
        return f"{self.prefix}.order.>"

    def attest(self, org: str) -> str:
        if not _TOKEN.match(org):
            raise ValueError(f"organisation id {org!r} cannot name a NATS subject")
        return f"{self.prefix}.attest.{org}"

    @property
    def attest_all(self) -> str:
        return f"{self.prefix}.attest.*"
