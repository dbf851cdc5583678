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
