"""A maker's Uptane repositories on disk, built and signed with python-tuf's Metadata API.

``ImageRepository`` holds the images every vehicle may install and their targets metadata (the
release the ledger anchors); ``Director`` writes, per vehicle, the targets metadata naming which
image each of its ECUs installs next. Both are plain TUF repositories with consistent snapshots:

    <dir>/metadata/1.root.json, 2.root.json ...   every root version (a client walks rotations)
    <dir>/metadata/<v>.targets.json, <v>.snapshot.json, timestamp.json
    <dir>/targets/<sha256>.<name>                 images (image repository)
    <dir>/vehicles/<VIN>/metadata/...             the director's per-vehicle repository
    <dir>-keys/<role>-<n>.json                    role keys, beside the folder, never in it (blokauto key
                                                  files, owner-only; keep the root keys offline)

Serve ``<dir>`` over HTTP (``blokauto software serve``) and anchor with the SDK
(``blokauto.client.software``). Expiry uses the machine's clock: this runs at the maker, never
on the ledger.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, Signer, SSlibKey
from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import (Metadata, MetaFile, Role, Root, Snapshot, TargetFile, Targets, Timestamp)
from tuf.api.serialization.json import JSONSerializer

from ..core.crypto import KeyPair
from ..modules.software import is_ident, is_target_path
from ..keystore import KeyStore

ROLES = ("root", "targets", "snapshot", "timestamp")
#: The largest release counter (the ledger's integers are at most 2^53 - 1).
MAX_COUNTER = 2**53 - 1
#: How long each role's metadata stays valid when signed (Uptane: short for online roles).
DEFAULT_EXPIRY = {"root": timedelta(days=365), "targets": timedelta(days=90), "snapshot": timedelta(days=7),
                  "timestamp": timedelta(days=1)}
_SERIALIZER = JSONSerializer(compact=False)


def signer_for(key: KeyPair) -> Signer:
    """A python-tuf signer for a blokauto Ed25519 key (the same seed)."""
    return CryptoSigner(Ed25519PrivateKey.from_private_bytes(key.seed))


def public_key(key: KeyPair) -> SSlibKey:
    return SSlibKey.from_crypto(Ed25519PrivateKey.from_private_bytes(key.seed).public_key())


def check_image_spec(path: str, hardware_id: str, release_counter: int, bundle: str = "") -> None:
    """ValueError unless an image's path, hardware id, release counter and bundle are what the ledger takes."""
    if not is_target_path(path):
        raise ValueError(f"{path[:80]!r} is not a plain relative target path (letters, digits, '.', '_', '-', "
                         f"'/' between names; no '..')")
    if not is_ident(hardware_id) or (bundle and not is_ident(bundle)):
        raise ValueError(f"hardware id {hardware_id[:80]!r} and bundle {bundle[:80]!r} are letters, digits, '.', "
                         f"'_', '-' (at most 64)")
    if type(release_counter) is not int or not 0 <= release_counter <= MAX_COUNTER:
        raise ValueError(f"a release counter is a whole number from 0 to {MAX_COUNTER}, not {release_counter!r}")


def _image_file(directory: Path, t: TargetFile) -> Path:
    """Where a target's image lies in a repository (named by its hash and the path's last name)."""
    dirname, _, name = t.path.rpartition("/")
    return directory / "targets" / dirname / f"{t.hashes.get('sha256')}.{name}"


def keys_folder(directory: Path) -> Path:
    """Where a repository's role keys live by default: beside it, never inside what is served."""
    d = Path(directory)
    return d.with_name(d.name + "-keys")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a reader sees the old file or the new, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Repository:
    """One TUF repository under ``directory`` (metadata in ``metadata_dir``), its keys in ``keys``."""

    kind = ""

    def __init__(self, directory: Path, *, now: Any = _utc_now, keys_dir: Path | None = None) -> None:
        self.directory = Path(directory)
        self.keys = KeyStore(Path(keys_dir) if keys_dir is not None else keys_folder(self.directory))
        self.now = now

    # ---------------------------------------------------------------- creating

    @classmethod
    def create(cls, directory: Path, *, thresholds: dict[str, int] | None = None,
               keys: dict[str, list[KeyPair]] | None = None, now: Any = _utc_now,
               keys_dir: Path | None = None) -> "_Repository":
        """A new repository: version-1 metadata for the four roles, signed; role keys generated
        (``thresholds[role]`` keys each, default 1) unless given in ``keys``, kept in ``keys_dir``
        (default: ``<directory>-keys`` beside it, so serving the repository never serves a key)."""
        repo = cls(directory, now=now, keys_dir=keys_dir)
        if (repo.metadata_dir / "1.root.json").exists():
            raise FileExistsError(f"{repo.metadata_dir} already holds a repository")
        thresholds = {r: (thresholds or {}).get(r, 1) for r in ROLES}
        role_keys = {r: (keys or {}).get(r) or [KeyPair.generate() for _ in range(thresholds[r])] for r in ROLES}
        for role, ks in role_keys.items():
            for i, k in enumerate(ks):
                repo.keys.create(f"{role}-{i + 1}", kind="tuf", key=k)
        root = Root(expires=repo.now() + DEFAULT_EXPIRY["root"], consistent_snapshot=True)
        for role, ks in role_keys.items():
            root.roles[role] = Role([], thresholds[role])
            for k in ks:
                root.add_key(public_key(k), role)
        md = Metadata(root)
        for k in role_keys["root"]:
            md.sign(signer_for(k), append=True)
        repo._write_root(md)
        _write(repo.directory / "repository.json", msgspec.json.encode({"kind": cls.kind}))
        return repo

    @property
    def metadata_dir(self) -> Path:
        return self.directory / "metadata"

    # ---------------------------------------------------------------- reading

    def role_keys(self, role: str) -> list[KeyPair]:
        """The keys of ``role`` this repository holds (those of the current root)."""
        root = self.root().signed
        wanted = set(root.roles[role].keyids)
        out = []
        for path in sorted(self.keys.directory.glob(f"{role}-*.json")):
            k = self.keys.load(path.stem)
            if public_key(k).keyid in wanted:
                out.append(k)
        return out

    def root_bytes(self, version: int | None = None) -> bytes:
        if version is None:
            version = max(int(p.name.split(".")[0]) for p in self.metadata_dir.glob("*.root.json"))
        return (self.metadata_dir / f"{version}.root.json").read_bytes()

    def root(self) -> Metadata[Root]:
        return Metadata.from_bytes(self.root_bytes())

    def targets_bytes(self, metadata_dir: Path | None = None) -> bytes:
        d = metadata_dir or self.metadata_dir
        snap = Metadata[Snapshot].from_bytes(self._latest(d, "snapshot"))
        return (d / f"{snap.signed.meta['targets.json'].version}.targets.json").read_bytes()

    def targets(self, metadata_dir: Path | None = None) -> Metadata[Targets]:
        return Metadata.from_bytes(self.targets_bytes(metadata_dir))

    @staticmethod
    def _latest(d: Path, role: str) -> bytes:
        if role == "snapshot":
            ts = Metadata[Timestamp].from_bytes((d / "timestamp.json").read_bytes())
            return (d / f"{ts.signed.snapshot_meta.version}.snapshot.json").read_bytes()
        raise ValueError(role)

    # ---------------------------------------------------------------- signing

    def _sign(self, md: Metadata, role: str, signers: list[Signer] | None = None) -> bytes:
        md.signatures.clear()
        for s in signers if signers is not None else [signer_for(k) for k in self.role_keys(role)]:
            md.sign(s, append=True)
        return md.to_bytes(_SERIALIZER)

    def _write_root(self, md: Metadata[Root]) -> bytes:
        data = md.to_bytes(_SERIALIZER)
        _write(self.metadata_dir / f"{md.signed.version}.root.json", data)
        return data

    def publish_targets(self, targets: Targets, *, metadata_dir: Path | None = None, bump: bool = True,
                        expires: timedelta | None = None, publish: bool = True) -> bytes:
        """Sign ``targets`` (next version) and, with ``publish``, a snapshot and a timestamp naming it;
        returns the targets file's bytes (what a release anchors)."""
        d = metadata_dir or self.metadata_dir
        if bump:
            targets.version += 1
        targets.expires = self.now() + (expires or DEFAULT_EXPIRY["targets"])
        data = self._sign(Metadata(targets), "targets")
        _write(d / f"{targets.version}.targets.json", data)
        if publish:
            self._snapshot_and_timestamp(d, targets.version, data)
        return data

    def publish(self, targets_data: bytes, *, metadata_dir: Path | None = None) -> None:
        """Make a signed targets file current (one ``release(..., publish=False)`` returned, once the
        ledger anchored it): a snapshot and a timestamp naming it."""
        md = Metadata[Targets].from_bytes(targets_data)
        self._snapshot_and_timestamp(metadata_dir or self.metadata_dir, md.signed.version, targets_data)

    def _snapshot_and_timestamp(self, d: Path, targets_version: int, targets_data: bytes) -> None:
        old = Metadata[Timestamp].from_bytes((d / "timestamp.json").read_bytes()) if (d / "timestamp.json").exists() \
            else None
        snap_version = old.signed.snapshot_meta.version + 1 if old else 1
        snapshot = Snapshot(version=snap_version, expires=self.now() + DEFAULT_EXPIRY["snapshot"],
                            meta={"targets.json": MetaFile(version=targets_version)})
        snap_data = self._sign(Metadata(snapshot), "snapshot")
        _write(d / f"{snap_version}.snapshot.json", snap_data)
        self.refresh_timestamp(d, snap_version, snap_data, old)

    def refresh_timestamp(self, metadata_dir: Path | None = None, snapshot_version: int | None = None,
                          snapshot_data: bytes | None = None, old: Metadata[Timestamp] | None = None) -> bytes:
        """A new timestamp (the online role that keeps clients fresh), naming the current snapshot."""
        d = metadata_dir or self.metadata_dir
        if old is None and (d / "timestamp.json").exists():
            old = Metadata[Timestamp].from_bytes((d / "timestamp.json").read_bytes())
        if snapshot_version is None:
            assert old is not None
            snapshot_version = old.signed.snapshot_meta.version
            snapshot_data = (d / f"{snapshot_version}.snapshot.json").read_bytes()
        assert snapshot_data is not None
        meta = MetaFile(version=snapshot_version, length=len(snapshot_data),
                        hashes={"sha256": hashlib.sha256(snapshot_data).hexdigest()})
        ts = Timestamp(version=(old.signed.version + 1) if old else 1,
                       expires=self.now() + DEFAULT_EXPIRY["timestamp"], snapshot_meta=meta)
        data = self._sign(Metadata(ts), "timestamp")
        _write(d / "timestamp.json", data)
        return data

    def rotate_root(self, *, add: dict[str, list[KeyPair]] | None = None, remove: dict[str, list[str]] | None = None,
                    thresholds: dict[str, int] | None = None, publish: bool = True) -> bytes:
        """The next root: keys added to (saved at once: an anchored root must never name a key this
        repository lost) or removed from (by keyid) roles, thresholds changed, signed by the old root
        keys and the new; returns its bytes (what ``software.rotate_root`` anchors). With
        ``publish=False`` vehicles do not see it until ``publish_root`` (anchor first, then publish)."""
        old = self.root()
        new = Metadata[Root].from_bytes(old.to_bytes())
        new.signed.version += 1
        new.signed.expires = self.now() + DEFAULT_EXPIRY["root"]
        for role, keyids in (remove or {}).items():
            for keyid in keyids:
                new.signed.revoke_key(keyid, role)  # ValueError naming the key before anything is written
        for role, t in (thresholds or {}).items():
            if role not in new.signed.roles or t < 1:
                raise ValueError(f"--threshold {role}={t}: a threshold is a whole number of at least 1 for root, "
                                 f"targets, snapshot or timestamp")
            new.signed.roles[role].threshold = t
        added: list[tuple[str, KeyPair]] = [(role, k) for role, ks in (add or {}).items() for k in ks]
        for role, k in added:
            new.signed.add_key(public_key(k), role)
        for name in ROLES:
            role = new.signed.roles[name]
            if len(role.keyids) < role.threshold:
                raise ValueError(f"the {name} role would need {role.threshold} signatures from {len(role.keyids)} key(s)")
        for role, k in added:
            self.keys.create(f"{role}-{len(list(self.keys.directory.glob(f'{role}-*.json'))) + 1}", kind="tuf", key=k)
        wanted = set(old.signed.roles["root"].keyids) | set(new.signed.roles["root"].keyids)
        for path in sorted(self.keys.directory.glob("root-*.json")):
            k = self.keys.load(path.stem)
            if public_key(k).keyid in wanted:
                new.sign(signer_for(k), append=True)
        data = new.to_bytes(_SERIALIZER)
        if publish:
            self.publish_root(data)
        return data

    def publish_root(self, root_data: bytes) -> None:
        """Serve an anchored root (the file as anchored: the ledger's copy, say)."""
        version = Metadata[Root].from_bytes(root_data).signed.version
        _write(self.metadata_dir / f"{version}.root.json", root_data)

    def resign(self) -> None:
        """Re-sign what clients fetch after a root rotation changed keys or thresholds: a new snapshot
        and timestamp (an image repository's targets change only with a release: ``release([])``)."""
        if (self.metadata_dir / "timestamp.json").exists():
            data = self.targets_bytes()
            self._snapshot_and_timestamp(self.metadata_dir, Metadata[Targets].from_bytes(data).signed.version, data)


class ImageRepository(_Repository):
    """The images a maker releases and the targets metadata the ledger anchors per release."""

    kind = "image"

    def add_image(self, path: str, data: bytes, *, hardware_id: str, release_counter: int, bundle: str = "",
                  targets: Targets | None = None) -> TargetFile:
        """Store an image under ``targets/`` (named by its hash) and list it in ``targets`` (the
        unpublished next release); returns its target entry."""
        check_image_spec(path, hardware_id, release_counter, bundle)
        custom: dict[str, Any] = {"hardware_id": hardware_id, "release_counter": release_counter}
        if bundle:
            custom["bundle"] = bundle
        t = TargetFile(length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()}, path=path,
                       unrecognized_fields={"custom": custom})
        dirname, _, name = path.rpartition("/")
        _write(self.directory / "targets" / dirname / f"{t.hashes['sha256']}.{name}", data)
        if targets is not None:
            targets.targets[path] = t
        return t

    def release(self, images: list[tuple[str, bytes, str, int, str]], *, keep: bool = True,
                expires: timedelta | None = None, publish: bool = True) -> bytes:
        """A release: the next targets version listing ``images`` (path, bytes, hardware id, release
        counter, bundle) and, with ``keep``, every image of the previous release whose path it does not
        replace. Returns the targets file to anchor (``software.anchor_release``). With ``publish=False``
        vehicles do not see it until ``publish`` (anchor first, then publish: a release the ledger
        refused is never served)."""
        for path, _, hw, counter, bundle in images:  # every image checked before any is written
            check_image_spec(path, hw, counter, bundle)
        first = not (self.metadata_dir / "timestamp.json").exists()
        current = Targets() if first else self.targets().signed
        nxt = Targets(version=current.version, targets=dict(current.targets) if keep else {})
        for path, data, hw, counter, bundle in images:
            self.add_image(path, data, hardware_id=hw, release_counter=counter, bundle=bundle, targets=nxt)
        return self.publish_targets(nxt, bump=not first, expires=expires, publish=publish)

    def target(self, path: str) -> TargetFile:
        """The published release's entry for ``path`` (ValueError if it lists none)."""
        t = self.targets().signed.targets.get(path) if (self.metadata_dir / "timestamp.json").exists() else None
        if t is None:
            raise ValueError(f"the image repository's published release lists no target {path!r} "
                             f"(`blokauto software releases MAKER` lists what was released)")
        return t

    def has_image(self, t: TargetFile) -> bool:
        """Whether the image file of target ``t`` is in ``targets/`` with its length and hashes."""
        f = _image_file(self.directory, t)
        if not f.is_file():
            return False
        try:
            with open(f, "rb") as fh:
                t.verify_length_and_hashes(fh)
        except LengthOrHashMismatchError:
            return False
        return True

    def published_version(self) -> int:
        """The targets version vehicles are served (0: none yet)."""
        return self.targets().signed.version if (self.metadata_dir / "timestamp.json").exists() else 0

    def discard(self, targets_data: bytes) -> None:
        """Forget a signed release the ledger refused: its targets file, and the images no published
        release lists."""
        version = Metadata[Targets].from_bytes(targets_data).signed.version
        if version > self.published_version():
            (self.metadata_dir / f"{version}.targets.json").unlink(missing_ok=True)
        kept = {_image_file(self.directory, t) for t in self.targets().signed.targets.values()} \
            if self.published_version() else set()
        for t in Metadata[Targets].from_bytes(targets_data).signed.targets.values():
            f = _image_file(self.directory, t)
            if f not in kept:
                f.unlink(missing_ok=True)


class Director(_Repository):
    """Per vehicle, which image each ECU installs next: a TUF repository per VIN sharing one root."""

    kind = "director"

    def vehicle_dir(self, vin: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9]{1,40}", vin):
            raise ValueError(f"{vin[:60]!r} is not a VIN (letters and digits)")
        return self.directory / "vehicles" / vin / "metadata"

    def assign(self, vin: str, assignments: list[tuple[list[str], TargetFile]], *,
               expires: timedelta | None = None) -> bytes:
        """The vehicle's next update: each image (its entry in the image repository) for the ECUs named
        with it. Copies every root version into the vehicle's repository. Returns its targets file."""
        d = self.vehicle_dir(vin)
        for p in sorted(self.metadata_dir.glob("*.root.json")):
            if not (d / p.name).exists() or (d / p.name).read_bytes() != p.read_bytes():
                _write(d / p.name, p.read_bytes())
        first = not (d / "timestamp.json").exists()
        targets = Targets(version=1 if first else self.targets(d).signed.version)
        for ecus, image in assignments:
            custom = dict(image.custom) if isinstance(image.custom, dict) else {}
            custom["ecus"] = list(ecus)
            targets.targets[image.path] = TargetFile(image.length, dict(image.hashes), image.path,
                                                     unrecognized_fields={"custom": custom})
        return self.publish_targets(targets, metadata_dir=d, bump=not first, expires=expires)

    def publish_root(self, root_data: bytes) -> None:
        super().publish_root(root_data)
        version = Metadata[Root].from_bytes(root_data).signed.version
        for vin_dir in sorted((self.directory / "vehicles").glob("*/metadata")):
            _write(vin_dir / f"{version}.root.json", root_data)

    def resign(self) -> None:
        """After a root rotation: every vehicle's targets, snapshot and timestamp signed again by the
        keys the new root names."""
        for d in sorted((self.directory / "vehicles").glob("*/metadata")):
            if (d / "timestamp.json").exists():
                targets = self.targets(d).signed
                self.publish_targets(targets, metadata_dir=d)


def open_repository(directory: Path, **kw: Any) -> ImageRepository | Director:
    """The repository ``create`` made in ``directory`` (its ``repository.json`` names the kind)."""
    marker = Path(directory) / "repository.json"
    if not marker.is_file():
        raise FileNotFoundError(f"{directory} holds no repository (blokauto software repo-init makes one)")
    kind = msgspec.json.decode(marker.read_bytes()).get("kind")
    cls = {"image": ImageRepository, "director": Director}.get(kind)
    if cls is None:
        raise ValueError(f"{marker} names kind {kind!r}, not image or director")
    return cls(Path(directory), **kw)


def decode_custom(t: TargetFile) -> dict[str, Any]:
    """A target's custom fields (``{}`` when it has none)."""
    custom = t.unrecognized_fields.get("custom")
    return msgspec.convert(custom, dict[str, Any]) if isinstance(custom, dict) else {}
