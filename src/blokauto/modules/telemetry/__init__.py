"""Telemetry: the vehicle's own driving data, committed without being published.

Decisions (each handler's docstring lists its rules):

- **Samples stay off the ledger.** A device key signs a transaction with a batch's Merkle root (RFC
  9162 over the samples' canonical bytes) and its trip summary (``samples.summarize``, one
  deterministic integer function); the samples travel beside it to the node
  (``POST /v1/telemetry/batches``), which recomputes both before ordering the transaction and keeps
  the samples, compressed, in its sample store (``node.sample_store``) for the holder (who may read,
  export and erase them) and the organisations the holder consented to for ``location``. Anyone
  holding a sample and its inclusion proof shows it belongs to a committed batch
  (``samples.verify_sample``); an insurer given the samples recomputes the summary and proves a
  mismatch (``samples.check_batch``).
- **Order.** A vehicle's batches follow each other in time: a batch starts after the last sample of
  the one before (``batch_overlaps``) and ends no later than the block time plus
  ``telemetry_future_skew_ms``.
- **Device keys** are the vehicles module's (added, rotated with old key + new key + holder or maker,
  revoked by holder or maker): a key rotated out or revoked is refused from that block on
  (``device_key_revoked``), for batches, crashes, readings and payments alike.
- **Crashes.** A device reports a crash (airbag, impact, or deceleration over ``crash_decel_mms2``),
  once per vehicle and time; it enters the vehicle's history and opens a claim on the vehicle's
  active policy in the same transaction (``CrashClaims``, provided by insurance).
- **Reads.** Batches, totals and crashes are the vehicle's ``driving`` data (``core.access``).
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import TelemetryDoor, TelemetryRecords
from .samples import (BatchMismatch, Sample, SampleError, TripSummary, batch_root, check_batch, check_samples,
                      decode_samples, sample_proof, summarize, verify_sample)
from .spec import module
from .state import Totals

module.provide(TelemetryDoor, TelemetryRecords())

__all__ = ["BatchMismatch", "Sample", "SampleError", "TelemetryDoor", "Totals", "TripSummary", "batch_root",
           "check_batch", "check_samples", "decode_samples", "module", "sample_proof", "summarize", "verify_sample"]
