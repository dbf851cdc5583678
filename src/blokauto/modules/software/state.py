"""Software state: each maker's two repositories (the roots the ledger anchors), the releases of
its image repository and the images they list, the bundles that install together, and each
vehicle's ECUs with the image each runs (its software inventory)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.state import StateMap
from . import keys

IDENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
#: A target path: relative, no empty or ".." segment (checked with ``is_target_path``).
TARGET_PATH = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,7}"
Ident = Annotated[str, msgspec.Meta(pattern=f"^{IDENT}$")]
TargetPath = Annotated[str, msgspec.Meta(pattern=f"^{TARGET_PATH}$", max_length=200)]


def is_ident(s: str) -> bool:
    return re.fullmatch(IDENT, s) is not None


def is_target_path(s: str) -> bool:
    return len(s) <= 200 and re.fullmatch(TARGET_PATH, s) is not None and ".." not in s.split("/")
Kind = Literal["image", "director"]


class Repository(msgspec.Struct, frozen=True):
    """A maker's image repository or director: the root the ledger anchors (its text, for a
    vehicle to start from), and for the image repository the latest release anchored."""

    maker: str
    kind: Kind
    root_version: Uint
    root_sha256: str
    root: str  # the root metadata file as anchored
    root_expires: Uint  # ms
    registered: Uint  # height
    rotated: Uint = 0  # height of the last root rotation (0: never)
    release: Uint = 0  # image repository: version of the latest anchored targets metadata
    release_sha256: str = ""


class ImageRef(msgspec.Struct, frozen=True):
    path: str
    sha256: str


class Release(msgspec.Struct, frozen=True):
    """One anchored version of a maker's image-repository targets metadata."""

    maker: str
    version: Uint
    sha256: str  # of the targets metadata file as the repository serves it
    expires: Uint  # ms
    images: list[ImageRef]
    height: Uint
    time: Uint
    targets: str  # the targets metadata file itself: a repository that lost it publishes the ledger's copy
    notes: str = ""


class Image(msgspec.Struct, frozen=True):
    """An image as the release that first listed it describes it (TUF target custom fields
    ``hardware_id``, ``release_counter`` and optional ``bundle``)."""

    maker: str
    sha256: str
    path: str
    length: Uint
    hardware_id: str
    release_counter: Uint
    release: Uint  # the targets version that first listed it
    bundle: str = ""


class Ecu(msgspec.Struct, frozen=True):
    """One ECU of a vehicle and what it runs (path "" before its first install reported)."""

    ecu: str
    hardware_id: str
    path: str = ""
    image: str = ""  # sha256
    release_counter: Uint = 0
    height: Uint = 0  # when it was fitted or last installed
    time: Uint = 0


class VehicleSoftware(msgspec.Struct, frozen=True):
    vin: str
    maker: str
    ecus: list[Ecu]  # by ECU id
    manifests: Uint = 0
    last_t: Uint = 0  # the vehicle's time of its last manifest (ms)
    installs: Uint = 0  # rows of the vehicle in the installs index (each fitted or installed image)

    def ecu(self, ecu_id: str) -> Ecu | None:
        return next((e for e in self.ecus if e.ecu == ecu_id), None)


REPOSITORIES = StateMap(keys.REPOSITORY, Repository)
RELEASES = StateMap(keys.RELEASE, Release)
IMAGES = StateMap(keys.IMAGE, Image)
BUNDLES = StateMap(keys.BUNDLE, dict[str, ImageRef])  # hardware id -> the bundle's image for it
VEHICLES = StateMap(keys.VEHICLE, VehicleSoftware)
