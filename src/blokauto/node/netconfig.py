"""How a node reaches the consortium's ordering service: ``DATA/network.json``.

A data folder with this file runs networked (transactions ordered through NATS JetStream); one
without it runs solo. The subjects and stream names are derived from the chain id, so every
organisation's node agrees on them without configuration.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

NETWORK_FILE = "network.json"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class NetworkSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One organisation's connection to the ordering service, and where its peers' nodes answer.

    Credentials, one of: ``nkey_seed_file`` (the organisation's NATS user nkey seed, a file in the
    data folder), ``creds_file`` (a NATS credentials file: user JWT and nkey seed, for servers run
    with decentralised JWT accounts), or ``user``/``password`` (older files). ``ca_file``: the PEM
    certificate(s) the servers' TLS certificates must chain to; without it, TLS (when a server
    asks for it, or a ``tls://`` URL) trusts the machine's CA store. File names are relative to the
    data folder.
    """

    servers: list[str]
    org: str
    user: str = ""
    password: str = ""
    nkey_seed_file: str = ""
    creds_file: str = ""
    ca_file: str = ""
    peers: list[str] = []  # other organisations' node APIs (http://host:port), for attestations
    quorum_wait_ms: int = 5_000  # how long a served checkpoint waits for a quorum of attestations
    format: str = "blokauto-network/1"

    @property
    def identity(self) -> str:
        if self.nkey_seed_file:
            return f"the nkey in {self.nkey_seed_file}"
        if self.creds_file:
            return f"the credentials in {self.creds_file}"
        return f"user {self.user!r}"

    def connect_options(self, data_dir: Path | None) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``: servers, credentials, TLS and the organisation's inbox prefix."""
        base = Path(data_dir) if data_dir is not None else Path(".")
        opts: dict[str, Any] = {"servers": self.servers, "inbox_prefix": inbox_prefix(self.org)}
        if self.nkey_seed_file:
            opts["nkeys_seed"] = str(base / self.nkey_seed_file)
        elif self.creds_file:
            opts["user_credentials"] = str(base / self.creds_file)
        else:
            opts["user"], opts["password"] = self.user, self.password
        if self.ca_file or any(u.startswith("tls://") for u in self.servers):
            opts["tls"] = tls_context(base / self.ca_file if self.ca_file else None)
        return opts

    def save(self, data_dir: Path) -> Path:
        path = data_dir / NETWORK_FILE
        path.write_bytes(msgspec.json.format(msgspec.json.encode(self)) + b"\n")
        path.chmod(0o600)  # it holds the organisation's ordering credentials
        return path


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client TLS context that verifies the server's certificate and name (against ``ca_file``,
    or the machine's CA store)."""
    if ca_file is not None and not ca_file.exists():
        raise FileNotFoundError(f"no CA certificate at {ca_file} (ca_file in network.json)")
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


def inbox_prefix(org: str) -> str:
    """The organisation's own reply subjects: ``_INBOX_<org>.>`` (only it may subscribe there)."""
    if not _TOKEN.match(org):
        raise ValueError(f"organisation id {org!r} cannot name a NATS subject")
    return f"_INBOX_{org}"


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
