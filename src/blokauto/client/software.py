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

import hashlib
from pathlib import Path
from typing import Any, Iterable

from tuf.api.metadata import Metadata, Targets

from ..core.crypto import KeyPair
from ..modules.software import inventory_key, release_key, repository_key
from ..modules.governance import keys as gov_keys
from ..modules.recalls.messages import ConfirmSoftwareRemedy
from ..modules.software.messages import AnchorRelease, EcuSpec, FitEcus, RegisterRepository, RotateRoot
from ..ota.repository import Director, ImageRepository
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

    def confirm_fix(self, by: KeyPair, campaign: int, vin: str, *, wait: float = 30.0) -> TxInfo:
        """Remedy a software recall on a vehicle that already runs its fix on the ledger (installed
        before the campaign opened): anyone may send it; refused ``fix_not_installed`` otherwise."""
        return self.client.send(ConfirmSoftwareRemedy(campaign=campaign, vin=vin), by, wait=wait)

    # ---------------------------------------------------------------- a repository and its anchors together

    def maker_of(self, key: KeyPair) -> str:
        """The organisation a member key belongs to (proven)."""
        sv = self._as(key).state(gov_keys.MEMBER + key.did)
        if sv.value is None:
            raise ValueError(f"{key.did} is not a member key of any organisation")
        return str(sv.value["org"])

    def release(self, by: KeyPair, repo: ImageRepository, images: list[tuple[str, bytes, str, int, str]], *,
                notes: str = "", only: bool = False, wait: float = 30.0) -> TxInfo:
        """A release done safely: the repository first catches up with what the ledger anchored
        (``sync``), the release is signed, anchored, and published only once anchored; a refused
        release is discarded, so vehicles never see it. ``only``: list only ``images`` (not those of
        the previous release too)."""
        self.sync(repo, self.maker_of(by), key=by)
        targets = repo.release(images, keep=not only, publish=False)
        info = self.anchor_release(by, targets, notes=notes, wait=wait)
        if info.ok:
            repo.publish(targets)
        else:
            repo.discard(targets)
        return info

    def rotate(self, by: KeyPair, repo: ImageRepository | Director, *, add: dict[str, list[KeyPair]] | None = None,
               remove: dict[str, list[str]] | None = None, thresholds: dict[str, int] | None = None,
               wait: float = 30.0) -> TxInfo:
        """A root rotation done safely: signed, anchored, published once anchored; then what vehicles
        fetch is signed again under the new root (an image repository's release anchored again, the
        director's vehicles re-signed), so no vehicle is left with metadata the new keys do not sign."""
        maker = self.maker_of(by)
        self.sync(repo, maker, key=by)
        root = repo.rotate_root(add=add, remove=remove, thresholds=thresholds, publish=False)
        info = self.rotate_root(by, repo.kind, root, wait=wait)
        if not info.ok:
            return info
        repo.publish_root(root)
        if isinstance(repo, ImageRepository) and repo.published_version():
            again = self.release(by, repo, [], notes="re-signed after a root rotation", wait=wait)
            again.raise_for_status()
        else:
            repo.resign()
        return info

    def sync(self, repo: ImageRepository | Director, maker: str, *, key: KeyPair | None = None) -> list[str]:
        """Bring a repository in line with what the ledger anchored (after a release or rotation that
        was anchored but not published: the command or the machine stopped in between): the anchored
        root and release are published from the ledger's own copies. Returns what it did."""
        anchor = self.repository(maker, repo.kind, key=key)
        done: list[str] = []
        if anchor["root_sha256"] != hashlib.sha256(repo.root_bytes()).hexdigest():
            if anchor["root_version"] < repo.root().signed.version:
                raise ValueError(f"{repo.directory} serves root version {repo.root().signed.version}, newer than the "
                                 f"anchored {anchor['root_version']}: anchor it (`software rotate-root` stopped "
                                 f"before anchoring?) or remove metadata/{repo.root().signed.version}.root.json")
            repo.publish_root(anchor["root"].encode())
            repo.resign()
            done.append(f"published root {anchor['root_version']} as anchored")
        if isinstance(repo, ImageRepository) and anchor["release"] > repo.published_version():
            sv = self._as(key).state(release_key(maker, anchor["release"]))
            targets = str((sv.value or {}).get("targets", "")).encode()
            if hashlib.sha256(targets).hexdigest() != anchor["release_sha256"]:
                raise ValueError(f"the ledger's copy of release {anchor['release']} does not match its anchor")
            version = anchor["release"]
            (repo.metadata_dir / f"{version}.targets.json").write_bytes(targets)
            missing = [t.path for t in Metadata[Targets].from_bytes(targets).signed.targets.values()
                       if not repo.has_image(t)]
            if missing:
                raise ValueError(f"release {version} is anchored but {repo.directory} lacks its images "
                                 f"{', '.join(missing[:5])}: restore them, then run this again")
            repo.publish(targets)
            done.append(f"published release {version} as anchored")
        return done

    # ---------------------------------------------------------------- reading

    def repository(self, maker: str, kind: str = "image", *, min_height: int = -1,
                   key: KeyPair | None = None) -> dict[str, Any]:
        """A maker's repository as anchored (root and latest release), proven against a checkpoint."""
        sv = self._as(key).state(repository_key(maker, kind), min_height=min_height)
        if sv.value is None:
            from ..modules.software.errors import UnknownRepository

            raise UnknownRepository(maker=maker, kind=kind)
        return dict(sv.value)

    def inventory(self, vin: str, *, min_height: int = -1, key: KeyPair | None = None) -> dict[str, Any] | None:
        """A vehicle's ECUs and the image each runs, proven (None if none is fitted)."""
        sv = self._as(key).state(inventory_key(vin), min_height=min_height)
        return None if sv.value is None else dict(sv.value)

    def installs(self, vin: str, *, limit: int = 100, offset: int = 0, key: KeyPair | None = None) -> dict[str, Any]:
        return self._as(key).query("software", "installs", vin=vin, limit=limit, offset=offset)

    def releases(self, maker: str, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self.client.query("software", "releases", maker=maker, limit=limit, offset=offset)

    def running(self, maker: str, sha256: str, *, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        """The maker's vehicles whose ECUs run this image now."""
        return self.client.query("software", "running", maker=maker, sha256=sha256, limit=limit, offset=offset)

    def _as(self, key: KeyPair | None) -> Client:
        return self.client if key is None or key is self.client.key else self.client.as_key(key)

    # ---------------------------------------------------------------- the vehicle

    def updater(self, vin: str, device_key: KeyPair, *, director_url: str, images_url: str, state_dir: Path,
                **kw: Any) -> Updater:
        """The vehicle's primary ECU (``blokauto.ota.updater.Updater``), signing with ``device_key``."""
        return Updater(self.client, vin, device_key, director_url=director_url, images_url=images_url,
                       state_dir=state_dir, **kw)
