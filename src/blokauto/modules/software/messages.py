"""Software messages and events. A maker anchors its repositories' roots and its releases; the
maker fits a vehicle's ECUs; the vehicle (one of its device keys: the primary ECU's) reports what
it installed in a signed manifest."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...core.encoding import Hex32, Uint
from ...core.module import Event
from ...core.tx import Message
from .metadata import MAX_METADATA_BYTES
from .state import Ident, Kind, TargetPath

MetadataText = Annotated[str, msgspec.Meta(min_length=2, max_length=MAX_METADATA_BYTES,
                                           description="a TUF metadata file, as the repository serves it")]
Vin = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="17-character ISO 3779 VIN")]
Notes = Annotated[str, msgspec.Meta(max_length=500)]
#: Most ECUs a vehicle has on the ledger, and a manifest names.
MAX_ECUS = 64


class RegisterRepository(Message, tag="software.register_repository"):
    """A manufacturer anchors the root metadata of its image repository or its director (once each;
    later roots are rotations)."""

    kind: Kind
    root: MetadataText


class RotateRoot(Message, tag="software.rotate_root"):
    """A manufacturer anchors the next root of one of its repositories, signed by the thresholds of the
    root before it and of itself."""

    kind: Kind
    root: MetadataText


class AnchorRelease(Message, tag="software.anchor_release"):
    """A manufacturer anchors a new version of its image repository's targets metadata: the images
    (paths, lengths, hashes, hardware ids, release counters, bundles) every vehicle may then install."""

    targets: MetadataText
    notes: Notes = ""


class EcuSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ecu: Ident
    hardware_id: Ident
    image: Hex32 | None = None  # the factory image (sha256 of an anchored image), if any


class FitEcus(Message, tag="software.fit_ecus"):
    """The vehicle's maker fits (or replaces) ECUs: their ids, hardware ids and factory images."""

    vin: Vin
    ecus: Annotated[list[EcuSpec], msgspec.Meta(min_length=1, max_length=MAX_ECUS)]


class Installed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ecu: Ident
    path: TargetPath
    image: Hex32  # sha256


class ReportManifest(Message, tag="software.report_manifest"):
    """The vehicle's primary ECU (a current device key of the vehicle) reports the images its ECUs run
    after an install: its version manifest, dated by the vehicle's clock."""

    vin: Vin
    t: Uint
    installed: Annotated[list[Installed], msgspec.Meta(min_length=1, max_length=MAX_ECUS)]


class RepositoryAnchored(Event, tag="software.repository_anchored"):
    maker: str
    kind: str
    version: Uint


class ReleaseAnchored(Event, tag="software.release_anchored"):
    maker: str
    version: Uint
    images: Uint


class EcusFitted(Event, tag="software.ecus_fitted"):
    vin: str
    ecus: Uint


class SoftwareInstalled(Event, tag="software.installed"):
    vin: str
    ecus: list[str]
