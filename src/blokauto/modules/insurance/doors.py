"""The insurance module's doors: the ``CrashClaims`` telemetry calls when a vehicle reports a crash
(opening the claim in the same transaction), and what the outer layers may ask of insurance."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.state import StateReader
from .handlers import CrashClaimsOpener
from .state import CLAIMS, CRASH_CLAIMS, Claim


@runtime_checkable
class InsuranceDoor(Protocol):
    """The insurance module's door."""

    def claim_of_crash(self, state: StateReader, vin: str, crash: int) -> Claim | None:
        """The claim a crash of ``vin`` opened or was filed on (None if none)."""
        ...


class InsuranceRecords:
    """The implementation of ``InsuranceDoor``."""

    def claim_of_crash(self, state: StateReader, vin: str, crash: int) -> Claim | None:
        cid = CRASH_CLAIMS.get(state, vin, crash) if vin.isalnum() and crash > 0 else None
        return CLAIMS.get(state, cid) if cid is not None else None


__all__ = ["CrashClaimsOpener", "InsuranceDoor", "InsuranceRecords"]
