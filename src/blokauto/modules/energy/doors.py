"""The energy module's door: what the outer layers may ask of energy (who reads a meter's or an
order's state keys: the API's state route judges them with the queries' own policies)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.state import StateReader
from .queries import METER_PARTIES, ORDER_PARTIES  # noqa: F401  (who reads a meter's data, an order: the state route too)
from .state import BOOKS, METERS, POSITIONS, Meter, Terms  # noqa: F401  (Terms: what a grid operator sets)


def book_key(zone: str, start: int) -> str:
    """The state key of an interval's book (to read it with its proof)."""
    return BOOKS.key(zone, start).decode()


def position_key(zone: str, start: int, meter: str) -> str:
    """The state key of a meter's settled position in an interval."""
    return POSITIONS.key(zone, start, meter).decode()


@runtime_checkable
class EnergyDoor(Protocol):
    """The energy module's door."""

    def meter(self, state: StateReader, meter: str) -> Meter | None:
        """A registered meter (None if there is none by that id)."""
        ...


class EnergyRecords:
    """The implementation of ``EnergyDoor`` wired in the module's definition."""

    def meter(self, state: StateReader, meter: str) -> Meter | None:
        if not meter or "/" in meter or len(meter) > 200:
            return None
        return METERS.get(state, meter)


__all__ = ["METER_PARTIES", "ORDER_PARTIES", "EnergyDoor", "EnergyRecords", "Terms", "book_key", "position_key"]
