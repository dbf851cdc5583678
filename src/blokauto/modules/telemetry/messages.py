"""Telemetry messages and events: a batch's root and summary, and a crash, each signed by one of
the vehicle's device keys."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...core.encoding import Hex32, Uint
from ...core.module import Event
from ...core.tx import Message
from .samples import TripSummary, UtcOffset

Vin = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="17-character ISO 3779 VIN")]


class CommitBatch(Message, tag="telemetry.commit_batch"):
    """A device key of the vehicle commits a batch of samples: their Merkle root and trip summary
    (``samples.summarize``). The samples go to the node beside the transaction
    (``POST /v1/telemetry/batches``), which checks both before ordering it and keeps them off the ledger."""

    vin: Vin
    root: Hex32
    summary: TripSummary
    utc_offset_min: UtcOffset = 0


class ReportCrash(Message, tag="telemetry.report_crash"):
    """A device key of the vehicle reports a crash (airbag deployment, an impact, or a deceleration over
    ``crash_decel_mms2``); it opens a claim on the vehicle's active policy in the same transaction."""

    vin: Vin
    t: Uint
    decel_mms2: Annotated[int, msgspec.Meta(ge=0, le=2_000_000, description="peak deceleration, mm/s²")]
    odometer_m: Annotated[int, msgspec.Meta(ge=0, le=100_000_000_000)]
    airbag: bool = False
    impact: bool = False


class BatchCommitted(Event, tag="telemetry.batch_committed"):
    vin: str
    seq: Uint
    start: Uint
    end: Uint


class CrashReported(Event, tag="telemetry.crash_reported"):
    vin: str
    seq: Uint
    t: Uint
