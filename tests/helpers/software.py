"""Shared set-up for the software (OTA) tests: oem's image repository and director (python-tuf,
on disk, expiring relative to the test chain's clock), anchored on a MemoryLedger; Alice's car
(``helpers.insurance``'s world, device keys DEVICE and DEVICE2) fitted with two ECUs."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from blokauto.modules.software.messages import (AnchorRelease, EcuSpec, FitEcus, Installed, RegisterRepository,
                                                ReportManifest)
from blokauto.modules.software.metadata import sha256
from blokauto.ota.repository import Director, ImageRepository

from conftest import T0, Chain
from helpers.insurance import DEVICE, OEM, VIN, now, ok, send, world

BRAKE_HW, GATEWAY_HW = "brake-ecu-v2", "gateway-v1"
ECUS = [("brake-1", BRAKE_HW), ("gw-1", GATEWAY_HW)]


def chain_clock(chain: Chain) -> Any:
    """A repository clock that follows the chain's block time (metadata expires relative to it)."""
    return lambda: datetime.fromtimestamp(now(chain) // 1000, timezone.utc)


def image(name: str, version: int) -> bytes:
    return f"{name} firmware v{version}\n".encode() * 64


class OtaWorld:
    """oem's repositories under ``root`` and a chain on which they are anchored."""

    def __init__(self, root: Path, chain: Chain | None = None) -> None:
        self.chain = chain or world(policy=False)
        clock = chain_clock(self.chain)
        self.images = ImageRepository.create(root / "image", now=clock)
        self.director = Director.create(root / "director", now=clock)
        ok(self.chain, OEM, RegisterRepository(kind="image", root=self.images.root_bytes().decode()))
        ok(self.chain, OEM, RegisterRepository(kind="director", root=self.director.root_bytes().decode()))

    def release(self, *images: tuple[str, bytes, str, int, str], **kw: Any) -> bytes:
        """Publish and anchor a release of ``images`` (path, data, hardware id, counter, bundle)."""
        data = self.images.release(list(images), **kw)
        ok(self.chain, OEM, AnchorRelease(targets=data.decode()))
        return data

    def fit(self, vin: str = VIN, factory: dict[str, str] | None = None) -> None:
        factory = factory or {}
        ok(self.chain, OEM, FitEcus(vin=vin, ecus=[EcuSpec(ecu=e, hardware_id=hw, image=factory.get(e))
                                                   for e, hw in ECUS]))

    def manifest(self, *installed: tuple[str, str, bytes], vin: str = VIN, t: int | None = None) -> ReportManifest:
        """A manifest naming (ecu, path, image bytes) installs."""
        return ReportManifest(vin=vin, t=t if t is not None else now(self.chain),
                              installed=[Installed(ecu=e, path=p, image=sha256(d)) for e, p, d in installed])

    def report(self, *installed: tuple[str, str, bytes], key: Any = DEVICE, **kw: Any) -> Any:
        return send(self.chain, key, self.manifest(*installed, **kw))


def ota_world(tmp_path: Path) -> OtaWorld:
    """oem's repositories anchored; release 1 lists brake v1 (counter 1) and gateway v1 (counter 1);
    Alice's car fitted with both ECUs running them."""
    w = OtaWorld(tmp_path)
    w.release(("brake/brake-1.bin", image("brake", 1), BRAKE_HW, 1, ""),
              ("gateway/gw-1.bin", image("gw", 1), GATEWAY_HW, 1, ""))
    w.fit(factory={"brake-1": sha256(image("brake", 1)), "gw-1": sha256(image("gw", 1))})
    return w


__all__ = ["BRAKE_HW", "ECUS", "GATEWAY_HW", "OtaWorld", "T0", "image", "ota_world"]


# ---------------------------------------------------------------- metadata written by hand (attacks and edges)
#
# The repositories above sign what a careful maker signs; the attacks need what an attacker (or a
# careless maker) writes: any version, expiry, targets and custom fields, signed by any keys. These
# build TUF metadata with python-tuf's Metadata API and sign it with ``ota.repository.signer_for``.

from tuf.api.metadata import Metadata, Role, Root, Signed, TargetFile, Targets
from tuf.api.serialization.json import JSONSerializer

from blokauto.core.crypto import KeyPair
from blokauto.modules.software.state import REPOSITORIES
from blokauto.ota.repository import public_key, signer_for

from conftest import K

COMPACT = JSONSerializer(compact=True)


def tuf_time(ms: int) -> datetime:
    """A TUF expiry at ``ms`` since the epoch (whole seconds, as TUF writes it: rounded down)."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc)


def signed_text(signed: Signed, *signers: KeyPair) -> str:
    """``signed`` as one metadata file (compact JSON) with a signature of each of ``signers``."""
    md = Metadata(signed)
    for k in signers:
        md.sign(signer_for(k), append=True)
    return md.to_bytes(COMPACT).decode()


def new_root(keys: dict[str, list[KeyPair]], *, expires: datetime, version: int = 1,
             thresholds: dict[str, int] | None = None) -> Root:
    """A root naming ``keys`` for the four top-level roles (threshold 1 each unless ``thresholds``)."""
    root = Root(version=version, expires=expires, consistent_snapshot=True)
    for role in ("root", "targets", "snapshot", "timestamp"):
        root.roles[role] = Role([], (thresholds or {}).get(role, 1))
        for k in keys.get(role, []):
            root.add_key(public_key(k), role)
    return root


def role_keys(n: int, label: str = "k") -> dict[str, list[KeyPair]]:
    """``n`` deterministic keys for each top-level role."""
    return {role: [K(f"tuf-{label}-{role}-{i}") for i in range(n)] for role in ("root", "targets", "snapshot",
                                                                             "timestamp")}


def target(path: str, data: bytes | str, hardware_id: str | None = BRAKE_HW, counter: Any = 1, bundle: str = "",
           *, custom: Any = None, hashes: dict[str, str] | None = None) -> TargetFile:
    """A target entry for ``data`` (bytes, or a sha256 in hex) with Uptane's custom fields (``custom``
    replaces them all; a field given as None is left out)."""
    sha = sha256(data) if isinstance(data, bytes) else data
    if custom is None:
        custom = {k: v for k, v in (("hardware_id", hardware_id), ("release_counter", counter)) if v is not None}
        if bundle:
            custom["bundle"] = bundle
    fields = {} if custom is ... else {"custom": custom}
    return TargetFile(length=len(data) if isinstance(data, bytes) else 1024,
                      hashes=hashes if hashes is not None else {"sha256": sha}, path=path,
                      unrecognized_fields=fields)


def new_targets(entries: list[TargetFile], *, version: int, expires: datetime) -> Targets:
    return Targets(version=version, expires=expires, targets={t.path: t for t in entries})


def image_keys(w: OtaWorld, role: str) -> list[KeyPair]:
    """The keys of ``role`` in oem's image repository (its current root)."""
    return w.images.role_keys(role)


def release_text(w: OtaWorld, *entries: TargetFile, version: int | None = None, expires: int | None = None,
                 signers: list[KeyPair] | None = None) -> str:
    """A release of oem's image repository listing ``entries``: the next version after the anchored one,
    expiring 90 days after the chain's head (``expires``: at that ms), signed by its targets keys."""
    anchored = REPOSITORIES.get(w.chain.ledger, "oem", "image")
    v = version if version is not None else anchored.release + 1
    exp = tuf_time(expires if expires is not None else now(w.chain) + 90 * 86_400_000)
    return signed_text(new_targets(list(entries), version=v, expires=exp),
                       *(signers if signers is not None else image_keys(w, "targets")))


def installed(*items: tuple[str, str, bytes | str]) -> list[Installed]:
    """(ecu, path, image bytes or sha256) as a manifest's entries."""
    return [Installed(ecu=e, path=p, image=sha256(d) if isinstance(d, bytes) else d) for e, p, d in items]


__all__ += ["COMPACT", "image_keys", "installed", "new_root", "new_targets", "release_text", "role_keys", "signed_text",
            "target", "tuf_time"]


# ---------------------------------------------------------------- queries that resolve with SQL, on a MemoryLedger

import sqlite3

from helpers.vehicles import MemoryView


class SqlView(MemoryView):
    """A ``QueryView`` over a MemoryLedger at its newest block that reaches the modules' doors and
    answers ``sql`` from an in-memory SQLite copy of the index tables the query names (software's
    ``running``, recalls' progress)."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self.need = chain.registry.provider
        self.time = chain.ledger.head.time

    def sql(self, text: str, args: Any = (), **tables: Any) -> list[tuple]:
        db = sqlite3.connect(":memory:")
        try:
            for t in tables.values():
                cols = t.column_names
                db.execute(f"CREATE TABLE {t.name} ({', '.join(f'{c} {kind}' for c, kind in t.columns)})")
                db.executemany(f"INSERT INTO {t.name} VALUES ({', '.join('?' * len(cols))})",
                               [tuple(r[c] for c in cols) for r in self.ledger.index[t.name].values()])
            return db.execute(text.format(**{k: t.name for k, t in tables.items()}), list(args)).fetchall()
        finally:
            db.close()


__all__ += ["SqlView"]
