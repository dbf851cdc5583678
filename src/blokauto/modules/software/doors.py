"""The software module's doors: ``SoftwareRemedies``, which it needs (recalls provides it: a
vehicle's install manifest remedies the software recalls it fixes), and the state keys a vehicle's
updater reads with proofs (a maker's repositories, a vehicle's inventory)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from ...core.module import Context
from ...core.state import Overlay, StateReader
from .state import IMAGES, RELEASES, REPOSITORIES, VEHICLES, Ecu


class InstalledImage(msgspec.Struct, frozen=True):
    """An image a vehicle's manifest reports newly installed on one of its ECUs."""

    ecu: str
    hardware_id: str
    release_counter: int
    image: str  # sha256
    path: str


@runtime_checkable
class SoftwareRemedies(Protocol):
    """Whoever closes recalls on a vehicle's own install manifest (recalls), in the same transaction."""

    def software_installed(self, state: Overlay, ctx: Context, vin: str, installed: list[InstalledImage]) -> None: ...


def repository_key(maker: str, kind: str) -> str:
    """The state key of a maker's image repository or director (``Client.state`` proves it)."""
    return REPOSITORIES.key(maker, kind).decode()


def image_key(maker: str, sha256: str) -> str:
    return IMAGES.key(maker, sha256).decode()


def release_key(maker: str, version: int) -> str:
    """The state key of an anchored release (its targets file included)."""
    return RELEASES.key(maker, version).decode()


def inventory_key(vin: str) -> str:
    """The state key of a vehicle's software inventory."""
    return VEHICLES.key(vin).decode()


@runtime_checkable
class SoftwareDoor(Protocol):
    """The software module's door: a vehicle's inventory, for the history report."""

    def inventory(self, state: StateReader, vin: str) -> list[Ecu]:
        """Each ECU of ``vin`` and the image it runs (empty if none is fitted on the ledger)."""
        ...

    def inventory_key(self, vin: str) -> bytes:
        """The state key that proves ``vin``'s inventory."""
        ...


class SoftwareRecords:
    """The implementation of ``SoftwareDoor`` wired in the module's definition."""

    def inventory(self, state: StateReader, vin: str) -> list[Ecu]:
        sw = VEHICLES.get(state, vin) if vin.isalnum() else None
        return [] if sw is None else list(sw.ecus)

    def inventory_key(self, vin: str) -> bytes:
        return VEHICLES.key(vin)
