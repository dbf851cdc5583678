"""Uptane's attacks on the vehicle's primary ECU (``blokauto.ota.updater``), end to end: a real node
and its HTTP API, the maker's python-tuf repositories on disk served over HTTP, and the updater
verifying them against the anchors the ledger proves.

Each attack is refused with the software module's error code, and leaves the vehicle as it was:
its own record (``vehicle.json``) and installed images (``images/``) unchanged, and no manifest on
the ledger (its inventory unchanged). Each test has a maker of its own (its repositories, root
rotations and releases are the maker's on the ledger) and one vehicle; the node is shared.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import httpx
import msgspec
import pytest
from tuf.api.metadata import TargetFile

from blokauto.client.software import Software
from blokauto.core.access import UnknownCaller
from blokauto.core.block import GenesisOrganisation
from blokauto.core.errors import BlokautoError
from blokauto.modules.software import errors
from blokauto.modules.vehicles.errors import NotADeviceOfVehicle
from blokauto.modules.vehicles.messages import AssignWmi
from blokauto.ota import Director, ImageRepository, RepositoryServer, Updater
from blokauto.ota.repository import public_key
from blokauto.ota.serve import _Quiet

from conftest import K, consortium, now_ms, write_chain
from helpers.vehicles import register_msg, vin_for

BRAKE, GATEWAY = "brake-hw", "gateway-hw"
B1, G1 = ("brake/brake.bin", b"brake firmware v1\n" * 64), ("gw/gw.bin", b"gateway firmware v1\n" * 64)
B2, G2 = ("brake/brake-2.bin", b"brake firmware v2\n" * 64), ("gw/gw-2.bin", b"gateway firmware v2\n" * 64)
#: One manufacturer per world (``mk01``...), each with its own WMI: roots, releases and tampered
#: repositories never leak from one test into another (add names if the tests outgrow them).
MAKERS = [f"mk{i:02d}" for i in range(1, 41)]
_WMI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def days_ago(n: int) -> Callable[[], datetime]:
    """A repository clock ``n`` days behind (what it signs expires that much earlier)."""
    return lambda: datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=n)


# ---------------------------------------------------------------- the node and each test's world


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One node (HTTP API on 127.0.0.1) on the test consortium plus the makers ``MAKERS``."""
    from blokauto.api.server import ApiServer
    from blokauto.client import Client
    from blokauto.node.node import Node
    from blokauto.node.ordering import NodeConfig

    base = consortium(time=now_ms() - 1000)
    genesis = msgspec.structs.replace(base, organisations=[
        *base.organisations,
        *(GenesisOrganisation(m, m.upper(), ["manufacturer"], [K(f"{m}-admin").did], []) for m in MAKERS)])
    data = tmp_path_factory.mktemp("uptane") / "data"
    write_chain(data, genesis)
    n = Node(data, config=NodeConfig(block_interval_ms=20), workers=1)
    n.start()
    server = ApiServer(n, "127.0.0.1", 0)
    url = server.start()
    client = Client(url, key=K("reg-node"), trust=genesis)
    makers = iter(enumerate(MAKERS))
    try:
        yield type("LiveNode", (), {"url": url, "client": client, "makers": makers})()
    finally:
        client.close()
        server.stop()
        n.stop()


class World:
    """A maker with its image repository and director (anchored, served over HTTP), release 1
    (brake and gateway v1, counter 1) and one vehicle fitted with both ECUs running it."""

    def __init__(self, node: Any, root: Path, *, images: dict[str, Any] | None = None,
                 director: dict[str, Any] | None = None) -> None:
        i, self.maker = next(node.makers)
        self.admin, self.device = K(f"{self.maker}-admin"), K(f"{self.maker}-device")
        self.wmi = "W" + _WMI_LETTERS[i // len(_WMI_LETTERS)] + _WMI_LETTERS[i % len(_WMI_LETTERS)]
        self.vin = vin_for(self.wmi, 1)
        self.root = root
        self.client = node.client
        self.sw = Software(self.client)
        self.client.send(AssignWmi(wmi=self.wmi, org=self.maker), K("reg-admin")).raise_for_status()
        self.client.send(register_msg(self.vin, device_keys=[self.device.did]), self.admin).raise_for_status()
        self.images = ImageRepository.create(root / "image", **(images or {}))
        self.director = Director.create(root / "director", **(director or {}))
        self.sw.register_repository(self.admin, "image", self.images.root_bytes()).raise_for_status()
        self.sw.register_repository(self.admin, "director", self.director.root_bytes()).raise_for_status()
        self.release((*B1, BRAKE, 1, ""), (*G1, GATEWAY, 1, ""))
        self.sw.fit_ecus(self.admin, self.vin, [("brake-1", BRAKE, sha(B1[1])),
                                                ("gw-1", GATEWAY, sha(G1[1]))]).raise_for_status()
        self.director.assign(self.vin, [])  # nothing to install yet
        self.server = RepositoryServer(root)
        self.server.start()

    def release(self, *images: tuple[str, bytes, str, int, str], anchor: bool = True) -> bytes:
        data = self.images.release(list(images))
        if anchor:
            self.sw.anchor_release(self.admin, data).raise_for_status()
        return data

    def assign(self, *assignments: tuple[list[str], TargetFile | str]) -> None:
        self.director.assign(self.vin, [(ecus, self.images.target(t) if isinstance(t, str) else t)
                                        for ecus, t in assignments])

    def updater(self, key: Any = None, state: str = "ecu", **kw: Any) -> Updater:
        return self.sw.updater(self.vin, key or self.device, director_url=f"{self.server.url}/director",
                               images_url=f"{self.server.url}/image", state_dir=self.root / state, **kw)

    def served(self, path: str, data: bytes) -> str:
        """The file behind the image repository's target ``path`` now holds ``data``."""
        t = self.images.target(path)
        folder, _, name = path.rpartition("/")
        f = self.images.directory / "targets" / folder / f"{t.hashes['sha256']}.{name}"
        assert f.exists()
        f.write_bytes(data)
        return str(f)

    def inventory(self) -> dict[str, Any]:
        inv = self.sw.inventory(self.vin)
        assert inv is not None
        return inv

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def make_world(node: Any, tmp_path: Path) -> Iterator[Callable[..., World]]:
    made: list[World] = []

    def make(**kw: Any) -> World:
        w = World(node, tmp_path / f"w{len(made)}", **kw)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.close()


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


# ---------------------------------------------------------------- what a refusal leaves


def vehicle_files(up: Updater) -> tuple[bytes, dict[str, bytes]]:
    """The vehicle's own record and every image it has installed."""
    store = up.dir / "images"
    images = {p.name: p.read_bytes() for p in sorted(store.iterdir())} if store.exists() else {}
    return up.state_file.read_bytes(), images


def refused(w: World, up: Updater, error: type[BlokautoError]) -> BlokautoError:
    """``up.update()`` raises ``error`` (its code) and leaves the vehicle's files and its inventory on
    the ledger as they were; returns the error."""
    up.load_state()
    before, inventory = vehicle_files(up), w.inventory()
    with pytest.raises(BlokautoError) as caught:
        up.update()
    assert caught.value.code == error.code, caught.value
    assert isinstance(caught.value, error)
    assert vehicle_files(up) == before
    assert msgspec.json.decode(up.state_file.read_bytes())["pending_manifest"] == ""
    assert w.inventory() == inventory
    return caught.value


def running(w: World) -> dict[str, str]:
    return {e["ecu"]: e.get("path", "") for e in w.inventory()["ecus"]}


# ---------------------------------------------------------------- the happy path


def test_update_installs_every_image_reports_once_and_then_has_nothing_to_do(world: World) -> None:
    world.release((*B2, BRAKE, 2, ""), (*G2, GATEWAY, 2, ""))
    world.assign((["brake-1"], B2[0]), (["gw-1"], G2[0]))
    up = world.updater()

    result = up.update()

    assert sorted(e.ecu for e in result.installed) == ["brake-1", "gw-1"]
    assert result.manifest_tx
    inv = world.inventory()
    assert running(world) == {"brake-1": B2[0], "gw-1": G2[0]}
    assert {e["ecu"]: e["image"] for e in inv["ecus"]} == {"brake-1": sha(B2[1]), "gw-1": sha(G2[1])}
    assert inv["manifests"] == 1
    files = vehicle_files(up)
    assert files[1] == {sha(B2[1]): B2[1], sha(G2[1]): G2[1]}

    again = world.updater().update()  # the next run, another process

    assert again.installed == [] and again.manifest_tx == ""
    assert world.inventory() == inv
    assert vehicle_files(up) == files


# ---------------------------------------------------------------- arbitrary software, endless data


def test_arbitrary_software(world: World) -> None:
    """The server holds other bytes (of the same length) where the released image should be."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    world.served(B2[0], b"X" * len(B2[1]))
    refused(world, world.updater(), errors.ImageHashMismatch)


class _EndlessImages(_Quiet):
    """Images never end: every file under ``/image/targets/`` streams zeros (64 MiB at most)."""

    def do_GET(self) -> None:
        if not self.path.startswith("/image/targets/"):
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        try:
            for _ in range(1024):
                self.wfile.write(bytes(65536))
        except OSError:
            pass  # the vehicle hung up


@pytest.mark.parametrize("how", ["streamed without end", "a longer file in place"])
def test_endless_data_image(world: World, how: str) -> None:
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    if how == "a longer file in place":
        world.served(B2[0], B2[1] + b"more" * 4096)
    else:
        world.server.httpd.RequestHandlerClass = functools.partial(_EndlessImages,
                                                                   directory=str(world.root.resolve()))
    refused(world, world.updater(), errors.EndlessData)


@pytest.mark.parametrize("repo", ["image", "director"])
def test_endless_data_metadata(world: World, repo: str) -> None:
    """A timestamp larger than the most the vehicle reads for one (16 KiB)."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    d = world.images.metadata_dir if repo == "image" else world.director.vehicle_dir(world.vin)
    ts = d / "timestamp.json"
    ts.write_bytes(ts.read_bytes() + b" " * 20_000)
    refused(world, world.updater(), errors.EndlessData)


# ---------------------------------------------------------------- rollback


def test_software_rollback(world: World) -> None:
    """After an update to brake v2 (counter 2), the director assigns v1 (counter 1, still released)."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    up = world.updater()
    up.update()
    world.assign((["brake-1"], B1[0]))
    refused(world, up, errors.SoftwareRollback)


@pytest.mark.parametrize("role", ["timestamp", "snapshot"])
def test_metadata_rollback(world: World, role: str) -> None:
    """The image repository serves an older timestamp, or a newer timestamp naming an older snapshot,
    than the vehicle trusted on its last check."""
    ts = world.images.metadata_dir / "timestamp.json"
    old = ts.read_bytes()
    world.release((*B2, BRAKE, 2, ""))  # release 2: snapshot and timestamp 2
    up = world.updater()
    up.check()
    if role == "timestamp":
        ts.write_bytes(old)
    else:
        world.images.refresh_timestamp(None, 1, (world.images.metadata_dir / "1.snapshot.json").read_bytes())
    refused(world, up, errors.MetadataRollback)


def test_older_anchored_release_when_a_newer_is_anchored(world: World) -> None:
    """The repository serves release 1 (validly signed, once anchored) after release 2 was anchored;
    this vehicle never saw release 2."""
    ts = world.images.metadata_dir / "timestamp.json"
    old = ts.read_bytes()
    world.release((*B2, BRAKE, 2, ""))
    ts.write_bytes(old)
    refused(world, world.updater(), errors.MetadataRollback)


# ---------------------------------------------------------------- freeze


TEN_YEARS_MS = 10 * 365 * 86_400_000


class _SetBack(datetime):
    """``datetime`` whose ``now`` is ten years behind: the vehicle's system clock, set back."""

    @classmethod
    def now(cls, tz: Any = None) -> _SetBack:  # type: ignore[override]
        return super().now(tz) - timedelta(milliseconds=TEN_YEARS_MS)


@pytest.mark.parametrize("vehicle_clock", ["right", "set back ten years"])
def test_freeze(make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, vehicle_clock: str) -> None:
    """The image repository's timestamp expired a day before the checkpoint's time (the repository
    is frozen); a vehicle clock set back (the updater's and the system's, which python-tuf reads)
    does not make it fresh again: the checkpoint's time counts."""
    w = make_world(images={"now": days_ago(2)})
    kw: dict[str, Any] = {}
    if vehicle_clock != "right":
        from tuf.ngclient._internal import trusted_metadata_set

        kw["clock"] = lambda: now_ms() - TEN_YEARS_MS
        monkeypatch.setattr(trusted_metadata_set, "datetime", SimpleNamespace(datetime=_SetBack, timezone=timezone))
    err = refused(w, w.updater(**kw), errors.MetadataExpired)
    assert "timestamp" in str(err)


# ---------------------------------------------------------------- mix-and-match, bundles, hardware


@pytest.mark.parametrize("differs", ["hashes", "length", "release_counter"])
def test_mix_and_match(world: World, differs: str) -> None:
    """The director's entry for an image disagrees with the image repository's."""
    world.release((*B2, BRAKE, 2, ""))
    t = world.images.target(B2[0])
    custom = dict(t.custom)
    length, hashes = t.length, dict(t.hashes)
    if differs == "hashes":
        hashes = {"sha256": sha(b"Y" * t.length)}
    elif differs == "length":
        length += 1
    else:
        custom["release_counter"] = 99
    world.assign((["brake-1"], TargetFile(length, hashes, t.path, unrecognized_fields={"custom": custom})))
    refused(world, world.updater(), errors.ImageMismatch)


def test_partial_bundle_assigned(world: World) -> None:
    """Bundle ``b2`` holds brake and gateway v2; the director assigns only the brake's."""
    world.release((*B2, BRAKE, 2, "b2"), (*G2, GATEWAY, 2, "b2"))
    world.assign((["brake-1"], B2[0]))
    refused(world, world.updater(), errors.PartialBundle)


class _CutOff(_Quiet):
    """Files under ``/image/targets/gw/`` announce their length, send half of it and hang up."""

    def do_GET(self) -> None:
        if not self.path.startswith("/image/targets/gw/"):
            return super().do_GET()
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


SECOND_DOWNLOAD_FAILS = [
    pytest.param("wrong bytes", errors.ImageHashMismatch, id="wrong bytes"),
    pytest.param("missing", errors.DownloadFailed, id="missing"),
    pytest.param("cut off", errors.DownloadFailed, id="cut off"),
]


@pytest.mark.parametrize("how,error", SECOND_DOWNLOAD_FAILS)
def test_partial_bundle_second_download_fails(world: World, how: str, error: type[BlokautoError]) -> None:
    """The whole bundle is assigned; the brake's image downloads, the gateway's does not: neither is
    installed."""
    world.release((*B2, BRAKE, 2, "b2"), (*G2, GATEWAY, 2, "b2"))
    world.assign((["brake-1"], B2[0]), (["gw-1"], G2[0]))
    if how == "wrong bytes":
        world.served(G2[0], b"Z" * len(G2[1]))
    elif how == "missing":
        Path(world.served(G2[0], b"")).unlink()
    else:
        world.server.httpd.RequestHandlerClass = functools.partial(_CutOff, directory=str(world.root.resolve()))
    refused(world, world.updater(), error)


def test_wrong_hardware_id(world: World) -> None:
    """The director assigns the brake's image to the gateway ECU."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["gw-1"], B2[0]))
    refused(world, world.updater(), errors.WrongHardwareId)


# ---------------------------------------------------------------- keys


def signing_with(monkeypatch: pytest.MonkeyPatch, repo: ImageRepository, targets_keys: list[Any]) -> None:
    """From now on ``repo`` signs targets with ``targets_keys`` only (an attacker's tooling: the
    maker's, holding those keys and the online snapshot and timestamp keys)."""
    own = repo.role_keys
    monkeypatch.setattr(repo, "role_keys", lambda role: list(targets_keys) if role == "targets" else own(role))


def test_key_compromised_below_threshold(make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch) -> None:
    """Targets need 2 of 2 keys; an attacker with one signs a release of its own image."""
    w = make_world(images={"thresholds": {"targets": 2}})
    one = w.images.role_keys("targets")[0]
    signing_with(monkeypatch, w.images, [one])
    w.release(("brake/evil.bin", b"evil" * 64, BRAKE, 9, ""), anchor=False)
    w.assign((["brake-1"], "brake/evil.bin"))
    refused(w, w.updater(), errors.ThresholdNotMet)


def test_revoked_targets_key(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The maker rotates the image repository's root (anchored on the ledger) to drop a targets key;
    the repository then serves a release signed by the dropped key."""
    up = world.updater()
    up.check()  # the vehicle trusted root 1
    dropped = world.images.role_keys("targets")[0]
    new_root = world.images.rotate_root(add={"targets": [K(f"{world.maker}-targets-2")]},
                                        remove={"targets": [public_key(dropped).keyid]})
    world.sw.rotate_root(world.admin, "image", new_root).raise_for_status()
    signing_with(monkeypatch, world.images, [dropped])
    world.release(("brake/evil.bin", b"evil" * 64, BRAKE, 9, ""), anchor=False)
    world.assign((["brake-1"], "brake/evil.bin"))
    refused(world, up, errors.ThresholdNotMet)


@pytest.mark.parametrize("repo", ["image", "director"])
def test_root_not_anchored(world: World, repo: str) -> None:
    """The repository serves a root version 2 (validly signed by root 1's keys) the ledger never
    anchored."""
    (world.images if repo == "image" else world.director).rotate_root()
    refused(world, world.updater(), errors.RootNotAnchored)


def test_the_repository_server_never_hands_out_role_keys(world: World) -> None:
    """The role keys live beside each repository (``<dir>-keys/``), and the server sends only files under
    ``metadata/`` and ``targets/``: neither a key planted inside the folder nor the keys beside it."""
    for repo in ("image", "director"):
        planted = world.root / repo / "keys"
        planted.mkdir(exist_ok=True)
        (planted / "root-1.json").write_text("{}")
        for role in ("root", "targets", "snapshot", "timestamp"):
            for path in (f"{repo}/keys/{role}-1.json", f"{repo}-keys/{role}-1.json",
                         f"{repo}/metadata/../../{repo}-keys/{role}-1.json", f"{repo}/repository.json"):
                r = httpx.get(f"{world.server.url}/{path}", trust_env=False)
                assert r.status_code == 404, f"{path} served: {r.text[:60]}"
        assert httpx.get(f"{world.server.url}/{repo}/metadata/1.root.json", trust_env=False).status_code == 200


# ---------------------------------------------------------------- releases the ledger does not know


@pytest.mark.parametrize("how", ["a newer version", "the anchored version signed again"])
def test_release_not_anchored(world: World, how: str) -> None:
    """The image repository publishes targets (signed by the maker's keys) the ledger never anchored:
    release 2, or release 1 signed again with one more image in it."""
    if how == "a newer version":
        world.release(("brake/evil.bin", b"evil" * 64, BRAKE, 9, ""), anchor=False)
    else:
        targets = world.images.targets().signed
        world.images.add_image("brake/evil.bin", b"evil" * 64, hardware_id=BRAKE, release_counter=9,
                               targets=targets)
        world.images.publish_targets(targets, bump=False)
    world.assign((["brake-1"], "brake/evil.bin"))
    refused(world, world.updater(), errors.ReleaseNotAnchored)


# ---------------------------------------------------------------- the manifest


@pytest.fixture
def other_vehicle_key(world: World) -> Any:
    """The device key of another vehicle of the same maker."""
    key = K(f"{world.maker}-other-device")
    world.client.send(register_msg(vin_for(world.wmi, 2), device_keys=[key.did]), world.admin).raise_for_status()
    return key


def test_manifest_signed_by_another_vehicles_key(world: World, other_vehicle_key: Any) -> None:
    """The primary ECU (its record already on disk) is configured with another vehicle's device key:
    the ledger refuses the manifest it signs, and the updater raises that refusal."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    world.updater().load_state()
    up = world.updater(other_vehicle_key)
    inventory = world.inventory()
    with pytest.raises(BlokautoError) as caught:
        up.update()
    assert caught.value.code == NotADeviceOfVehicle.code, caught.value
    assert world.inventory() == inventory


def test_manifest_signed_by_another_vehicles_key_installs_nothing(world: World, other_vehicle_key: Any) -> None:
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    world.updater().load_state()
    refused(world, world.updater(other_vehicle_key), NotADeviceOfVehicle)


def test_unknown_key_cannot_read_the_inventory(world: World, other_vehicle_key: Any) -> None:
    """A primary ECU starting afresh with another vehicle's key: the node does not even show it the
    inventory, and nothing is fetched or installed."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    up = world.updater(other_vehicle_key)
    inventory = world.inventory()
    with pytest.raises(BlokautoError) as caught:
        up.update()
    assert caught.value.code == UnknownCaller.code, caught.value
    assert not up.dir.exists() or [p.name for p in up.dir.iterdir()] == ["update.lock"]
    assert world.inventory() == inventory


# ---------------------------------------------------------------- crash safety


class PowerLost(Exception):
    """The vehicle's power fails mid-call."""


@pytest.mark.parametrize("when", ["before the node took it", "after the node took it", "after the node committed it"])
def test_crash_between_install_and_manifest(world: World, when: str) -> None:
    """The process dies after installing, while sending the manifest; the next run commits the kept
    manifest exactly once and installs nothing again."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    up = world.updater()
    inventory = world.inventory()
    real_submit = up.client.submit

    def submit(raw: bytes, **kw: Any) -> str:
        if when == "after the node took it":
            real_submit(raw, **kw)
        elif when == "after the node committed it":
            up.client.receipt(real_submit(raw, **kw))
        raise PowerLost()

    up.client.submit = submit  # type: ignore[method-assign]
    with pytest.raises(PowerLost):
        up.update()
    state, images = vehicle_files(up)
    assert msgspec.json.decode(state)["pending_manifest"]
    assert images == {sha(B2[1]): B2[1]}
    if when == "before the node took it":
        assert world.inventory() == inventory

    result = world.updater().update()  # the next run, after the restart

    assert result.installed == []
    inv = world.inventory()
    assert running(world) == {"brake-1": B2[0], "gw-1": G1[0]}
    assert inv["manifests"] == inventory.get("manifests", 0) + 1
    assert msgspec.json.decode(up.state_file.read_bytes())["pending_manifest"] == ""
    assert vehicle_files(up)[1] == images
    installs = [r for r in world.sw.installs(world.vin)["installs"] if r["image"] == sha(B2[1])]
    assert len(installs) == 1
    assert world.updater().update().installed == []
