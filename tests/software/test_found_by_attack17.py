"""What an outside tester found by attacking the over-the-air software tooling (attack 17): each
case failed before its fix. The maker's side (``blokauto software ...``) and ``blokauto vehicle
update`` run as the real CLI in child processes against a node on 127.0.0.1 (in this process, its
HTTP API on threads); what is about the SDK or the updater runs through them. Every server listens
on 127.0.0.1 and every process started here is stopped by its PID.

The node, the ``World`` (a maker's anchored repositories served over HTTP, release 1 and one car
fitted with a brake and a gateway ECU) and ``refused`` come from ``test_uptane_attacks.py``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from blokauto.core.block import GenesisOrganisation
from blokauto.keystore import KeyStore
from blokauto.modules.software import errors
from blokauto.modules.vehicles.errors import DeviceKeyRevoked
from blokauto.ota import ImageRepository, Updater
from blokauto.ota.serve import _Quiet

from conftest import K, consortium, free_port, now_ms, run_cli, write_chain
from test_uptane_attacks import (B1, B2, BRAKE, G1, G2, GATEWAY, MAKERS, World, refused, running, sha,
                                 vehicle_files)

ENV = {"COLUMNS": "400", "NO_COLOR": "1"}  # wide: an error is one line, not wrapped
MAX_COUNTER = 2**53 - 1
B3 = ("brake/brake-3.bin", b"brake firmware v3\n" * 64)
G3 = ("gw/gw-3.bin", b"gateway firmware v3\n" * 64)


# ---------------------------------------------------------------- the node, the CLI's data folder, the worlds


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One node (HTTP API on 127.0.0.1) on the test consortium plus the makers ``MAKERS``, and a data
    folder for the CLI (the same genesis.json as its trust anchor, and each world's keys)."""
    from blokauto.api.server import ApiServer
    from blokauto.client import Client
    from blokauto.node.node import Node
    from blokauto.node.ordering import NodeConfig

    base = consortium(time=now_ms() - 1000)
    genesis = msgspec.structs.replace(base, organisations=[
        *base.organisations,
        *(GenesisOrganisation(m, m.upper(), ["manufacturer"], [K(f"{m}-admin").did], []) for m in MAKERS)])
    root = tmp_path_factory.mktemp("attack17")
    data = root / "data"
    write_chain(data, genesis)
    cli_data = root / "cli"
    (cli_data / "keys").mkdir(parents=True)
    shutil.copy(data / "genesis.json", cli_data / "genesis.json")
    n = Node(data, config=NodeConfig(block_interval_ms=20), workers=1)
    n.start()
    server = ApiServer(n, "127.0.0.1", 0)
    url = server.start()
    client = Client(url, key=K("reg-node"), trust=genesis)
    makers = iter(enumerate(MAKERS))
    try:
        yield type("LiveNode", (), {"url": url, "client": client, "makers": makers, "cli_data": cli_data})()
    finally:
        client.close()
        server.stop()
        n.stop()


def served(w: World) -> int:
    """The release the image repository serves (its timestamp's snapshot's targets version)."""
    return w.images.targets().signed.version


def cli(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_cli(*[str(a) for a in args], env=ENV, timeout=timeout)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def text(r: subprocess.CompletedProcess) -> str:
    return " ".join((r.stdout + r.stderr).split())


def failed(r: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit ``code``, the words said, no Python traceback."""
    assert r.returncode == code, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    for w in words:
        assert w in text(r), f"{w!r} not in: {r.stdout}{r.stderr}"


def usage_error(r: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2 with one line on stderr (the error), no Python traceback."""
    failed(r, 2, *words)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder): what "wrote nothing" compares."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


class CliWorld(World):
    """A ``World`` whose maker's admin key and car's device key are also in the CLI's data folder."""

    def __init__(self, node: Any, root: Path, **kw: Any) -> None:
        super().__init__(node, root, **kw)
        self.node_url = node.url
        self.data = node.cli_data
        self.admin_name, self.device_name = f"{self.maker}-admin", f"{self.maker}-device"
        keys = KeyStore(self.data / "keys")
        keys.create(self.admin_name, key=self.admin)
        keys.create(self.device_name, kind="device", key=self.device)

    def cli(self, *args: Any, **kw: Any) -> subprocess.CompletedProcess:
        """A command that talks to the node."""
        return cli(*args, "--data", self.data, "--node", self.node_url, **kw)

    def file(self, name: str, data: bytes) -> Path:
        """An image file the maker releases (outside the served repositories)."""
        f = self.root / "files" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
        return f

    def release_cli(self, *images: str, only: bool = False) -> subprocess.CompletedProcess:
        args: list[Any] = ["software", "release", self.images.directory]
        for spec in images:
            args += ["--image", spec]
        return self.cli(*args, *(["--only"] if only else []), "--key", self.admin_name)

    def spec(self, image: tuple[str, bytes], hw: str, counter: int, bundle: str = "") -> str:
        """``PATH:FILE:HARDWARE:COUNTER[:BUNDLE]`` of ``image`` (path, bytes)."""
        f = self.file(f"{sha(image[1])[:12]}.bin", image[1])
        return f"{image[0]}:{f}:{hw}:{counter}" + (f":{bundle}" if bundle else "")

    def update_cli(self, *extra: str, state: str = "ecu") -> list[Any]:
        return ["vehicle", "update", self.vin, "--key", self.device_name,
                "--director", f"{self.server.url}/director", "--images", f"{self.server.url}/image",
                "--state", self.root / state, "--data", self.data, "--node", self.node_url, *extra]

    def interrupted_release(self, *images: tuple[str, bytes, str, int, str]) -> bytes:
        """A release signed and anchored, but never published (the command stopped in between)."""
        targets = self.images.release(list(images), publish=False)
        self.sw.anchor_release(self.admin, targets).raise_for_status()
        return targets

    def anchored(self) -> dict[str, Any]:
        """The image repository as the ledger anchors it."""
        return self.sw.repository(self.maker, "image")


@pytest.fixture
def make_world(node: Any, tmp_path: Path) -> Iterator[Callable[..., CliWorld]]:
    made: list[CliWorld] = []

    def make(**kw: Any) -> CliWorld:
        w = CliWorld(node, tmp_path / f"w{len(made)}", **kw)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.close()


@pytest.fixture
def world(make_world: Callable[..., CliWorld]) -> CliWorld:
    return make_world()


# ---------------------------------------------------------------- 1. a release interrupted after anchoring


def test_interrupted_release_strands_cars_until_software_sync_publishes_it(world: CliWorld) -> None:
    checked = world.updater()
    checked.check()  # a car that verified release 1 before
    targets = world.interrupted_release((*B2, BRAKE, 2, ""))
    refused(world, checked, errors.MetadataRollback)
    refused(world, world.updater(state="fresh-car"), errors.MetadataRollback)

    r = ok(world.cli("software", "sync", world.images.directory, "--as", world.admin_name))

    assert "published release 2 as anchored" in text(r)
    assert served(world) == 2 and world.images.targets_bytes() == targets
    world.assign((["brake-1"], B2[0]))
    assert [e.ecu for e in checked.update().installed] == ["brake-1"]
    assert running(world) == {"brake-1": B2[0], "gw-1": G1[0]}
    again = ok(world.cli("software", "sync", world.images.directory, "--as", world.admin_name))
    assert "serves what the ledger anchored" in text(again)


@pytest.mark.parametrize("how", ["deleted", "overwritten by a retried release"])
def test_interrupted_release_whose_targets_file_was_lost_is_restored_from_the_ledger(world: CliWorld,
                                                                                       how: str) -> None:
    targets = world.interrupted_release((*B2, BRAKE, 2, ""))
    f = world.images.metadata_dir / "2.targets.json"
    if how == "deleted":
        f.unlink()
    else:  # the maker's tooling signs release 2 again, with other images, and stops again
        world.images.release([("brake/other.bin", b"other brake\n" * 64, BRAKE, 7, "")], publish=False)
        assert f.read_bytes() != targets

    ok(world.cli("software", "sync", world.images.directory, "--as", world.admin_name))

    assert f.read_bytes() == targets
    assert served(world) == 2
    world.assign((["brake-1"], B2[0]))
    assert [e.ecu for e in world.updater().update().installed] == ["brake-1"]


def test_release_after_an_interrupted_release_syncs_first_and_keeps_the_anchored_file(world: CliWorld) -> None:
    targets = world.interrupted_release((*B2, BRAKE, 2, ""))

    ok(world.release_cli(world.spec(G2, GATEWAY, 2)))

    assert (world.images.metadata_dir / "2.targets.json").read_bytes() == targets  # not overwritten
    assert served(world) == 3
    anchor = world.anchored()
    assert anchor["release"] == 3 and anchor["release_sha256"] == sha(world.images.targets_bytes())
    assert set(world.images.targets().signed.targets) == {B1[0], G1[0], B2[0], G2[0]}
    world.assign((["brake-1"], B2[0]), (["gw-1"], G2[0]))
    assert sorted(e.ecu for e in world.updater().update().installed) == ["brake-1", "gw-1"]


# ---------------------------------------------------------------- 2. bundles


def test_release_after_a_bundle_relists_it_unchanged_and_a_changed_bundle_is_refused(world: CliWorld) -> None:
    ok(world.release_cli(world.spec(B3, BRAKE, 3, "e5-2027"), world.spec(G3, GATEWAY, 3, "e5-2027")))

    ok(world.release_cli(world.spec(("radio/radio-1.bin", b"radio 1\n" * 64), "radio-hw", 1)))

    assert world.anchored()["release"] == 3
    listed = world.images.targets().signed.targets
    assert {p: (t.custom.get("bundle"), t.hashes["sha256"]) for p, t in listed.items() if p in (B3[0], G3[0])} == \
        {B3[0]: ("e5-2027", sha(B3[1])), G3[0]: ("e5-2027", sha(G3[1]))}
    before = listing(world.images.directory)

    changed = world.release_cli(world.spec((B3[0], b"brake firmware v3, patched\n" * 64), BRAKE, 4, "e5-2027"))

    failed(changed, 1, "invalid_release", "e5-2027")
    assert world.anchored()["release"] == 3
    assert listing(world.images.directory) == before


# ---------------------------------------------------------------- 3. release --only and the 200-image cap


def test_release_only_lists_only_the_given_images_and_the_cap_error_names_it(world: CliWorld) -> None:
    world.release(*[(f"x/{i:03d}.bin", b"old image %d\n" % i, "old-hw", 1, "") for i in range(198)])  # 200 images
    new = world.spec(("x/new.bin", b"the one image vehicles still need\n"), "new-hw", 1)

    capped = world.release_cli(new)

    failed(capped, 1, "invalid_release", "201 targets", "--only")
    assert served(world) == 2 and not (world.images.metadata_dir / "3.targets.json").exists()

    ok(world.release_cli(new, only=True))

    assert list(world.images.targets().signed.targets) == ["x/new.bin"]
    latest = world.sw.releases(world.maker)["releases"][0]
    assert latest["version"] == 3 and [i["path"] for i in latest["images"]] == ["x/new.bin"]


# ---------------------------------------------------------------- 4. target paths outside the repository


ESCAPES = ["/etc/x.bin", "../../x.bin", "e5/../../x.bin"]


def escape_attempts(world: CliWorld, tmp_path: Path, *first: str) -> None:
    """``software release`` of an image under each path of ``ESCAPES`` (after the images ``first``)
    exits 2 and writes no file: none in the test's folders (the repository, its parents), none named
    by the image's hash in /tmp, /etc or /."""
    data = f"an image that must land nowhere {tmp_path.name}\n".encode()
    f = world.file("x.bin", data)
    name = f"{sha(data)}.x.bin"
    watched = [world.images.directory, world.root, tmp_path, tmp_path.parent, tmp_path.parent.parent,
               Path("/tmp"), Path("/etc"), Path("/")]
    before = listing(tmp_path)
    strays: list[Path] = []
    try:
        for path in ESCAPES:
            r = world.release_cli(*first, f"{path}:{f}:{BRAKE}:5")
            strays += [d / name for d in watched if (d / name).exists()]
            usage_error(r, "not a plain relative target path")
            assert not strays, strays
            assert listing(tmp_path) == before, f"{path}: files written"
        assert world.anchored()["release"] == 1 and served(world) == 1
    finally:
        for p in strays:  # only files named by this test's own image hash
            p.unlink(missing_ok=True)


def test_release_with_a_target_path_outside_the_repository_writes_no_file(world: CliWorld, tmp_path: Path) -> None:
    escape_attempts(world, tmp_path)


def test_release_with_a_good_image_then_a_path_outside_the_repository_writes_no_file(world: CliWorld,
                                                                                    tmp_path: Path) -> None:
    escape_attempts(world, tmp_path, world.spec(B3, BRAKE, 3))


# ---------------------------------------------------------------- 5. a refused release is discarded


def refused_release_leaves_nothing(world: CliWorld, image: tuple[str, bytes], counter: int) -> None:
    """A release of ``image`` (an image already released, described otherwise) and a new gateway
    image is refused ``image_mismatch``: no targets file of its version, no image file left."""
    before = listing(world.images.directory)
    version = served(world) + 1
    new_gw = ("gw/new.bin", b"a new gateway image\n" * 32)

    r = world.release_cli(world.spec(image, BRAKE, counter), world.spec(new_gw, GATEWAY, 5))

    failed(r, 1, "image_mismatch")
    assert not (world.images.metadata_dir / f"{version}.targets.json").exists()
    assert not list(world.images.directory.rglob(f"{sha(new_gw[1])}*"))
    assert listing(world.images.directory) == before
    assert world.anchored()["release"] == version - 1 and served(world) == version - 1


def test_refused_release_of_a_counter_0_image_re_described_leaves_no_targets_file_and_no_image(
        world: CliWorld) -> None:
    zero = ("brake/zero.bin", b"brake factory image, counter 0\n" * 32)
    world.release((*zero, BRAKE, 0, ""))  # release 2
    refused_release_leaves_nothing(world, zero, 1)


def test_refused_release_of_an_image_under_another_path_leaves_no_image(world: CliWorld) -> None:
    refused_release_leaves_nothing(world, (B1[0] + ".again", B1[1]), 1)


# ---------------------------------------------------------------- 6. the repository server


def test_serve_refuses_symlinks_and_nul_paths_and_keeps_serving(tmp_path: Path) -> None:
    served = tmp_path / "repos"
    repo = ImageRepository.create(served / "image")
    repo.release([("e5/ok.bin", b"a released image\n", BRAKE, 1, "")])
    keys = served / "image-keys"
    (repo.metadata_dir / "passwd.json").symlink_to("/etc/passwd")
    (repo.directory / "targets" / "root-key.json").symlink_to(keys / "root-1.json")
    (repo.directory / "targets" / "keys").symlink_to(keys, target_is_directory=True)
    (repo.directory / "targets" / "e5-link").symlink_to(repo.directory / "targets" / "e5", target_is_directory=True)
    ok_url = "/image/metadata/1.root.json"
    image = next((repo.directory / "targets" / "e5").iterdir()).name
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "blokauto.cli", "software", "serve", str(served), "--port",
                                 str(port)], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV})
        try:
            with httpx.Client(base_url=base, trust_env=False, timeout=10) as http:
                deadline = time.monotonic() + 60
                while True:
                    assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                    try:
                        if http.get(ok_url).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "the server did not answer"
                    time.sleep(0.1)
                assert http.get(f"/image/targets/e5/{image}").status_code == 200
                for path in ("/image/metadata/passwd.json", "/image/targets/root-key.json",
                             "/image/targets/keys/root-1.json", f"/image/targets/e5-link/{image}",
                             "/image/metadata/1.root.json%00", "/image/metadata/%00.json", "/image/targets/e5/%00"):
                    r = http.get(path)
                    assert r.status_code == 404, f"{path}: {r.status_code} {r.text[:80]}"
                    assert "root:" not in r.text and "seed" not in r.text
                    assert http.get(ok_url).status_code == 200, f"the server stopped serving after {path}"
                assert proc.poll() is None
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)


# ---------------------------------------------------------------- 7. root rotations


def keys_json(w: CliWorld) -> dict[str, Any]:
    return json.loads(ok(cli("software", "keys", w.images.directory, "--json")).stdout)


def test_rotate_root_leaves_cars_able_to_update_without_a_new_release(world: CliWorld) -> None:
    world.release((*B2, BRAKE, 2, ""), (*G2, GATEWAY, 2, ""))  # release 2: the last one made by hand
    world.assign((["brake-1"], B2[0]))
    up = world.updater()
    up.check()
    first = world.images.root().signed.roles["targets"].keyids[0]

    ok(world.cli("software", "rotate-root", world.images.directory, "--add", "targets", "--threshold", "targets=2",
                 "--key", world.admin_name))

    assert world.anchored()["root_version"] == 2
    assert world.anchored()["release"] == 3  # release 2's images, signed again by the new keys and anchored
    assert [e.ecu for e in up.update().installed] == ["brake-1"]
    roles = keys_json(world)
    assert roles["root_version"] == 2 and roles["roles"]["targets"]["threshold"] == 2
    targets_keys = roles["roles"]["targets"]["keys"]
    assert [k["keyid"] for k in targets_keys][:1] == [first] and len(targets_keys) == 2
    assert all(k["held"] for k in targets_keys)

    world.assign((["brake-1"], B2[0]), (["gw-1"], G2[0]))
    ok(world.cli("software", "rotate-root", world.images.directory, "--remove", f"targets={targets_keys[0]['keyid']}",
                 "--threshold", "targets=1", "--key", world.admin_name))

    roles = keys_json(world)
    assert roles["root_version"] == 3 and world.anchored()["root_version"] == 3 and world.anchored()["release"] == 4
    assert [k["keyid"] for k in roles["roles"]["targets"]["keys"]] == [targets_keys[1]["keyid"]]
    assert [e.ecu for e in world.updater().update().installed] == ["gw-1"]
    assert running(world) == {"brake-1": B2[0], "gw-1": G2[0]}


def test_rotate_root_removing_a_key_not_in_the_role_creates_no_key_file(world: CliWorld) -> None:
    keys_dir = world.images.directory.with_name("image-keys")
    before, metadata = listing(keys_dir), listing(world.images.metadata_dir)
    snapshot_key = world.images.root().signed.roles["snapshot"].keyids[0]

    for bad in ("0" * 64, snapshot_key):  # no such key; a key of another role
        r = world.cli("software", "rotate-root", world.images.directory, "--add", "targets",
                      "--remove", f"targets={bad}", "--key", world.admin_name)
        assert r.returncode != 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
        assert listing(keys_dir) == before
        assert listing(world.images.metadata_dir) == metadata
    assert world.anchored()["root_version"] == 1


# ---------------------------------------------------------------- 8. software assign's errors


def test_assign_errors_are_one_line_usage_errors(world: CliWorld) -> None:
    world.interrupted_release((*B2, BRAKE, 2, ""))
    director = world.director.vehicle_dir(world.vin)
    before = listing(director)

    for ecu in ("brake-1=brake/nowhere.bin", "a=b=brake/brake.bin", f"brake-1={B2[0]}"):
        r = cli("software", "assign", world.director.directory, world.vin, "--images", world.images.directory,
                "--ecu", ecu)
        usage_error(r)
        assert listing(director) == before


# ---------------------------------------------------------------- 9. the updater


def revoked_car(world: CliWorld) -> Updater:
    """The car's device key revoked (``blokauto vehicle revoke-device-key``, by its maker) after its
    last check, with brake v2 assigned."""
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    up = world.updater()
    up.check()
    ok(world.cli("vehicle", "revoke-device-key", world.vin, world.device.did, "--reason", "compromised",
                 "--key", world.admin_name))
    return up


def test_revoked_device_key_is_refused_device_key_revoked_before_downloading(world: CliWorld) -> None:
    up = revoked_car(world)

    refused(world, up, DeviceKeyRevoked)

    assert not (up.dir / "images").exists() and not (up.dir / "staging").exists()
    assert not (up.dir / "downloads").exists() or not any((up.dir / "downloads").iterdir())


class _SlowImages(_Quiet):
    """Images take a while to arrive (both runs of an update are then surely at work together)."""

    def do_GET(self) -> None:
        if self.path.startswith("/image/targets/"):
            time.sleep(1.5)
        return super().do_GET()


def test_two_updates_of_one_car_started_together_both_succeed_and_commit_one_manifest(world: CliWorld) -> None:
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    world.server.httpd.RequestHandlerClass = functools.partial(_SlowImages, directory=str(world.root.resolve()))
    manifests = world.inventory().get("manifests", 0)
    procs = [subprocess.Popen([sys.executable, "-m", "blokauto.cli", *map(str, world.update_cli())],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV})
             for _ in range(2)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(10)
    assert [p.returncode for p in procs] == [0, 0], outs
    said = [" ".join(o.split()) for o, _ in outs]
    assert sum("manifest committed" in s for s in said) == 1, outs
    assert sum("is up to date" in s for s in said) == 1, outs
    assert world.inventory()["manifests"] == manifests + 1
    assert running(world) == {"brake-1": B2[0], "gw-1": G1[0]}
    installs = [i for i in world.sw.installs(world.vin)["installs"] if i["image"] == sha(B2[1])]
    assert len(installs) == 1
    state = msgspec.json.decode((world.root / "ecu" / "vehicle.json").read_bytes())
    assert state["pending_manifest"] == "" and {e["ecu"]: e["image"] for e in state["ecus"]}["brake-1"] == sha(B2[1])


def test_release_counter_above_2_53_minus_1_is_a_usage_error(world: CliWorld) -> None:
    before = listing(world.images.directory)
    for counter in (MAX_COUNTER + 1, 2**64):
        r = world.release_cli(world.spec(B3, BRAKE, counter))
        usage_error(r, "2^53 - 1")
        assert listing(world.images.directory) == before
    assert world.anchored()["release"] == 1


def test_update_check_json_marks_what_each_ecu_already_runs(world: CliWorld) -> None:
    world.release((*B2, BRAKE, 2, ""), (*G2, GATEWAY, 2, ""))
    world.assign((["brake-1"], B2[0]))
    world.updater().update()
    world.assign((["brake-1"], B2[0]), (["gw-1"], G2[0]))

    plan = json.loads(ok(cli(*world.update_cli("--check", "--json"))).stdout)

    assert {a["path"]: a["installed"] for a in plan["assigned"]} == {B2[0]: True, G2[0]: False}
    assert running(world) == {"brake-1": B2[0], "gw-1": G1[0]}  # --check installs nothing


# ---------------------------------------------------------------- 10. the car's storage


def test_car_restored_from_storage_older_than_the_ledger_does_not_loop(world: CliWorld) -> None:
    world.release((*B2, BRAKE, 2, ""))
    world.assign((["brake-1"], B2[0]))
    up = world.updater()
    up.check()
    backup = world.root / "ecu-backup"
    shutil.copytree(up.dir, backup)
    up.update()
    inventory = world.inventory()
    assert inventory["manifests"] == 1
    shutil.rmtree(up.dir)
    shutil.copytree(backup, up.dir)  # the car's storage, as it was before the update

    r = ok(cli(*world.update_cli()))

    assert "installed brake/brake-2.bin on brake-1" in text(r)
    assert world.inventory() == inventory  # the ledger answered manifest_unchanged: nothing new recorded
    state = msgspec.json.decode(up.state_file.read_bytes())
    assert state["pending_manifest"] == "" and state["previous"] == []
    assert {e["ecu"]: e["image"] for e in state["ecus"]} == {e["ecu"]: e["image"] for e in inventory["ecus"]}
    assert vehicle_files(up)[1] == {sha(B2[1]): B2[1]}
    assert world.updater().update().installed == []  # up to date: no loop
    assert world.inventory() == inventory


def test_images_no_ecu_runs_are_deleted_after_an_update(world: CliWorld) -> None:
    world.release((*B2, BRAKE, 2, ""), (*G2, GATEWAY, 2, ""))
    world.assign((["brake-1"], B2[0]), (["gw-1"], G2[0]))
    up: Updater = world.updater()
    up.update()
    assert vehicle_files(up)[1] == {sha(B2[1]): B2[1], sha(G2[1]): G2[1]}
    world.release((*B3, BRAKE, 3, ""))
    world.assign((["brake-1"], B3[0]), (["gw-1"], G2[0]))

    assert [e.ecu for e in up.update().installed] == ["brake-1"]

    assert vehicle_files(up)[1] == {sha(B3[1]): B3[1], sha(G2[1]): G2[1]}
