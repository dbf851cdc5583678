"""The insurance module's doors: the ``CrashClaims`` telemetry calls when a vehicle reports a crash
(opening the claim in the same transaction), and what the outer layers may ask of insurance."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from ...core.state import StateReader
from .handlers import CrashClaimsOpener
from .queries import CLAIM_PARTIES, POLICY_PARTIES  # who reads a policy (and its statements), a claim: the state route too
from .state import CLAIMS, CRASH_CLAIMS, VEHICLE_CLAIMS, Claim


class ClaimEvidence(msgspec.Struct, frozen=True):
    """The state keys that prove a holding's claims in the vehicle's report: the list of their ids,
    and each claim's record, in that order."""

    list_key: bytes
    claim_keys: list[bytes]


@runtime_checkable
class InsuranceDoor(Protocol):
    """The insurance module's door."""

    def claim_of_crash(self, state: StateReader, vin: str, crash: int) -> Claim | None:
        """The claim a crash of ``vin`` opened or was filed on (None if none)."""
        ...

    def claim_evidence(self, state: StateReader, vin: str, since: int) -> ClaimEvidence:
        """What proves every claim of the holding of ``vin`` that began at ``since`` (block time): for a
        report its holder lets show them (a former holding's claims are its holder's, not the buyer's)."""
        ...


class InsuranceRecords:
    """The implementation of ``InsuranceDoor``."""

    def claim_of_crash(self, state: StateReader, vin: str, crash: int) -> Claim | None:
        cid = CRASH_CLAIMS.get(state, vin, crash) if vin.isalnum() and crash > 0 else None
        return CLAIMS.get(state, cid) if cid is not None else None

    def claim_evidence(self, state: StateReader, vin: str, since: int) -> ClaimEvidence:
        ids = (VEHICLE_CLAIMS.get(state, vin, since) or []) if vin.isalnum() else []
        return ClaimEvidence(VEHICLE_CLAIMS.key(vin, since), [CLAIMS.key(i) for i in ids])


__all__ = ["CLAIM_PARTIES", "POLICY_PARTIES", "ClaimEvidence", "CrashClaimsOpener", "InsuranceDoor", "InsuranceRecords"]
