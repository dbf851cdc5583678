"""Telemetry refusals. Each leaves the vehicle's batches and crashes as they were.

    DomainError
    ├── batches   InvalidSummary, BatchOverlaps, BatchFromFuture, UnknownBatch
    └── crashes   NotACrash, CrashFromFuture, CrashTooOld, CrashAlreadyReported

A batch or crash signed by a key that is not a current device key of the vehicle is refused by the
vehicles rules (``not_vehicle_device``, ``device_key_revoked``). At a node's intake (the samples
route), samples that do not match the transaction are refused before it is ordered:
``samples_invalid``, ``batch_root_mismatch``, ``summary_mismatch`` (``blokauto.telemetry_intake``).
"""

from ...core.errors import DomainError, NotFound


class InvalidSummary(DomainError):
    code = "invalid_summary"
    template = ("The trip summary cannot come from any samples: {reason}. Compute it with "
                "blokauto.modules.telemetry.summarize (the SDK's telemetry.make_batch does).")


class BatchOverlaps(DomainError):
    code = "batch_overlaps"
    template = ("The batch of {vin} starts at t={start}, not after the end of its batch {seq} (t={last_end}): "
                "batches are committed in time order and never overlap.")


class BatchFromFuture(DomainError):
    code = "batch_from_future"
    template = ("The batch ends at t={end}, more than {skew_ms} ms after the block time {time}; check the "
                "vehicle's clock.")


class UnknownBatch(NotFound):
    code = "unknown_telemetry_batch"
    template = "{vin} has no batch {seq}."


class NotACrash(DomainError):
    code = "not_a_crash"
    template = ("A crash report needs the airbag or impact flag, or a peak deceleration of at least {threshold} "
                "mm/s²; this one has {decel} mm/s² and neither flag.")


class CrashFromFuture(DomainError):
    code = "crash_from_future"
    template = "The crash is dated t={t}, more than {skew_ms} ms after the block time {time}; check the vehicle's clock."


class CrashTooOld(DomainError):
    code = "crash_too_old"
    template = ("The crash at t={t} is more than {max_age_ms} ms before the block time {time}; report it through "
                "the insurer (insurance.file_claim) instead.")


class CrashAlreadyReported(DomainError):
    code = "crash_already_reported"
    template = "{vin} already reported the crash at t={t} (crash {seq}); a crash is reported once."
