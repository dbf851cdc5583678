"""Creating a new chain: keys for the founding organisations and the genesis document."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..core.block import Genesis, GenesisOrganisation
from ..core.chain import MemoryLedger
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..keystore import KeyStore
from ..modules import default_registry
from .node import GENESIS_FILE

#: Rules a new chain turns on from its genesis (chains created before a rule existed keep it off
#: until their governance votes it on, so their blocks replay to the same state).
NEW_CHAIN_PARAMS = {"odometer_max_kmh": 300}


@dataclass(frozen=True)
class OrgSpec:
    id: str
    roles: tuple[str, ...]
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> "OrgSpec":
        """``id:role,role[:Display Name]``, e.g. ``bavaria-motors:manufacturer:Bavaria Motors``."""
        parts = text.split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(f"{text!r} is not ID:ROLE[,ROLE...][:NAME]")
        roles = tuple(r.strip() for r in parts[1].split(",") if r.strip())
        return cls(parts[0], roles, parts[2] if len(parts) > 2 else parts[0])


def init_chain(data_dir: Path, *, chain: str, orgs: list[OrgSpec], quorum: int = 1, nodes_per_org: int = 1,
               node_orgs: int | None = None, params: dict[str, int] | None = None,
               genesis_time: int | None = None, key_factory=None) -> Genesis:
    """Write ``genesis.json`` and the founding keys (``<org>-admin``, ``<org>-node``) into ``data_dir``.

    ``node_orgs`` limits how many organisations get node keys (all by default); ``key_factory``
    (label -> KeyPair) makes keys deterministic for tests and demos.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / GENESIS_FILE
    if path.exists() or (data_dir / "chain.db").exists():
        raise FileExistsError(f"{data_dir} already holds a chain; choose another --data folder")
    make = key_factory or (lambda label: KeyPair.generate())
    new_keys: list[tuple[str, str, str, KeyPair]] = []  # name, kind, org, key
    members = []
    for i, org in enumerate(orgs):
        admin = make(f"{org.id}-admin")
        new_keys.append((f"{org.id}-admin", "member", org.id, admin))
        nodes = []
        if node_orgs is None or i < node_orgs:
            for n in range(nodes_per_org):
                name = f"{org.id}-node" if nodes_per_org == 1 else f"{org.id}-node{n + 1}"
                key = make(name)
                new_keys.append((name, "node", org.id, key))
                nodes.append(key.did)
        members.append(GenesisOrganisation(org.id, org.name or org.id, sorted(org.roles), [admin.did], nodes))
    genesis = Genesis(
        chain=chain,
        time=genesis_time if genesis_time is not None else time.time_ns() // 1_000_000,
        organisations=members,
        quorum=quorum,
        params=dict(sorted({**NEW_CHAIN_PARAMS, **(params or {})}.items())),
    )
    MemoryLedger(default_registry(), genesis)  # refuses an invalid genesis before anything is written
    keys = KeyStore(data_dir / "keys")
    for name, kind, org_id, key in new_keys:
        keys.create(name, kind=kind, org=org_id, key=key)
    path.write_bytes(canonical(genesis) + b"\n")
    return genesis
