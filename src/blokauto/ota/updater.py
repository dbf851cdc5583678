"""The vehicle's primary ECU: Uptane full verification against the ledger's anchors, an install
that is all or nothing, and a signed version manifest on the ledger.

What ``Updater.update`` checks, in order (each refusal is the software module's error, with the
code the ledger gives the same attack):

1. The anchors, proven: the maker's director and image-repository records are read from the node
   with their state proofs and checked against a checkpoint signed by a quorum of the consortium
   (``Client.state``). The checkpoint's time (or the vehicle's clock, if later) is "now".
2. Each repository through python-tuf's client (``tuf.ngclient``), started from the root the ledger
   anchors: timestamp, snapshot and targets verified by their role keys and thresholds, never
   older than what the vehicle trusted before (``metadata_rollback``), never expired
   (``metadata_expired``: a freeze), no longer than the size limits (``endless_data``). The root a
   repository serves must be the anchored one (``root_not_anchored``), and the image repository's
   targets must be the latest release anchored, byte for byte (``release_not_anchored``).
3. The director's assignment against the image repository (mix-and-match): each image the director
   names is listed by the image repository with the same length, hashes and custom fields
   (``image_mismatch``); for ECUs of this vehicle (``unknown_ecu``), each named once
   (``duplicate_ecu``), of its hardware (``wrong_hardware_id``), with a release counter no lower than
   what it runs (``software_rollback``); a bundle is assigned whole (``partial_bundle``).
4. Every image downloaded and checked (length, sha256) before anything is installed
   (``image_hash_mismatch``, ``endless_data``); then all are installed at once: the vehicle's
   inventory file is replaced atomically, so a crash leaves the old software or the new, never half.
5. The manifest: the ECUs' images, dated by the vehicle's clock, signed by the device key and
   committed (the ledger checks it again). It is kept until committed and resent on the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec
import urllib3
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile, Targets
from tuf.ngclient import Updater as TufUpdater
from tuf.ngclient import UpdaterConfig

from ..core.access import ReadRefused
from ..core.crypto import KeyPair
from ..core.encoding import canonical, decode
from ..core.errors import BlokautoError, ReplayedTx
from ..core.tx import Tx, tx_id
from ..modules.software import MAX_METADATA_BYTES, errors, inventory_key, is_ident, repository_key, sha256
from ..modules.software.messages import Installed, ReportManifest
from ..modules.vehicles import keys as vehicle_keys
from ..modules.vehicles.errors import DeviceKeyRevoked, NotADeviceOfVehicle
from .repository import _write

#: The most metadata the updater downloads per file (the ledger takes no larger file).
CONFIG = UpdaterConfig(max_root_rotations=32, root_max_length=MAX_METADATA_BYTES,
                       timestamp_max_length=16_384, snapshot_max_length=MAX_METADATA_BYTES,
                       targets_max_length=MAX_METADATA_BYTES)
#: A checkpoint older than this (against the vehicle's clock) is not fresh enough to update by.
MAX_CHECKPOINT_AGE_MS = 86_400_000


class EcuImage(msgspec.Struct, frozen=True):
    """What one ECU runs on this vehicle."""

    ecu: str
    hardware_id: str
    path: str = ""
    image: str = ""  # sha256
    release_counter: int = 0
    file: str = ""  # the installed image, under the state directory


class VehicleState(msgspec.Struct):
    """The primary ECU's own record (``<state>/vehicle.json``): what each ECU runs, and a manifest
    not yet committed (the signed transaction, hex)."""

    vin: str
    maker: str
    ecus: list[EcuImage]
    pending_manifest: str = ""
    last_t: int = 0
    #: What the ECUs ran before the pending install: restored if the ledger refuses its manifest.
    previous: list[EcuImage] = []


@dataclass
class Assignment:
    """One image the director assigns, verified, for the ECUs named with it."""

    ecus: list[str]
    target: TargetFile
    hardware_id: str
    release_counter: int
    bundle: str
    installed: bool = False  # every ECU named already runs it


@dataclass
class UpdatePlan:
    """What a verified update would install (empty: the vehicle is up to date)."""

    checkpoint_height: int
    image_release: int
    assignments: list[Assignment] = field(default_factory=list)


@dataclass
class UpdateResult:
    plan: UpdatePlan
    installed: list[EcuImage]
    manifest_tx: str = ""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Updater:
    """The primary ECU of ``vin``: ``client`` reaches a node (its requests signed by ``device_key``),
    ``director_url`` and ``images_url`` serve the maker's repositories, ``state_dir`` is the ECU's own
    storage. ``clock`` (ms) is the vehicle's clock."""

    def __init__(self, client: Any, vin: str, device_key: KeyPair, *, director_url: str, images_url: str,
                 state_dir: Path, clock: Callable[[], int] = _now_ms, fetcher: Any = None) -> None:
        if not vin.isalnum() or len(vin) > 40:
            raise ValueError(f"{vin!r} is not a VIN")
        self._own_client = client.key is not device_key
        self.client = client.as_key(device_key) if self._own_client else client
        self.vin = vin
        self.key = device_key
        self.director_url = director_url.rstrip("/")
        self.images_url = images_url.rstrip("/")
        self.dir = Path(state_dir)
        self.clock = clock
        self.fetcher = fetcher

    def close(self) -> None:
        """Close the HTTP connections of the node client made for this updater (not a client passed in
        that already signs with the device key)."""
        if self._own_client:
            self.client.close()

    def __enter__(self) -> "Updater":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- the vehicle's own record

    @property
    def state_file(self) -> Path:
        return self.dir / "vehicle.json"

    def load_state(self) -> VehicleState:
        """The ECU's record; the first time, what the ledger says the vehicle's ECUs run (proven)."""
        if self.state_file.exists():
            return msgspec.json.decode(self.state_file.read_bytes(), type=VehicleState)
        sv = self.client.state(inventory_key(self.vin))
        if sv.value is None:
            raise errors.UnknownEcu(vin=self.vin, ecu="(none fitted)")
        inv = msgspec.convert(sv.value, dict)
        st = VehicleState(self.vin, inv["maker"], [EcuImage(e["ecu"], e["hardware_id"], e.get("path", ""),
                                                            e.get("image", ""), e.get("release_counter", 0))
                                                   for e in inv["ecus"]], last_t=int(inv.get("last_t", 0)))
        self._save(st)
        return st

    def _save(self, st: VehicleState) -> None:
        _write(self.state_file, msgspec.json.encode(st))

    # ---------------------------------------------------------------- verification

    def _anchor(self, maker: str, kind: str) -> tuple[dict[str, Any], Any]:
        sv = self.client.state(repository_key(maker, kind))
        if sv.value is None:
            raise errors.UnknownRepository(maker=maker, kind=kind)
        return msgspec.convert(sv.value, dict), sv.checkpoint

    def _tuf(self, kind: str, anchor: dict[str, Any], base_url: str, reference_ms: int) -> TufUpdater:
        """python-tuf's client for one repository, trusting the root the ledger anchors, refreshed."""
        metadata_dir = self.dir / "tuf" / kind
        metadata_dir.mkdir(parents=True, exist_ok=True)
        upd = TufUpdater(str(metadata_dir), f"{base_url}/", str(self.dir / "downloads"),
                         f"{self.images_url}/targets/", fetcher=self.fetcher, config=CONFIG,
                         bootstrap=anchor["root"].encode())
        # The reference time for expiry: the quorum-signed checkpoint's (python-tuf would use this
        # machine's clock; a vehicle's clock may be wrong or set back).
        upd._trusted_set.reference_time = datetime.fromtimestamp(reference_ms // 1000, timezone.utc)
        with _refusals(kind, base_url):
            upd.refresh()
        served = metadata_dir / "root.json"
        if served.exists() and upd._trusted_set.root.version != anchor["root_version"]:
            raise errors.RootNotAnchored(kind=kind, maker=anchor["maker"], version=upd._trusted_set.root.version,
                                         sha256=sha256(served.read_bytes()), anchored=anchor["root_version"],
                                         anchored_sha256=anchor["root_sha256"])
        return upd

    def check(self) -> UpdatePlan:
        """Uptane full verification of what the director assigns this vehicle; nothing is downloaded
        beyond metadata and nothing installed."""
        st = self.load_state()
        return self._verify(st)[0]

    def _verify(self, st: VehicleState) -> tuple[UpdatePlan, TufUpdater]:
        director_anchor, cp = self._anchor(st.maker, "director")
        image_anchor, _ = self._anchor(st.maker, "image")
        local = self.clock()
        if cp.header.time + MAX_CHECKPOINT_AGE_MS < local:
            raise errors.MetadataExpired(role="checkpoint", reason=f"the node's newest checkpoint (block "
                                         f"{cp.header.height}) is from {cp.header.time} ms, more than a day before "
                                         f"the vehicle's clock {local} ms")
        now = max(cp.header.time, local)
        director = self._tuf("director", director_anchor, f"{self.director_url}/vehicles/{self.vin}/metadata", now)
        images = self._tuf("image", image_anchor, f"{self.images_url}/metadata", now)
        self._check_release(images, image_anchor)
        plan = UpdatePlan(cp.header.height, image_anchor["release"])
        assigned = director._trusted_set.targets.targets
        image_targets = images._trusted_set.targets
        ecus = {e.ecu: e for e in st.ecus}
        seen: set[str] = set()
        for path, target in sorted(assigned.items()):
            a = self._check_assignment(path, target, image_targets, ecus, seen)
            a.installed = all(ecus[e].image == a.target.hashes["sha256"] for e in a.ecus)
            plan.assignments.append(a)
        self._check_bundles(plan, image_targets, ecus)
        return plan, images

    def _check_release(self, images: TufUpdater, anchor: dict[str, Any]) -> None:
        """The image repository's targets are the latest release the ledger anchors, byte for byte."""
        served = (self.dir / "tuf" / "image" / "targets.json").read_bytes()
        version = images._trusted_set.targets.version
        if version < anchor["release"]:
            raise errors.MetadataRollback(role="targets", reason=f"the image repository serves version {version}; "
                                          f"release {anchor['release']} is anchored")
        if version != anchor["release"] or sha256(served) != anchor["release_sha256"]:
            raise errors.ReleaseNotAnchored(what=f"the image repository's targets version {version} "
                                            f"({sha256(served)[:16]})", maker=anchor["maker"])

    def _check_assignment(self, path: str, target: TargetFile, image_targets: Targets, ecus: dict[str, EcuImage],
                          seen: set[str]) -> Assignment:
        custom = target.unrecognized_fields.get("custom")
        custom = custom if isinstance(custom, dict) else {}
        listed = image_targets.targets.get(path)
        if listed is None:
            raise errors.ReleaseNotAnchored(what=f"image {path!r} the director assigns", maker="the maker")
        image_custom = listed.unrecognized_fields.get("custom")
        image_custom = image_custom if isinstance(image_custom, dict) else {}
        if target.length != listed.length or target.hashes != listed.hashes:
            raise errors.ImageMismatch(what=f"image {path!r}", reason="the director and the image repository give "
                                       "different lengths or hashes")
        for name in ("hardware_id", "release_counter", "bundle"):
            if custom.get(name) != image_custom.get(name):
                raise errors.ImageMismatch(what=f"image {path!r}", reason=f"the director and the image repository "
                                           f"give different {name}")
        hw = image_custom.get("hardware_id")
        counter = image_custom.get("release_counter")
        if not isinstance(hw, str) or type(counter) is not int:
            raise errors.InvalidRelease(reason=f"target {path!r} has no hardware_id and release_counter")
        named = custom.get("ecus")
        if not isinstance(named, list) or not named or not all(isinstance(e, str) and is_ident(e) for e in named):
            raise errors.InvalidMetadata(role="targets", reason=f"the director names no ECUs for {path!r}")
        for ecu_id in named:
            ecu = ecus.get(ecu_id)
            if ecu is None:
                raise errors.UnknownEcu(vin=self.vin, ecu=ecu_id)
            if ecu_id in seen:
                raise errors.DuplicateEcu(ecu=ecu_id)
            seen.add(ecu_id)
            if ecu.hardware_id != hw:
                raise errors.WrongHardwareId(path=path, image_hardware=hw, ecu=ecu_id, ecu_hardware=ecu.hardware_id)
            if counter < ecu.release_counter:
                raise errors.SoftwareRollback(path=path, counter=counter, current=ecu.release_counter, ecu=ecu_id)
        return Assignment(list(named), listed, hw, counter, str(image_custom.get("bundle") or ""))

    @staticmethod
    def _check_bundles(plan: UpdatePlan, image_targets: Targets, ecus: dict[str, EcuImage]) -> None:
        """A bundle's image for each hardware this vehicle has goes to every ECU of that hardware."""
        after = {e: ecu.image for e, ecu in ecus.items()}
        for a in plan.assignments:
            for e in a.ecus:
                after[e] = a.target.hashes["sha256"]
        for a in plan.assignments:
            if not a.bundle:
                continue
            for path, t in image_targets.targets.items():
                c = t.unrecognized_fields.get("custom")
                if not isinstance(c, dict) or c.get("bundle") != a.bundle:
                    continue
                for ecu_id, ecu in ecus.items():
                    if ecu.hardware_id == c.get("hardware_id") and after[ecu_id] != t.hashes.get("sha256"):
                        raise errors.PartialBundle(bundle=a.bundle, ecu=ecu_id, hardware_id=ecu.hardware_id, path=path)

    # ---------------------------------------------------------------- installing and reporting

    def update(self, *, wait: float = 30.0, progress: Callable[[str], None] | None = None) -> UpdateResult:
        """Verify, download every image, install them all at once, and commit the signed manifest.
        A manifest left from an earlier run is committed first."""
        say = progress or (lambda _: None)
        with self._locked(say):
            return self._update(wait, say)

    @contextlib.contextmanager
    def _locked(self, say: Callable[[str], None]) -> Iterator[None]:
        """One update of a vehicle at a time (a second run waits for the first, then finds it done)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "update.lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say("another update of this vehicle is running: waiting for it")
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _update(self, wait: float, say: Callable[[str], None]) -> UpdateResult:
        st = self.load_state()
        if st.pending_manifest:
            say("committing the manifest of the last install")
            self._commit_pending(st, wait)
        plan, images = self._verify(st)
        todo = [a for a in plan.assignments if not a.installed]
        if not todo:
            return UpdateResult(plan, [])
        self._require_device_key()
        staging = self.dir / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        files: dict[str, Path] = {}
        for a in todo:
            say(f"downloading {a.target.path} ({a.target.length:,} bytes)")
            dest = staging / a.target.hashes["sha256"]
            with _refusals("image", self.images_url, path=a.target.path, length=a.target.length):
                images.download_target(a.target, str(dest))
            files[a.target.hashes["sha256"]] = dest
        store = self.dir / "images"
        store.mkdir(exist_ok=True)
        for sha, path in files.items():
            os.replace(path, store / sha)
        by_ecu = {e: a for a in todo for e in a.ecus}
        new_ecus = [EcuImage(e.ecu, e.hardware_id, a.target.path, a.target.hashes["sha256"], a.release_counter,
                             f"images/{a.target.hashes['sha256']}") if (a := by_ecu.get(e.ecu)) else e
                    for e in st.ecus]
        t = max(self.clock(), st.last_t + 1)
        msg = ReportManifest(vin=self.vin, t=t, installed=[Installed(ecu=e.ecu, path=e.path, image=e.image)
                                                           for e in new_ecus if e.image])
        tx = self.client.sign(self.client.build(msg, self.key), self.key)
        # The install's commit point: the new inventory and its manifest, in one atomic write.
        st = VehicleState(self.vin, st.maker, new_ecus, canonical(tx).hex(), t, previous=list(st.ecus))
        self._save(st)
        shutil.rmtree(staging, ignore_errors=True)
        say(f"installed {len(todo)} image(s); committing the signed manifest")
        txid = self._commit_pending(st, wait)
        return UpdateResult(plan, [e for e in new_ecus if e.ecu in by_ecu], txid)

    def _require_device_key(self) -> None:
        """Refuse before anything is downloaded unless this ECU's key is a current device key of the
        vehicle (read with its proof): the ledger would refuse its manifest, and the vehicle would run
        software its record does not show."""
        try:
            sv = self.client.state(vehicle_keys.VEHICLE + self.vin)
            if self.key.did in (sv.value or {}).get("device_keys", []):
                return
        except ReadRefused:  # the node shows a vehicle's record to its current device keys only
            pass
        # a key asks what it is to the vehicle (a revoked key learns its revocation, nothing else)
        status = self.client.query("vehicles", "device_status", vin=self.vin, key=self.key.did)
        if status.get("status") == "retired":
            raise DeviceKeyRevoked(signer=self.key.did, vin=self.vin, height=status["height"], reason=status["reason"])
        raise NotADeviceOfVehicle(signer=self.key.did, vin=self.vin)

    def _commit_pending(self, st: VehicleState, wait: float) -> str:
        """Commit the pending manifest; if the ledger refuses it, the install is undone (the ECUs'
        previous images are kept in the store) and the refusal raised."""
        raw = bytes.fromhex(st.pending_manifest)
        txid = tx_id(decode(raw, Tx[ReportManifest]).body).hex()
        try:
            self.client.submit(raw)
        except ReplayedTx:
            pass  # committed by an earlier run that stopped before it heard back: read its receipt
        except BlokautoError as err:
            if err.retryable:
                raise  # the node is busy: the manifest stays pending for the next run
            self._undo(st)
            raise
        info = self.client.receipt(txid, wait=wait)
        # manifest_unchanged: the ledger already records these very images (a vehicle restored from an
        # older copy of its storage, say): the install stands, nothing is left to report
        if not info.ok and info.receipt.code != errors.ManifestUnchanged.code:
            self._undo(st)
            info.raise_for_status()
        st.pending_manifest, st.previous = "", []
        self._save(st)
        self._prune(st)
        return txid

    def _prune(self, st: VehicleState) -> None:
        """Delete downloaded images no ECU runs any more (a pending install keeps its previous ones)."""
        keep = {e.image for e in st.ecus} | {e.image for e in st.previous}
        for f in (self.dir / "images").glob("*"):
            if f.name not in keep:
                f.unlink(missing_ok=True)

    def _undo(self, st: VehicleState) -> None:
        st.ecus, st.pending_manifest, st.previous = list(st.previous), "", []
        self._save(st)


class _refusals:
    """python-tuf's exceptions during a refresh or download, as the software module's refusals."""

    def __init__(self, kind: str, url: str, *, path: str = "", length: int = 0) -> None:
        self.kind, self.url, self.path, self.length = kind, url, path, length

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> bool:
        if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
            # a connection cut while the body streams (python-tuf wraps only errors opening a request)
            raise errors.DownloadFailed(what=self.path or f"the {self.kind} repository's metadata", url=self.url,
                                        reason=str(exc)[:300] or type(exc).__name__) from None
        if exc is None or not isinstance(exc, (tuf_errors.RepositoryError, tuf_errors.DownloadError)):
            return False
        role = _role_in(str(exc)) or ("image" if self.path else "metadata")
        what = f"the {self.kind} repository's {role}"
        reason = str(exc)[:300] or type(exc).__name__
        if isinstance(exc, tuf_errors.ExpiredMetadataError):
            raise errors.MetadataExpired(role=role, reason=f"{what}: {reason}") from None
        if isinstance(exc, tuf_errors.BadVersionNumberError):
            raise errors.MetadataRollback(role=role, reason=f"{what}: {reason}") from None
        if isinstance(exc, tuf_errors.UnsignedMetadataError):
            raise errors.ThresholdNotMet(role=role, reason=f"{what}: {reason}") from None
        if isinstance(exc, tuf_errors.DownloadLengthMismatchError):
            raise errors.EndlessData(length=self.length or "allowed", what=self.path or what) from None
        if isinstance(exc, tuf_errors.LengthOrHashMismatchError):
            if self.path:
                raise errors.ImageHashMismatch(path=self.path) from None
            raise errors.ImageMismatch(what=what, reason=reason) from None
        if isinstance(exc, tuf_errors.DownloadError):
            raise errors.DownloadFailed(what=self.path or what, url=self.url, reason=reason) from None
        raise errors.InvalidMetadata(role=role, reason=f"{what}: {reason}") from None


def _role_in(message: str) -> str:
    for role in ("timestamp", "snapshot", "targets", "root"):
        if role in message.lower():
            return role
    return ""
