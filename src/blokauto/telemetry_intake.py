"""Telemetry's intake and sample reads, as the node's API and the SDK both see them: the refusals
(stable codes, a sentence a person acts on) and ``checked_samples``, the intake's check of samples
against the ``telemetry.commit_batch`` they travel with (the module's own functions: decode typed,
``check_batch``: a batch, its root, its summary).

    RequestError (400)        not_a_batch, samples_invalid, batch_root_mismatch, summary_mismatch
    AuthError (403)           not_batch_signer, not_vehicle_holder
    NotFound (404)            samples_not_held, unknown_sample
    Unavailable (503)         sample_store_unavailable, samples_damaged (node.sample_store; not retryable)

Here rather than in ``api/`` so that a client rebuilds each refusal as its own class
(``except SummaryMismatch:`` works across the network, as for every other code).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import msgspec

from .core.errors import AuthError, BlokautoError, NotFound, RequestError, Unavailable
from .modules.telemetry import BatchMismatch, Sample, SampleError, check_batch, decode_samples
from .modules.telemetry.messages import CommitBatch

#: Bytes of samples one intake takes: 10,000 samples of at most 69 bytes each, with room for spaces.
MAX_SAMPLE_BYTES = 2**20
FIELDS = Sample.__struct_fields__
_AT = re.compile(r" - at `\$\[(\d+)\](?:\[(\d+)\])?`")


# ---------------------------------------------------------------- refusals

class NotABatch(RequestError):
    code = "not_a_batch"
    template = ("POST /v1/telemetry/batches takes a telemetry.commit_batch transaction with its samples, not "
                "{type}; submit other transactions to POST /v1/txs.")


class BatchWithoutSamples(RequestError):
    code = "batch_without_samples"
    template = ("A telemetry.commit_batch transaction travels with its samples: send both to POST "
                "/v1/telemetry/batches (a JSON object with the fields tx and samples; the SDK's "
                "telemetry.send_batch, `blokauto telemetry send`), so the node checks the root and summary "
                "against them and keeps them.")


class _Msg(msgspec.Struct, frozen=True):
    type: str = ""


class _Body(msgspec.Struct, frozen=True):
    msg: _Msg = _Msg()


class _Tx(msgspec.Struct):
    body: _Body = _Body()


_decode_tx_type = msgspec.json.Decoder(_Tx).decode


def is_batch_without_samples(raw: bytes) -> bool:
    """Whether ``raw`` (a transaction submitted on its own) is a ``telemetry.commit_batch``, which only
    the samples route takes."""
    try:
        return _decode_tx_type(raw).body.msg.type == "telemetry.commit_batch"
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return False  # the submission refuses it as malformed


class SamplesInvalid(RequestError):
    code = "samples_invalid"
    template = ("The samples cannot form a batch ({where}: {reason}). Each sample is [t, speed, accel, lat, lon, "
                "odometer_m, limit, events] in integers, 1 to 10,000 of them, times strictly increasing and the "
                "odometer never going back (docs/telemetry.md#samples).")
    optional = ("index",)  # the sample at fault (-1: the batch as a whole)


class BatchRootMismatch(RequestError):
    code = "batch_root_mismatch"
    template = ("The samples hash to the Merkle root {recomputed}, and the transaction commits to {committed}: they "
                "are not the samples it was signed for. Compute the root from the samples you send "
                "(blokauto.client.telemetry.make_batch does) and sign again.")


class SummaryMismatch(RequestError):
    code = "summary_mismatch"
    template = ("The transaction's trip summary says {field} = {committed}, and its samples give {recomputed}. "
                "Compute the summary from the samples you send with the same utc_offset_min "
                "(blokauto.modules.telemetry.summarize; blokauto.client.telemetry.make_batch does) and sign again.")


class NotBatchSigner(AuthError):
    code = "not_batch_signer"
    template = ("{caller} did not sign this batch's transaction: a batch is sent by a key that signed it (the "
                "vehicle's device key); other keys relay transactions through POST /v1/txs.")


class NotVehicleHolder(AuthError):
    code = "not_vehicle_holder"
    template = ("Only the holder of {vin} erases its samples, and {caller} does not hold it: sign with the holder's "
                "key (for a title held by org:<id>, any key of that organisation). Regulators, police and "
                "organisations the holder consented to read samples; they do not erase them.")


class SamplesNotHeld(NotFound):
    code = "samples_not_held"
    template = ("This node does not hold the samples of batch {seq} of {vin} (root {root}): another node of the "
                "consortium received them, or the vehicle's holder erased them. The ledger keeps the batch's root "
                "and summary (GET /v1/telemetry/{vin}/batches/{seq}).")


class UnknownSample(NotFound):
    code = "unknown_sample"
    template = "Batch {seq} of {vin} holds {count} samples, numbered from 0; it has no sample {index}."


class SampleStoreUnavailable(Unavailable):
    """``samples.db`` cannot be used at all (it does not open, or SQLite finds it malformed)."""

    code = "sample_store_unavailable"
    retryable = False
    template = ("This node cannot use its sample store, samples.db ({reason}): it refuses telemetry batches and "
                "serves no samples until its operator repairs it. The ledger is not affected. Operator: stop the "
                "node, move samples.db aside (keep it: SQLite's .recover may save part of it) or put back a copy "
                "you backed up (node backup does not include it), and start the node "
                "(docs/telemetry.md#the-sample-store).")


class SamplesDamaged(Unavailable):
    """One batch's stored samples fail their check: they are not the samples its root commits to."""

    code = "samples_damaged"
    retryable = False
    template = ("This node's copy of the samples of {vin}'s batch with root {root} is damaged ({reason}), so it "
                "will not serve them; the batch's root and summary on the ledger are intact. Operator: put back a "
                "copy of samples.db you backed up (docs/telemetry.md#the-sample-store).")


# ---------------------------------------------------------------- the check

class IntakeBody(msgspec.Struct, forbid_unknown_fields=True):
    """The body of POST /v1/telemetry/batches: the transaction and the samples, each kept as sent."""

    tx: msgspec.Raw
    samples: msgspec.Raw


decode_intake = msgspec.json.Decoder(IntakeBody).decode


def _invalid(exc: msgspec.ValidationError) -> SamplesInvalid:
    """msgspec's refusal (``Expected `int` <= 500 - at `$[3][1]```) as the sample and field at fault."""
    text = str(exc)
    m = _AT.search(text)
    if m is None:
        return SamplesInvalid(where="the batch", reason=f"{text}; samples are a JSON array of samples", index=-1)
    index = int(m.group(1))
    reason = text[:m.start()]
    if m.group(2) is not None and int(m.group(2)) < len(FIELDS):
        reason = f"{FIELDS[int(m.group(2))]}: {reason}"
    return SamplesInvalid(where=f"sample {index}", reason=reason, index=index)


def checked_samples(raw: bytes, msg: CommitBatch) -> list[Sample]:
    """The samples of ``raw``, refused unless they are the batch ``msg`` commits to (CPU work: run it in a thread)."""
    try:
        samples = decode_samples(raw)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise SamplesInvalid(where="the batch", reason=f"not JSON samples ({exc})", index=-1) from None
    try:
        check_batch(samples, msg.utc_offset_min, msg.root, msg.summary)
    except SampleError as exc:
        raise SamplesInvalid(where=f"sample {exc.index}" if exc.index >= 0 else "the batch", reason=exc.reason,
                             index=exc.index) from None
    except BatchMismatch as exc:
        if exc.field == "root":
            raise BatchRootMismatch(committed=exc.committed, recomputed=exc.recomputed) from None
        raise SummaryMismatch(field=exc.field, committed=exc.committed, recomputed=exc.recomputed) from None
    return samples


# ---------------------------------------------------------------- the intake's CPU work, in worker processes


class PreparedBatch(msgspec.Struct, frozen=True, array_like=True):
    """Checked samples as the sample store keeps them: the canonical JSON array, zlib level 1."""

    blob: bytes
    count: int
    start: int
    end: int


_encode_samples = msgspec.json.Encoder().encode
ZLIB_LEVEL = 1  # about 4x smaller for 0.3 ms per 1,000 samples (docs/telemetry.md#the-sample-store)


def prepare_batch(raw: bytes, msg: CommitBatch) -> tuple[str, Any, Any]:
    """``checked_samples`` then compression, for a worker process: ("ok", PreparedBatch, None), or
    ("refused", code, detail) for the node to raise the same error (``BlokautoError.recorded``)."""
    try:
        samples = checked_samples(raw, msg)
    except BlokautoError as err:
        return "refused", err.code, err.detail
    return "ok", PreparedBatch(zlib.compress(_encode_samples(samples), ZLIB_LEVEL), len(samples), samples[0].t,
                               samples[-1].t), None
