"""Over-the-air software from Python, for the maker and the vehicle.

The maker builds its Uptane repositories with ``blokauto.ota.repository`` (python-tuf), serves
them over HTTP and anchors them here; the vehicle's primary ECU runs ``Software.updater(...)``.

    from blokauto.client.software import Software
    from blokauto.ota.repository import Director, ImageRepository

    sw = Software(client)                                        # a Client pinned to the trust anchor
    images = ImageRepository.create(Path("repo/image"))
    director = Director.create(Path("repo/director"))
    sw.register_repository(oem, "image", images.root_bytes())
    sw.register_repository(oem, "director", director.root_bytes())
    sw.anchor_release(oem, images.release([("brake/v2.bin", data, "brake-ecu", 2, "")]))
    director.assign(VIN, [(["brake-1"], images.target("brake/v2.bin"))])
    result = sw.updater(VIN, device_key, director_url=..., images_url=..., state_dir=...).update()

Sending methods return the ``TxInfo`` of the committed transaction (``info.raise_for_status()``
raises the module's error class). Reads of anchors and inventories are proven against a
checkpoint (``Client.state``); the updater trusts nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..core.crypto import KeyPair
from ..modules.software import inventory_key, repository_key
from ..modules.software.messages import AnchorRelease, EcuSpec, FitEcus, RegisterRepository, RotateRoot
from ..ota.updater import Updater
from ._client import Client
from ._results import TxInfo

__all__ = ["Software"]


def _text(data: bytes | str) -> str:
    return data.decode() if isinstance(data, bytes) else data


class Software:
    def __init__(self, client: Client) -> None:
        self.client = client

    # ---------------------------------------------------------------- the maker

    def register_repository(self, by: KeyPair, kind: str, root: bytes | str, *, wait: float = 30.0) -> TxInfo:
        """Anchor the root of the maker's image repository (``kind="image"``) or director."""
        return self.client.send(RegisterRepository(kind=kind, root=_text(root)), by, wait=wait)  # type: ignore[arg-type]

    def rotate_root(self, by: KeyPair, kind: str, root: bytes | str, *, wait: float = 30.0) -> TxInfo:
        """Anchor the next root (signed by the old and the new root keys: ``rotate_root`` of the repository)."""
        return self.client.send(RotateRoot(kind=kind, root=_text(root)), by, wait=wait)  # type: ignore[arg-type]

    def anchor_release(self, by: KeyPair, targets: bytes | str, *, notes: str = "", wait: float = 30.0) -> TxInfo:
        """Anchor a release: the image repository's targets metadata file as it serves it."""
        return self.client.send(AnchorRelease(targets=_text(targets), notes=notes), by, wait=wait)

    def fit_ecus(self, by: KeyPair, vin: str, ecus: Iterable[tuple[str, str, str | None]], *,
                 wait: float = 30.0) -> TxInfo:
        """The maker fits a vehicle's ECUs: (ECU id, hardware id, factory image sha256 or None)."""
        return self.client.send(FitEcus(vin=vin, ecus=[EcuSpec(ecu=e, hardware_id=hw, image=img)
                                                       for e, hw, img in ecus]), by, wait=wait)

    # ---------------------------------------------------------------- reading

    def repository(self, maker: str, kind: str = "image", *, min_height: int = -1) -> dict[str, Any]:
        """A maker's repository as anchored (root and latest release), proven against a checkpoint."""
        sv = self.client.state(repository_key(maker, kind), min_height=min_height)
        if sv.value is None:
            from ..modules.software.errors import UnknownRepository

            raise UnknownRepository(maker=maker, kind=kind)
        return dict(sv.value)

    def inventory(self, vin: str, *, min_height: int = -1, key: KeyPair | None = None) -> dict[str, Any] | None:
        """A vehicle's ECUs and the image each runs, proven (None if none is fitted)."""
        c = self.client if key is None else self.client.as_key(key)
        sv = c.state(inventory_key(vin), min_height=min_height)
        return None if sv.value is None else dict(sv.value)

    def installs(self, vin: str, *, limit: int = 100, offset: int = 0, key: KeyPair | None = None) -> dict[str, Any]:
        c = self.client if key is None else self.client.as_key(key)
        return c.query("software", "installs", vin=vin, limit=limit, offset=offset)

    def releases(self, maker: str, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self.client.query("software", "releases", maker=maker, limit=limit, offset=offset)

    def running(self, maker: str, sha256: str, *, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        """The maker's vehicles whose ECUs run this image now."""
        return self.client.query("software", "running", maker=maker, sha256=sha256, limit=limit, offset=offset)

    # ---------------------------------------------------------------- the vehicle

    def updater(self, vin: str, device_key: KeyPair, *, director_url: str, images_url: str, state_dir: Path,
                **kw: Any) -> Updater:
        """The vehicle's primary ECU (``blokauto.ota.updater.Updater``), signing with ``device_key``."""
        return Updater(self.client, vin, device_key, director_url=director_url, images_url=images_url,
                       state_dir=state_dir, **kw)
