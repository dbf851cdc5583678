"""``blokauto software``: a maker's Uptane repositories and their anchors on the ledger; and
``blokauto vehicle update``: the vehicle's primary ECU.

    software repo-init DIR --kind image|director [--threshold ROLE=N]   a python-tuf repository, role keys in DIR/keys
    software register DIR --key MAKER                   anchor its root on the ledger
    software rotate-root DIR --key MAKER [--add ROLE] [--remove ROLE=KEYID] [--threshold ROLE=N]
    software keys DIR                                   roles, thresholds, key ids, which keys are held here
    software release DIR --image PATH:FILE:HARDWARE:COUNTER[:BUNDLE] ... [--only] --key MAKER   sign, anchor, publish
    software sync DIR --as MAKER                        publish what the ledger anchored (after an interruption)
    software anchor DIR --key MAKER                     anchor a release other tooling published
    software assign DIR VIN --images IMAGE_DIR --ecu ECU=PATH ...    the director's next update for a vehicle
    software timestamp DIR [--vin VIN]                  re-sign the timestamp (keeps vehicles fresh)
    software serve DIR [--port N]                       serve repositories over HTTP (127.0.0.1)
    software fit-ecus VIN --ecu ECU=HARDWARE[:SHA256] ... --key MAKER
    software confirm-fix CAMPAIGN VIN --key KEY         a software recall remedied by a fix already on record
    software inventory VIN | installs VIN | releases MAKER | running MAKER SHA256
    vehicle update VIN --key DEVICE --director URL --images URL --state DIR [--check]

Transactions are signed with ``--key`` (a name in DATA/keys, or a key file), reads with ``--as``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from .common import AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, flag, group, print_json, \
    say_trust, signing_key, when
from .errors import cli_errors
from .telemetry import DeviceOpt, VinArg, vehicle_app
from .tx import WaitOpt, print_receipt

software_app = group("Over-the-air software: a maker's Uptane repositories (python-tuf) anchored on the ledger, "
                     "releases, ECUs and each vehicle's signed install manifests.")

RepoArg = typer.Argument(..., metavar="DIR", help="The repository's folder (`software repo-init` made it).")
MakerKeyOpt = typer.Option(..., "--key", "-k", metavar="NAME|FILE",
                           help="A manufacturer key of the maker (DATA/keys, or a key file).")


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{what} {item!r} is not NAME=VALUE")
        out.append((name, value))
    return out


def _sw(node: str, data: Path, trust: Optional[Path], key: Any) -> Any:
    from ..client.software import Software

    return Software(client(node, data, trust, key=key))


def _send(sw: Any, info_of: Any, as_json: bool) -> Any:
    with sw.client:
        info = info_of()
        say_trust(sw.client)
        print_receipt(info, as_json)
    return info


# ---------------------------------------------------------------- the maker's repositories


@software_app.command("repo-init")
@cli_errors
def repo_init(directory: Path = RepoArg,
              kind: str = typer.Option(..., "--kind", metavar="image|director", help="Image repository or director."),
              threshold: list[str] = typer.Option([], "--threshold", metavar="ROLE=N",
                                                  help="Keys (and signatures needed) of a role: root, targets, "
                                                       "snapshot or timestamp (default 1 each)."),
              as_json: bool = JsonOpt) -> None:
    """Create a TUF repository (python-tuf): version-1 root signed, role keys generated in DIR-keys/
    beside it, never in what is served (keep the root keys offline once it is registered)."""
    from ..ota.repository import Director, ImageRepository

    cls = {"image": ImageRepository, "director": Director}.get(kind)
    if cls is None:
        raise ValueError(f"--kind {kind!r} is not image or director")
    thresholds = {role: int(n) for role, n in _pairs(threshold, "--threshold")}
    repo = cls.create(directory, thresholds=thresholds)
    root = repo.root_bytes()
    out = {"directory": str(directory), "kind": kind, "root_version": 1,
           "root_sha256": hashlib.sha256(root).hexdigest(), "thresholds": {r: thresholds.get(r, 1) for r in
                                                                          ("root", "targets", "snapshot", "timestamp")}}
    if as_json:
        print_json(out)
    else:
        console.print(f"{kind} repository created in {escape(str(directory))}: root v1 {out['root_sha256'][:16]}…; "
                      f"anchor it with `blokauto software register {escape(str(directory))} --key MAKER`")


@software_app.command("register")
@cli_errors
def register(directory: Path = RepoArg, key: str = MakerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
             node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Anchor the repository's current root on the ledger (once per maker and kind)."""
    from ..ota.repository import open_repository

    repo = open_repository(directory)
    sender = signing_key(data, key)
    sw = _sw(node, data, trust, sender)
    _send(sw, lambda: sw.register_repository(sender, repo.kind, repo.root_bytes(), wait=wait), as_json)


@software_app.command("rotate-root")
@cli_errors
def rotate_root(directory: Path = RepoArg, key: str = MakerKeyOpt,
                add: list[str] = typer.Option([], "--add", metavar="ROLE", help="Add a new key (generated) to ROLE."),
                remove: list[str] = typer.Option([], "--remove", metavar="ROLE=KEYID",
                                                 help="Take a key out of ROLE (its TUF keyid: `software keys DIR`)."),
                threshold: list[str] = typer.Option([], "--threshold", metavar="ROLE=N",
                                                    help="Signatures ROLE needs from now on."),
                wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                as_json: bool = JsonOpt) -> None:
    """Sign the next root (by the old and the new root keys), anchor it, then publish it and sign
    again what vehicles fetch (an image repository's release is anchored again): a key removed signs
    nothing for the repository from that block on, and no vehicle is left with metadata the new keys
    do not sign."""
    from ..core.crypto import KeyPair
    from ..ota.repository import open_repository

    repo = open_repository(directory)
    adds: dict[str, list[Any]] = {}
    for role in add:
        adds.setdefault(role, []).append(KeyPair.generate())
    removes: dict[str, list[str]] = {}
    for role, keyid in _pairs(remove, "--remove"):
        removes.setdefault(role, []).append(keyid)
    thresholds = {}
    for r, n in _pairs(threshold, "--threshold"):
        if not n.isdigit():
            raise ValueError(f"--threshold {r}={n}: the threshold is a whole number")
        thresholds[r] = int(n)
    sender = signing_key(data, key)
    sw = _sw(node, data, trust, sender)
    _send(sw, lambda: sw.rotate(sender, repo, add=adds, remove=removes, thresholds=thresholds, wait=wait), as_json)


@software_app.command("keys")
@cli_errors
def keys(directory: Path = RepoArg, as_json: bool = JsonOpt) -> None:
    """The repository's roles: their thresholds and key ids (what `rotate-root --remove` names), and
    which keys this machine holds."""
    from ..ota.repository import open_repository, public_key

    repo = open_repository(directory)
    root = repo.root().signed
    held = {public_key(repo.keys.load(p.stem)).keyid: p.stem for p in sorted(repo.keys.directory.glob("*.json"))}
    out = {name: {"threshold": role.threshold, "keys": [{"keyid": k, "held": held.get(k, "")} for k in role.keyids]}
           for name, role in root.roles.items()}
    if as_json:
        print_json({"root_version": root.version, "roles": out})
        return
    console.print(f"root version {root.version}")
    for name, r in out.items():
        console.print(f"  {name}: {r['threshold']} of {len(r['keys'])}")
        for k in r["keys"]:
            console.print(f"    {k['keyid']}" + (f"  ({k['held']} in {escape(str(repo.keys.directory))})"
                                                  if k["held"] else "  (not held here)"))


def _image_spec(spec: str) -> tuple[str, bytes, str, int, str]:
    parts = spec.split(":")
    if len(parts) not in (4, 5):
        raise ValueError(f"--image {spec[:120]!r} is not PATH:FILE:HARDWARE:COUNTER[:BUNDLE]")
    path, file, hw, counter = parts[:4]
    if not counter.isdigit() or int(counter) > 2**53 - 1:
        raise ValueError(f"--image {spec[:120]!r}: the release counter {counter[:30]!r} is not a whole number from 0 "
                         f"to 2^53 - 1")
    return path, Path(file).read_bytes(), hw, int(counter), parts[4] if len(parts) == 5 else ""


@software_app.command("release")
@cli_errors
def release(directory: Path = RepoArg,
            image: list[str] = typer.Option(..., "--image", metavar="PATH:FILE:HARDWARE:COUNTER[:BUNDLE]",
                                            help="An image: its target path, the file, the ECU hardware id it is "
                                                 "for, its release counter, and a bundle it installs with."),
            notes: str = typer.Option("", "--notes", metavar="TEXT", help="Release notes on the ledger."),
            only: bool = flag("--only", "List only these images (default: also every image of the previous release "
                                        "whose path they do not replace)."),
            key: str = MakerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
            trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Sign the next release of the image repository, anchor its targets metadata on the ledger and,
    once anchored, publish it to vehicles; a release the ledger refuses is discarded, never served.
    First the repository catches up with what the ledger anchored (as `software sync`)."""
    from ..ota.repository import ImageRepository, open_repository

    repo = open_repository(directory)
    if not isinstance(repo, ImageRepository):
        raise ValueError(f"{directory} is a director; releases are published by the image repository")
    specs = [_image_spec(s) for s in image]
    sender = signing_key(data, key)
    sw = _sw(node, data, trust, sender)
    _send(sw, lambda: sw.release(sender, repo, specs, notes=notes, only=only, wait=wait), as_json)


@software_app.command("sync")
@cli_errors
def sync(directory: Path = RepoArg, as_key: Optional[str] = typer.Option(..., "--as", "-a", metavar="NAME|FILE",
                                                                     help="A member key of the maker."),
         data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt) -> None:
    """Bring the repository in line with what the ledger anchored, after a release or root rotation
    that was anchored but not published (the command or the machine stopped in between): the anchored
    root and release are published from the ledger's own copies (read with their proofs)."""
    from ..ota.repository import open_repository

    repo = open_repository(directory)
    sender = signing_key(data, as_key)
    sw = _sw(node, data, trust, sender)
    with sw.client:
        done = sw.sync(repo, sw.maker_of(sender), key=sender)
        say_trust(sw.client)
    console.print("\n".join(done) if done else f"{escape(str(directory))} serves what the ledger anchored")


@software_app.command("anchor")
@cli_errors
def anchor(directory: Path = RepoArg,
           notes: str = typer.Option("", "--notes", metavar="TEXT", help="Release notes on the ledger."),
           key: str = MakerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
           trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Anchor the release the image repository serves, when other tooling published it (a release
    made with `software release` is anchored already; after an interruption use `software sync`)."""
    from ..ota.repository import ImageRepository, open_repository

    repo = open_repository(directory)
    if not isinstance(repo, ImageRepository):
        raise ValueError(f"{directory} is a director; releases are anchored from the image repository")
    targets = repo.targets_bytes()
    sender = signing_key(data, key)
    sw = _sw(node, data, trust, sender)
    _send(sw, lambda: sw.anchor_release(sender, targets, notes=notes, wait=wait), as_json)


@software_app.command("assign")
@cli_errors
def assign(directory: Path = RepoArg, vin: str = VinArg,
           images: Path = typer.Option(..., "--images", metavar="DIR", help="The image repository's folder."),
           ecu: list[str] = typer.Option(..., "--ecu", metavar="ECU=PATH",
                                         help="An ECU of the vehicle and the image (target path) it installs next."),
           as_json: bool = JsonOpt) -> None:
    """The director's next update for a vehicle: which image each ECU installs (the image repository's
    own entry for each, so the vehicle can match them)."""
    from ..modules.software import is_ident
    from ..ota.repository import Director, open_repository

    director = open_repository(directory)
    if not isinstance(director, Director):
        raise ValueError(f"{directory} is an image repository, not a director")
    image_repo = open_repository(images)
    by_path: dict[str, list[str]] = {}
    for ecu_id, path in _pairs(ecu, "--ecu"):
        if not is_ident(ecu_id):
            raise ValueError(f"--ecu {ecu_id[:60]!r}={path[:60]}: an ECU id is letters, digits, '.', '_', '-'")
        by_path.setdefault(path, []).append(ecu_id)
    data = director.assign(vin, [(ecus, image_repo.target(path)) for path, ecus in by_path.items()])
    out = {"vin": vin, "targets_sha256": hashlib.sha256(data).hexdigest(),
           "assigned": [{"path": p, "ecus": e} for p, e in by_path.items()]}
    if as_json:
        print_json(out)
    else:
        for p, e in by_path.items():
            console.print(f"{escape(vin)}: {', '.join(e)} -> {escape(p)}")


@software_app.command("timestamp")
@cli_errors
def timestamp(directory: Path = RepoArg,
              vin: Optional[str] = typer.Option(None, "--vin", metavar="VIN",
                                                help="A director: the vehicle's repository (default: every vehicle's).")
              ) -> None:
    """Re-sign the timestamp (the online role; vehicles refuse an expired one as a freeze attack)."""
    from ..ota.repository import Director, open_repository

    repo = open_repository(directory)
    if isinstance(repo, Director):
        dirs = [repo.vehicle_dir(vin)] if vin else sorted((repo.directory / "vehicles").glob("*/metadata"))
        for d in dirs:
            repo.refresh_timestamp(d)
        console.print(f"{len(dirs)} vehicle timestamp(s) re-signed")
    else:
        repo.refresh_timestamp()
        console.print("timestamp re-signed")


@software_app.command("serve")
@cli_errors
def serve(directory: Path = typer.Argument(..., metavar="DIR", help="The folder to serve (holding the repositories)."),
          host: str = typer.Option("127.0.0.1", "--host", metavar="ADDRESS", help="Address to listen on."),
          port: int = typer.Option(8600, "--port", metavar="PORT", min=0, max=65535,
                                   help="Port (0: any free one).")) -> None:
    """Serve repositories over HTTP (static files; any web server or CDN does too: the files are
    signed, the server is not trusted)."""
    from ..ota.serve import RepositoryServer

    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    srv = RepositoryServer(directory, host, port)
    console.print(f"serving {escape(str(directory))} at {srv.url} (Ctrl-C stops)")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.httpd.server_close()


# ---------------------------------------------------------------- vehicles


@software_app.command("fit-ecus")
@cli_errors
def fit_ecus(vin: str = VinArg,
             ecu: list[str] = typer.Option(..., "--ecu", metavar="ECU=HARDWARE[:SHA256]",
                                           help="An ECU id, its hardware id, and its factory image's sha256."),
             key: str = MakerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
             trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The maker fits (or replaces) a vehicle's ECUs on the ledger."""
    specs = []
    for ecu_id, rest in _pairs(ecu, "--ecu"):
        hw, _, sha = rest.partition(":")
        specs.append((ecu_id, hw, sha or None))
    sender = signing_key(data, key)
    sw = _sw(node, data, trust, sender)
    _send(sw, lambda: sw.fit_ecus(sender, vin, specs, wait=wait), as_json)


@software_app.command("confirm-fix")
@cli_errors
def confirm_fix(campaign: int = typer.Argument(..., metavar="CAMPAIGN", min=1, help="The recall campaign's id."),
                vin: str = VinArg,
                key: str = typer.Option(..., "--key", "-k", metavar="NAME|FILE", help="Any key (it signs the request)."),
                wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                as_json: bool = JsonOpt) -> None:
    """Remedy a software recall on a vehicle whose inventory on the ledger already shows the fix
    (installed before the campaign opened); refused `fix_not_installed` otherwise."""
    sender = signing_key(data, key)
    sw = _sw(node, data, trust, sender)
    _send(sw, lambda: sw.confirm_fix(sender, campaign, vin, wait=wait), as_json)


@software_app.command("inventory")
@cli_errors
def inventory(vin: str = VinArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
              trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """What each ECU of the vehicle runs, proven against a checkpoint."""
    sw = _sw(node, data, trust, signing_key(data, as_key))
    with sw.client:
        inv = sw.inventory(vin, min_height=sw.client.status()["height"])
        say_trust(sw.client)
    if inv is None:
        raise FileNotFoundError(f"{vin} has no ECUs on the ledger (its maker fits them: software fit-ecus)")
    if as_json:
        print_json(inv)
        return
    console.print(f"{escape(vin)} ({escape(inv['maker'])}): {len(inv['ecus'])} ECU(s), {inv['manifests']} manifest(s)")
    for e in inv["ecus"]:
        runs = f"{e['path']} (counter {e['release_counter']}, {e['image'][:16]}…)" if e["path"] else "no image reported"
        console.print(f"  {escape(e['ecu'])} ({escape(e['hardware_id'])}): {escape(runs)} since {when(e['time'])}")


@software_app.command("installs")
@cli_errors
def installs(vin: str = VinArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
             trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Every image the vehicle's ECUs were fitted with or installed, oldest first."""
    sw = _sw(node, data, trust, signing_key(data, as_key))
    with sw.client:
        r = sw.installs(vin)
    if as_json:
        print_json(r)
        return
    for i in r["installs"]:
        console.print(f"block {i['height']}: {escape(i['ecu'])} -> {escape(i['path'] or '(none)')} "
                      f"(counter {i['counter']})")


@software_app.command("releases")
@cli_errors
def releases(maker: str = typer.Argument(..., metavar="MAKER", help="The maker's organisation id."),
             as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
             trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The maker's anchored releases, newest first."""
    sw = _sw(node, data, trust, signing_key(data, as_key))
    with sw.client:
        r = sw.releases(maker)
    if as_json:
        print_json(r)
        return
    for rel in r["releases"]:
        console.print(f"release {rel['version']} (block {rel['height']}, {when(rel['time'])}): "
                      f"{len(rel['images'])} image(s) {escape(rel['notes'])}")
        for i in rel["images"]:
            console.print(f"  {escape(i['path'])} {i['sha256'][:16]}…")


@software_app.command("running")
@cli_errors
def running(maker: str = typer.Argument(..., metavar="MAKER", help="The maker's organisation id."),
            sha256: str = typer.Argument(..., metavar="SHA256", help="The image's sha256."),
            as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
            trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The maker's vehicles whose ECUs run this image now (for the maker)."""
    sw = _sw(node, data, trust, signing_key(data, as_key))
    with sw.client:
        r = sw.running(maker, sha256)
    if as_json:
        print_json(r)
        return
    console.print(f"{len(r['vehicles'])} ECU(s) run {sha256[:16]}…")
    for v in r["vehicles"]:
        console.print(f"  {escape(v['vin'])} {escape(v['ecu'])} since block {v['since']}")


@vehicle_app.command("update")
@cli_errors
def update(vin: str = VinArg, key: str = DeviceOpt,
           director: str = typer.Option(..., "--director", metavar="URL", help="The maker's director (base URL)."),
           images: str = typer.Option(..., "--images", metavar="URL", help="The maker's image repository (base URL)."),
           state: Path = typer.Option(..., "--state", metavar="DIR",
                                      help="The primary ECU's own storage (trusted metadata, images, inventory)."),
           check: bool = flag("--check", "Verify only: say what would be installed."),
           wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
           as_json: bool = JsonOpt) -> None:
    """The vehicle's primary ECU: Uptane full verification against the ledger's anchors, every image
    downloaded and checked, all installed at once, and the signed manifest committed. Any attack is
    refused with its code (exit 1) and nothing is installed."""
    device = signing_key(data, key)
    sw = _sw(node, data, trust, device)
    with sw.client, sw.updater(vin, device, director_url=director, images_url=images, state_dir=state) as up:
        if check:
            plan = up.check()
            say_trust(sw.client)
            out = {"vin": vin, "checkpoint": plan.checkpoint_height, "release": plan.image_release,
                   "assigned": [{"ecus": a.ecus, "path": a.target.path, "release_counter": a.release_counter,
                                 "installed": a.installed} for a in plan.assignments]}
            if as_json:
                print_json(out)
            else:
                console.print(f"verified against release {plan.image_release} (checkpoint {plan.checkpoint_height})")
                for a in plan.assignments:
                    console.print(f"  {', '.join(a.ecus)} -> {escape(a.target.path)} (counter {a.release_counter})"
                                  + (": already installed" if a.installed else ""))
            return
        result = up.update(wait=wait, progress=None if as_json else lambda m: console.print(f"[dim]{escape(m)}[/]"))
        say_trust(sw.client)
    out = {"vin": vin, "manifest_tx": result.manifest_tx, "release": result.plan.image_release,
           "installed": [{"ecu": e.ecu, "path": e.path, "image": e.image, "release_counter": e.release_counter}
                         for e in result.installed]}
    if as_json:
        print_json(out)
    elif not result.installed:
        console.print(f"{escape(vin)} is up to date (release {result.plan.image_release})")
    else:
        for e in result.installed:
            console.print(f"installed {escape(e.path)} on {escape(e.ecu)} (counter {e.release_counter})")
        console.print(f"manifest committed: {result.manifest_tx}")
