"""Software queries and who reads them. Roots, releases and images are what every vehicle must be
able to check (any signed request: a vehicle's device key reads them); a vehicle's inventory and
install history are its ``history`` data; which vehicles run an image is its maker's to ask."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import SIGNED, OrgOf, VehicleData
from ...core.encoding import Hex32, Uint, to_builtins
from ...core.errors import NotFound
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .handlers import repository as _repository
from .spec import INSTALLS, module
from .state import IMAGES, RELEASES, REPOSITORIES, VEHICLES, Kind

PAGE_MAX = 1000
HISTORY = VehicleData("vin", "history")


class RepositoryQuery(msgspec.Struct):
    maker: KeyPart
    kind: Kind = "image"


class ReleasesQuery(Page, kw_only=True):
    maker: KeyPart


class ReleaseQuery(msgspec.Struct):
    maker: KeyPart
    version: Uint


class ImageQuery(msgspec.Struct):
    maker: KeyPart
    sha256: Hex32


class VinQuery(msgspec.Struct):
    vin: KeyPart


class VinPage(Page, kw_only=True):
    vin: KeyPart


class RunningQuery(Page, kw_only=True):
    maker: KeyPart
    sha256: Hex32


@module.query("repository", RepositoryQuery, read=SIGNED, proof_keys=lambda q: [REPOSITORIES.key(q.maker, q.kind)])
def repository(view: QueryView, q: RepositoryQuery) -> dict[str, Any]:
    """A maker's image repository or director as anchored: its root (version, hash, the file itself)
    and, for the image repository, the latest release."""
    return to_builtins(_repository(view, q.maker, q.kind))


@module.query("releases", ReleasesQuery, read=SIGNED)
def releases(view: QueryView, q: ReleasesQuery) -> dict[str, Any]:
    """A maker's anchored releases, newest first: version, targets hash, images, block (the targets
    file itself: the `release` query)."""
    repo = REPOSITORIES.get(view, q.maker, "image")
    latest = repo.release if repo is not None else 0
    versions = range(latest - q.offset, max(0, latest - q.offset - q.size(PAGE_MAX)), -1)
    found = [RELEASES.get(view, q.maker, v) for v in versions]
    return {"maker": q.maker, "latest": latest,  # each without its targets file (the `release` query has it)
            "releases": [{k: v for k, v in to_builtins(r).items() if k != "targets"} for r in found if r is not None]}


@module.query("release", ReleaseQuery, read=SIGNED, proof_keys=lambda q: [RELEASES.key(q.maker, q.version)])
def release(view: QueryView, q: ReleaseQuery) -> dict[str, Any]:
    """One anchored release: its targets metadata file and hash, its expiry, the images it lists."""
    r = RELEASES.get(view, q.maker, q.version)
    if r is None:
        raise NotFound(what="Release", key=f"{q.maker} v{q.version}")
    return to_builtins(r)


@module.query("image", ImageQuery, read=SIGNED, proof_keys=lambda q: [IMAGES.key(q.maker, q.sha256)])
def image(view: QueryView, q: ImageQuery) -> dict[str, Any]:
    """An anchored image by its sha256: path, length, hardware id, release counter, bundle."""
    img = IMAGES.get(view, q.maker, q.sha256)
    if img is None:
        raise NotFound(what="Anchored image", key=f"{q.maker} {q.sha256}")
    return to_builtins(img)


@module.query("inventory", VinQuery, read=HISTORY, proof_keys=lambda q: [VEHICLES.key(q.vin)])
def inventory(view: QueryView, q: VinQuery) -> dict[str, Any]:
    """A vehicle's software inventory: each ECU, its hardware, the image it runs (path, hash, release
    counter) and the block and time it was installed."""
    sw = VEHICLES.get(view, q.vin)
    if sw is None:
        raise NotFound(what="Software inventory", key=q.vin)
    return to_builtins(sw)


@module.query("installs", VinPage, read=HISTORY)
def installs(view: QueryView, q: VinPage) -> dict[str, Any]:
    """Every image a vehicle's ECUs were fitted with or reported installed, oldest first."""
    rows = view.rows(INSTALLS, {"vin": q.vin}, order=("n",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"vin": q.vin, "installs": [{k: r[k] for k in ("n", "ecu", "height", "path", "image", "counter",
                                                           "hardware_id")} for r in rows]}


@module.query("running", RunningQuery, read=OrgOf("maker"))
def running(view: QueryView, q: RunningQuery) -> dict[str, Any]:
    """The vehicles (and ECUs) of a maker whose last install on an ECU is this image, in VIN order:
    who still runs a release."""
    rows = view.sql(
        "SELECT i.vin, i.ecu, i.height FROM {installs} i WHERE i.maker = ? AND i.image = ? AND i.n = "
        "(SELECT MAX(j.n) FROM {installs} j WHERE j.vin = i.vin AND j.ecu = i.ecu) "
        "ORDER BY i.vin, i.ecu LIMIT ? OFFSET ?", [q.maker, q.sha256, q.size(PAGE_MAX), q.offset], installs=INSTALLS)
    return {"maker": q.maker, "sha256": q.sha256,
            "vehicles": [{"vin": vin, "ecu": ecu, "since": height} for vin, ecu, height in rows]}


module.reads(SIGNED, "software.repository_anchored", "software.release_anchored")
module.reads(HISTORY, "software.ecus_fitted", "software.installed")
