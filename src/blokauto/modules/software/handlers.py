"""Software rules. The ledger anchors what Uptane's two repositories sign, so every vehicle and
regulator sees the same roots and releases; a vehicle's manifest counts only for images a release
anchored, on ECUs its maker fitted."""

from __future__ import annotations

import msgspec
from tuf.api.metadata import Root, TargetFile, Targets

from ...core.module import ANYONE, Context
from ...core.state import Overlay, StateReader
from . import errors
from .messages import (MAX_ECUS, AnchorRelease, EcusFitted, FitEcus, RegisterRepository, ReleaseAnchored,
                       ReportManifest, RepositoryAnchored, RotateRoot, SoftwareInstalled)
from .metadata import (check_fresh, check_root_rotation, check_root_shape, check_signed, expires_ms, parse, sha256,
                       target_hash)
from .doors import InstalledImage, SoftwareRemedies
from .spec import INSTALLS, MANIFEST_SKEW_MS, Vehicles, module
from .state import (BUNDLES, IMAGES, RELEASES, REPOSITORIES, VEHICLES, Ecu, Image, ImageRef, Release, Repository,
                    VehicleSoftware, is_ident, is_target_path)

#: Most images one release lists.
MAX_RELEASE_IMAGES = 200
#: The TUF custom fields of an image (Uptane's hardware identifier and release counter).
CUSTOM_HARDWARE, CUSTOM_COUNTER, CUSTOM_BUNDLE = "hardware_id", "release_counter", "bundle"


def _maker(ctx: Context) -> str:
    assert ctx.member is not None
    return ctx.member.org


def repository(state: StateReader, maker: str, kind: str) -> Repository:
    repo = REPOSITORIES.get(state, maker, kind)
    if repo is None:
        raise errors.UnknownRepository(maker=maker, kind=kind)
    return repo


@module.message(RegisterRepository, roles={"manufacturer"})
def register_repository(state: Overlay, ctx: Context, msg: RegisterRepository) -> None:
    """Once per maker and kind: a root with the four top-level roles, signed by its own root threshold,
    not expired at the block time."""
    maker = _maker(ctx)
    existing = REPOSITORIES.get(state, maker, msg.kind)
    if existing is not None:
        raise errors.RepositoryExists(maker=maker, kind=msg.kind, height=existing.registered)
    data = msg.root.encode()
    md = parse(data, Root, "root")
    check_root_shape(md.signed)
    check_signed(md.signed, "root", md)
    check_fresh(md.signed, "root", ctx.time)
    REPOSITORIES.put(state, Repository(maker, msg.kind, md.signed.version, sha256(data), msg.root,
                                       expires_ms(md.signed), ctx.height), maker, msg.kind)
    ctx.emit(RepositoryAnchored(maker=maker, kind=msg.kind, version=md.signed.version))


@module.message(RotateRoot, roles={"manufacturer"})
def rotate_root(state: Overlay, ctx: Context, msg: RotateRoot) -> None:
    """The next root version, signed by the root thresholds of the anchored root and of itself (a key
    it drops can sign nothing from this block on); not expired at the block time."""
    maker = _maker(ctx)
    repo = repository(state, maker, msg.kind)
    old = parse(repo.root.encode(), Root, "root").signed
    data = msg.root.encode()
    md = parse(data, Root, "root")
    check_root_shape(md.signed)
    check_root_rotation(old, md)
    check_fresh(md.signed, "root", ctx.time)
    REPOSITORIES.put(state, msgspec.structs.replace(repo, root_version=md.signed.version, root_sha256=sha256(data),
                                                    root=msg.root, root_expires=expires_ms(md.signed),
                                                    rotated=ctx.height), maker, msg.kind)
    ctx.emit(RepositoryAnchored(maker=maker, kind=msg.kind, version=md.signed.version))


def _image(maker: str, version: int, t: TargetFile) -> Image:
    """One target of a release as an ``Image``; ``InvalidRelease`` naming what is missing."""
    custom = t.unrecognized_fields.get("custom")
    if not isinstance(custom, dict):
        raise errors.InvalidRelease(reason=f"target {t.path!r} has no custom fields (hardware_id, release_counter)")
    hw, counter, bundle = custom.get(CUSTOM_HARDWARE), custom.get(CUSTOM_COUNTER), custom.get(CUSTOM_BUNDLE, "")
    if not isinstance(hw, str) or not is_ident(hw):
        raise errors.InvalidRelease(reason=f"target {t.path!r} has no valid custom.hardware_id")
    if type(counter) is not int or not 0 <= counter <= 2**53 - 1:
        raise errors.InvalidRelease(reason=f"target {t.path!r} has no integer custom.release_counter")
    if not isinstance(bundle, str) or (bundle and not is_ident(bundle)):
        raise errors.InvalidRelease(reason=f"target {t.path!r} has an invalid custom.bundle")
    if not is_target_path(t.path):
        raise errors.InvalidRelease(reason=f"target path {t.path[:80]!r} is not a plain relative path")
    return Image(maker, target_hash(t), t.path, t.length, hw, counter, version, bundle)


@module.message(AnchorRelease, roles={"manufacturer"})
def anchor_release(state: Overlay, ctx: Context, msg: AnchorRelease) -> None:
    """The maker's image repository is registered and its anchored root not expired; the targets
    metadata is signed by the threshold of targets keys that root names, newer than the last release,
    not expired; every target has
    a sha256, a hardware id and a release counter; an image (by hash) keeps the description it was
    first released with; a bundle has at most one image per hardware id and keeps its images in every
    later release that lists it."""
    maker = _maker(ctx)
    repo = repository(state, maker, "image")
    root = parse(repo.root.encode(), Root, "root").signed
    check_fresh(root, "root", ctx.time)  # a vehicle refuses a repository whose root expired: rotate it first
    data = msg.targets.encode()
    md = parse(data, Targets, "targets")
    check_signed(root, "targets", md)
    if md.signed.version <= repo.release:
        raise errors.MetadataRollback(role="targets", reason=f"version {md.signed.version}, and release "
                                                             f"{repo.release} is anchored")
    check_fresh(md.signed, "targets", ctx.time)
    targets = md.signed.targets
    if not 1 <= len(targets) <= MAX_RELEASE_IMAGES:
        raise errors.InvalidRelease(reason=f"it lists {len(targets)} targets; a release lists 1 to {MAX_RELEASE_IMAGES} "
                                           f"(list only the images vehicles still need: `software release --only`)")
    version = md.signed.version
    images = [_image(maker, version, t) for _, t in sorted(targets.items())]
    bundles: dict[str, dict[str, ImageRef]] = {}
    seen: dict[str, Image] = {}  # this release's own images: one hash, one description here too
    for img in images:
        known = seen.get(img.sha256) or IMAGES.get(state, maker, img.sha256)
        seen.setdefault(img.sha256, img)
        if known is not None and (known.path, known.length, known.hardware_id, known.release_counter, known.bundle) != \
                (img.path, img.length, img.hardware_id, img.release_counter, img.bundle):
            raise errors.ImageMismatch(what=f"target {img.path!r}", reason=f"release {known.release} describes the "
                                       f"image {img.sha256[:16]} as {known.path!r} for {known.hardware_id!r}, counter "
                                       f"{known.release_counter}, length {known.length}")
        if img.bundle:
            members = bundles.setdefault(img.bundle, {})
            if img.hardware_id in members:
                raise errors.InvalidRelease(reason=f"bundle {img.bundle!r} has two images for {img.hardware_id!r}")
            members[img.hardware_id] = ImageRef(img.path, img.sha256)
    for bundle, members in sorted(bundles.items()):
        before = BUNDLES.get(state, maker, bundle)
        if before is not None and before != members:
            raise errors.InvalidRelease(reason=f"bundle {bundle!r} was released before with other images; a bundle "
                                               f"keeps its images (name a new bundle)")
    for img in images:
        if not IMAGES.has(state, maker, img.sha256):
            IMAGES.put(state, img, maker, img.sha256)
    for bundle, members in sorted(bundles.items()):
        if not BUNDLES.has(state, maker, bundle):
            BUNDLES.put(state, members, maker, bundle)
    RELEASES.put(state, Release(maker, version, sha256(data), expires_ms(md.signed),
                                [ImageRef(i.path, i.sha256) for i in images], ctx.height, ctx.time, msg.targets,
                                msg.notes), maker, version)
    REPOSITORIES.put(state, msgspec.structs.replace(repo, release=version, release_sha256=sha256(data)), maker, "image")
    ctx.emit(ReleaseAnchored(maker=maker, version=version, images=len(images)))


def _released(state: StateReader, maker: str, sha: str, what: str) -> Image:
    img = IMAGES.get(state, maker, sha)
    if img is None:
        raise errors.ReleaseNotAnchored(what=what, maker=maker)
    return img


@module.message(FitEcus, roles={"manufacturer"})
def fit_ecus(state: Overlay, ctx: Context, msg: FitEcus) -> None:
    """The vehicle's maker fits ECUs (or replaces them: same id, new hardware), each with a factory
    image of its hardware from an anchored release, if any; at most 64 per vehicle."""
    maker = _maker(ctx)
    vehicles = ctx.need(Vehicles)
    made_by, _ = vehicles.require_vehicle(state, msg.vin)
    if made_by != maker:
        raise errors.NotVehicleMaker(vin=msg.vin, manufacturer=made_by)
    ids = [e.ecu for e in msg.ecus]
    if len(set(ids)) != len(ids):
        raise errors.DuplicateEcu(ecu=next(i for i in ids if ids.count(i) > 1))
    current = VEHICLES.get(state, msg.vin) or VehicleSoftware(msg.vin, maker, [])
    fitted = {e.ecu: e for e in current.ecus}
    for spec in msg.ecus:
        ecu = Ecu(spec.ecu, spec.hardware_id, height=ctx.height, time=ctx.time)
        if spec.image is not None:
            img = _released(state, maker, spec.image, f"factory image {spec.image[:16]} of ECU {spec.ecu!r}")
            if img.hardware_id != spec.hardware_id:
                raise errors.WrongHardwareId(path=img.path, image_hardware=img.hardware_id, ecu=spec.ecu,
                                             ecu_hardware=spec.hardware_id)
            ecu = msgspec.structs.replace(ecu, path=img.path, image=img.sha256, release_counter=img.release_counter)
        fitted[spec.ecu] = ecu
    if len(fitted) > MAX_ECUS:
        raise errors.TooManyEcus(vin=msg.vin, count=len(fitted), limit=MAX_ECUS)
    n = current.installs
    for spec in msg.ecus:
        e = fitted[spec.ecu]
        n += 1
        ctx.index_put(INSTALLS, vin=msg.vin, n=n, ecu=e.ecu, height=ctx.height, path=e.path, image=e.image,
                      counter=e.release_counter, hardware_id=e.hardware_id, maker=maker)
    VEHICLES.put(state, msgspec.structs.replace(current, ecus=[fitted[k] for k in sorted(fitted)], installs=n),
                 msg.vin)
    vehicles.record_event(state, ctx, msg.vin, "ecus_fitted", {"ecus": [
        {"ecu": s.ecu, "hardware_id": s.hardware_id, "path": fitted[s.ecu].path, "image": fitted[s.ecu].image,
         "release_counter": fitted[s.ecu].release_counter} for s in msg.ecus]})
    ctx.emit(EcusFitted(vin=msg.vin, ecus=len(msg.ecus)))


@module.message(ReportManifest, roles=ANYONE)
def report_manifest(state: Overlay, ctx: Context, msg: ReportManifest) -> None:
    """Signed by a current device key of the vehicle (its primary ECU); dated after its last manifest
    and no later than the block time plus ``manifest_future_skew_ms``; each ECU named once and fitted;
    each image anchored in a release of the vehicle's maker under that path, for that ECU's hardware,
    with a release counter no lower than what the ECU runs; a bundle installed whole on the ECUs whose
    hardware it covers; at least one ECU changed. Recalls the install fixes are remedied with it."""
    vehicles = ctx.need(Vehicles)
    vehicles.require_device(state, msg.vin, ctx.sender)
    sw = VEHICLES.get(state, msg.vin)
    if sw is None:
        raise errors.UnknownEcu(vin=msg.vin, ecu=msg.installed[0].ecu)
    skew = ctx.param(MANIFEST_SKEW_MS.name)
    if msg.t <= sw.last_t or msg.t > ctx.time + skew:
        raise errors.ManifestOutOfOrder(vin=msg.vin, t=msg.t, last=sw.last_t, skew_ms=skew, time=ctx.time)
    ids = [i.ecu for i in msg.installed]
    if len(set(ids)) != len(ids):
        raise errors.DuplicateEcu(ecu=next(i for i in ids if ids.count(i) > 1))
    after = {e.ecu: e for e in sw.ecus}
    changed: list[tuple[Ecu, Image]] = []
    for entry in msg.installed:
        ecu = after.get(entry.ecu)
        if ecu is None:
            raise errors.UnknownEcu(vin=msg.vin, ecu=entry.ecu)
        img = _released(state, sw.maker, entry.image, f"image {entry.path!r} ({entry.image[:16]})")
        if img.path != entry.path:
            raise errors.ImageMismatch(what=f"ECU {entry.ecu!r}", reason=f"the image {entry.image[:16]} is released "
                                       f"as {img.path!r}, not {entry.path!r}")
        if img.hardware_id != ecu.hardware_id:
            raise errors.WrongHardwareId(path=img.path, image_hardware=img.hardware_id, ecu=ecu.ecu,
                                         ecu_hardware=ecu.hardware_id)
        if img.release_counter < ecu.release_counter:
            raise errors.SoftwareRollback(path=img.path, counter=img.release_counter, current=ecu.release_counter,
                                          ecu=ecu.ecu)
        if img.sha256 != ecu.image:
            changed.append((ecu, img))
            after[ecu.ecu] = msgspec.structs.replace(ecu, path=img.path, image=img.sha256,
                                                     release_counter=img.release_counter, height=ctx.height,
                                                     time=ctx.time)
    if not changed:
        raise errors.ManifestUnchanged(vin=msg.vin)
    for _, img in changed:
        _check_bundle(state, sw.maker, img, after)
    n = sw.installs
    for ecu, img in changed:
        n += 1
        ctx.index_put(INSTALLS, vin=msg.vin, n=n, ecu=ecu.ecu, height=ctx.height, path=img.path, image=img.sha256,
                      counter=img.release_counter, hardware_id=img.hardware_id, maker=sw.maker)
    VEHICLES.put(state, msgspec.structs.replace(sw, ecus=[after[k] for k in sorted(after)], manifests=sw.manifests + 1,
                                                last_t=msg.t, installs=n), msg.vin)
    vehicles.record_event(state, ctx, msg.vin, "software_installed", {"t": msg.t, "installed": [
        {"ecu": ecu.ecu, "path": img.path, "image": img.sha256, "release_counter": img.release_counter}
        for ecu, img in changed]})
    ctx.need(SoftwareRemedies).software_installed(state, ctx, msg.vin, [
        InstalledImage(ecu.ecu, img.hardware_id, img.release_counter, img.sha256, img.path) for ecu, img in changed])
    ctx.emit(SoftwareInstalled(vin=msg.vin, ecus=[ecu.ecu for ecu, _ in changed]))


def _check_bundle(state: StateReader, maker: str, img: Image, after: dict[str, Ecu]) -> None:
    """Every ECU whose hardware the image's bundle covers runs the bundle's image for it."""
    if not img.bundle:
        return
    members = BUNDLES.get(state, maker, img.bundle) or {}
    for ecu in after.values():
        ref = members.get(ecu.hardware_id)
        if ref is not None and ecu.image != ref.sha256:
            raise errors.PartialBundle(bundle=img.bundle, ecu=ecu.ecu, hardware_id=ecu.hardware_id, path=ref.path)
