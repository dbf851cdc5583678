"""Telemetry from Python: the vehicle sends its batches, the holder reads and erases them, an insurer
checks what it was given. Every answer is checked before it is returned: batch records against
the trust anchor (state proofs), samples against the root they were committed with.

    from blokauto.client.telemetry import Telemetry, make_batch

    tel = Telemetry(client)                                   # a Client pinned to the trust anchor
    info = tel.send_batch(VIN, samples, device_key, utc_offset_min=60)   # root and summary computed here
    got = tel.samples(VIN, 1, key=holder)                     # the record proven, the samples checked
    one = tel.sample(VIN, 1, 42, key=insurer)                 # one sample, its inclusion proof verified
    tel.check_batch(VIN, 1, disclosed, key=insurer)           # BatchMismatch names the first difference
    tel.erase_samples(VIN, key=holder)                        # the node's copy; the ledger keeps the roots

Device keys live in the vehicles module (``add_device_key``, ``rotate_device_key``,
``revoke_device_key``, ``devices``): a key rotated out or revoked signs nothing for the vehicle
from that block on. Refusals are the node's own classes (``SummaryMismatch``, ``SamplesNotHeld``,
``ConsentRequired``...: ``blokauto.telemetry_intake``), a proof that does not hold is a
``VerificationError``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

import msgspec

from ..core.block import Checkpoint
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.merkle import ProofError, leaf_hash, verify_inclusion
from ..core.state import StateMap
from ..modules.telemetry import (BatchMismatch, Sample, SampleError, TripSummary, batch_root, check_batch,
                                 check_samples, summarize)
from ..modules.telemetry import keys as telemetry_keys
from ..modules.telemetry.messages import CommitBatch, ReportCrash
from ..modules.vehicles.messages import AddDeviceKey, RevokeDeviceKey, RotateDeviceKey
from ..telemetry_intake import (BatchRootMismatch, NotABatch, NotBatchSigner, NotVehicleHolder, SampleStoreUnavailable,
                                SamplesDamaged, SamplesInvalid, SamplesNotHeld, SummaryMismatch, UnknownSample)
from ..verify import VerificationError, verify_state_evidence
from ._client import DEFAULT_TTL_MS, Client, _height
from ._results import TxInfo

__all__ = ["BatchMismatch", "BatchRecord", "BatchRootMismatch", "BatchSamples", "NotABatch", "NotBatchSigner",
           "NotVehicleHolder", "ProvenSample", "SampleError", "SampleStoreUnavailable", "SamplesDamaged",
           "SamplesInvalid", "SamplesNotHeld",
           "SummaryMismatch", "Telemetry", "UnknownSample", "as_samples", "make_batch", "verify_sample_inclusion"]

_BATCHES = StateMap(telemetry_keys.BATCH, dict)  # the module's prefix; the key's shape is the core's
_JSON = {"content-type": "application/json"}


def as_samples(samples: Iterable[Any]) -> list[Sample]:
    """Samples typed: ``Sample`` objects as they are, lists ``[t, speed, accel, lat, lon, odometer_m,
    limit, events]`` converted (``msgspec.ValidationError`` names the one that is not a sample)."""
    given = list(samples)
    if all(isinstance(s, Sample) for s in given):
        return given
    return msgspec.convert([list(s) if isinstance(s, tuple) else s for s in given], list[Sample])


def make_batch(vin: str, samples: Iterable[Any], utc_offset_min: int = 0) -> CommitBatch:
    """The ``telemetry.commit_batch`` message for ``samples`` (checked to form a batch, else
    ``SampleError``): their Merkle root and trip summary, computed by the module's own functions,
    which the node recomputes at intake."""
    typed = as_samples(samples)
    check_samples(typed)
    return CommitBatch(vin=vin, root=batch_root(typed).hex(), summary=summarize(typed, utc_offset_min),
                       utc_offset_min=utc_offset_min)


def verify_sample_inclusion(sample: Sample, index: int, count: int, proof: list[str], root: str) -> None:
    """Raise ``core.merkle.ProofError`` unless ``sample`` is sample ``index`` of the ``count``-sample
    batch whose root is ``root`` (hex): its leaf is RFC 9162's hash of its canonical bytes, as
    ``telemetry.batch_root`` hashes it. (The module's ``verify_sample`` hands the leaf's bytes where
    ``core.merkle.verify_inclusion`` takes its hash, so it refuses every proof; this is the check it means.)"""
    if not 0 <= index < count:
        raise ProofError(f"sample {index} is outside a batch of {count}")
    verify_inclusion(index, count, leaf_hash(canonical(sample)), [bytes.fromhex(h) for h in proof], bytes.fromhex(root))


@dataclass(frozen=True)
class BatchRecord:
    """A committed batch as the ledger holds it, proven against a checkpoint of the trust anchor."""

    vin: str
    seq: int
    root: str
    summary: TripSummary
    utc_offset_min: int
    device: str  # the device key that signed it
    height: int  # the block that committed it
    value: dict[str, Any]  # the whole record (running totals too)
    checkpoint: Checkpoint


@dataclass(frozen=True)
class BatchSamples:
    """A batch's samples as a node holds them, checked against the proven record (root and summary)."""

    record: BatchRecord
    samples: list[Sample]
    tx: str  # the transaction they came with
    received: int  # when the node received them (its clock, ms)


@dataclass(frozen=True)
class ProvenSample:
    """One sample with its inclusion proof, verified against the proven record's root."""

    record: BatchRecord
    index: int
    count: int
    sample: Sample
    proof: list[str]


class Telemetry:
    """Telemetry through one node: ``client`` (its trust anchor checks every proof). Reads are signed
    with ``key=`` or the client's own key."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # ---------------------------------------------------------------- the vehicle

    def send_batch(self, vin: str, samples: Iterable[Any], device_key: KeyPair, *, utc_offset_min: int = 0,
                   wait: float = 30.0, ttl_ms: int = DEFAULT_TTL_MS) -> TxInfo | str:
        """Commit a batch: the device key signs ``telemetry.commit_batch`` (root and summary from
        ``make_batch``) and sends it with the samples to ``POST /v1/telemetry/batches``, which
        checks both, stores the samples and submits the transaction. Returns the receipt (proofs
        checked), or the transaction id with ``wait=0``."""
        typed = as_samples(samples)
        msg = make_batch(vin, typed, utc_offset_min)
        c = self.client
        tx = c.sign(c.build(msg, device_key, ttl_ms=ttl_ms), device_key)
        body = b'{"tx":' + canonical(tx) + b',"samples":' + msgspec.json.encode(typed) + b"}"
        txid = c._request("POST", "/v1/telemetry/batches", key=device_key, content=body, headers=_JSON)["id"]
        if wait <= 0:
            return str(txid)
        return c.receipt(txid, wait=wait, key=device_key)

    def report_crash(self, vin: str, device_key: KeyPair, *, decel_mms2: int, odometer_m: int, t: int | None = None,
                     airbag: bool = False, impact: bool = False, wait: float = 30.0) -> TxInfo:
        """The device key reports a crash (``t``: when, ms; now by default); it enters the vehicle's
        history and opens a claim on its active policy."""
        when = time.time_ns() // 1_000_000 if t is None else t
        return self.client.send(ReportCrash(vin=vin, t=when, decel_mms2=decel_mms2, odometer_m=odometer_m,
                                            airbag=airbag, impact=impact), device_key, wait=wait)

    # ---------------------------------------------------------------- reading

    def batches(self, vin: str, *, limit: int = 100, offset: int = 0, min_height: int = -1,
                key: KeyPair | None = None) -> dict[str, Any]:
        """The vehicle's committed batches, oldest first (the module's ``batches`` query: what the node found)."""
        return self._as(key).query("telemetry", "batches", vin=vin, limit=limit, offset=offset, min_height=min_height)

    def batch(self, vin: str, seq: int, *, min_height: int = -1, key: KeyPair | None = None) -> BatchRecord:
        """Batch ``seq`` of ``vin`` as committed (root, summary, device), proven against a checkpoint."""
        doc = self._as(key)._request("GET", f"/v1/telemetry/{vin}/batches/{seq}",
                                     params={"min_height": min_height})
        return self._proven(doc["batch"], vin, seq)

    def samples(self, vin: str, seq: int, *, min_height: int = -1, key: KeyPair | None = None) -> BatchSamples:
        """The samples of batch ``seq`` the node holds, with the batch's record proven and the samples
        checked against its root and summary (``VerificationError`` if they are not that batch)."""
        doc = self._as(key)._request("GET", f"/v1/telemetry/{vin}/batches/{seq}/samples",
                                     params={"min_height": min_height})
        record = self._proven(doc["batch"], vin, seq)
        samples = as_samples(doc["samples"])
        try:
            check_batch(samples, record.utc_offset_min, record.root, record.summary)
        except (BatchMismatch, SampleError) as exc:
            raise VerificationError(f"the samples the node served are not batch {seq} of {vin}: {exc}") from None
        return BatchSamples(record, samples, str(doc.get("tx", "")), int(doc.get("received", 0)))

    def sample(self, vin: str, seq: int, index: int, *, min_height: int = -1,
               key: KeyPair | None = None) -> ProvenSample:
        """Sample ``index`` of batch ``seq``, its inclusion proof verified here against the proven
        record's root and sample count (``VerificationError`` if it does not hold)."""
        doc = self._as(key)._request("GET", f"/v1/telemetry/{vin}/batches/{seq}/samples/{index}",
                                     params={"min_height": min_height})
        record = self._proven(doc["batch"], vin, seq)
        sample = as_samples([doc["sample"]])[0]
        proof = list(doc["proof"])
        if doc.get("index") != index:
            raise VerificationError(f"the node answered about sample {doc.get('index')!r}, not {index}")
        try:
            verify_sample_inclusion(sample, index, record.summary.samples, proof, record.root)
        except (ProofError, ValueError) as exc:
            raise VerificationError(f"sample {index} of batch {seq} of {vin} is not proven to be in the committed "
                                    f"batch (root {record.root}): {exc}") from None
        return ProvenSample(record, index, record.summary.samples, sample, proof)

    def check_batch(self, vin: str, seq: int, samples: Iterable[Any], *, key: KeyPair | None = None) -> BatchRecord:
        """An insurer's recomputation: raise ``BatchMismatch`` (naming the first field that differs)
        unless ``samples`` (as the holder disclosed them) are batch ``seq`` as committed, read with
        its proof; ``SampleError`` if they cannot form a batch. Returns the proven record."""
        record = self.batch(vin, seq, key=key)
        check_batch(as_samples(samples), record.utc_offset_min, record.root, record.summary)
        return record

    # ---------------------------------------------------------------- the holder

    def erase_samples(self, vin: str, before: int | None = None, *, key: KeyPair | None = None) -> int:
        """The holder erases this node's copy of the vehicle's samples (those ending before
        ``before``, ms, if given); the ledger keeps the roots and summaries. Returns how many batches."""
        params = {"before": before} if before is not None else None
        return int(self._as(key)._request("DELETE", f"/v1/telemetry/{vin}/samples", params=params)["erased"])

    # ---------------------------------------------------------------- device keys (the vehicles module)

    def devices(self, vin: str, *, min_height: int = -1, key: KeyPair | None = None) -> dict[str, Any]:
        """The vehicle's current device keys and the retired ones, with the block each was retired at."""
        return self._as(key).query("vehicles", "devices", vin=vin, min_height=min_height)

    def add_device_key(self, vin: str, new: KeyPair, by: KeyPair, *, wait: float = 30.0) -> TxInfo:
        """The holder or the maker (``by``) fits a new device key; the new key co-signs (it proves possession)."""
        return self.client.send(AddDeviceKey(vin=vin, key=new.did), by, new, wait=wait)

    def rotate_device_key(self, vin: str, old: KeyPair, new: KeyPair, by: KeyPair, *, wait: float = 30.0) -> TxInfo:
        """Replace ``old`` by ``new``: the holder or the maker (``by``) sends, both device keys co-sign."""
        return self.client.send(RotateDeviceKey(vin=vin, old=old.did, new=new.did), by, old, new, wait=wait)

    def revoke_device_key(self, vin: str, device: KeyPair | str, reason: str, by: KeyPair, *,
                          wait: float = 30.0) -> TxInfo:
        """The holder or the maker takes a device key out of service (``reason``: lost, compromised,
        ecu_replaced); from that block on nothing it signs counts for the vehicle."""
        did = device if isinstance(device, str) else device.did
        return self.client.send(RevokeDeviceKey(vin=vin, key=did, reason=reason), by, wait=wait)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- plumbing

    def _as(self, key: KeyPair | None) -> Client:
        return self.client if key is None or key is self.client.key else self.client.as_key(key)

    def _proven(self, evidence: dict[str, Any], vin: str, seq: int) -> BatchRecord:
        """The batch record in ``evidence`` (a state value with its proof), checked against the trust anchor."""
        key = _BATCHES.key(vin, seq).decode()
        if evidence.get("key") != key:
            raise VerificationError(f"the node answered about {evidence.get('key')!r}, not {key!r}")
        c = self.client
        if c.verify:
            cp = c._verified(_height(evidence), lambda a: verify_state_evidence(evidence, a))
        else:
            cp = msgspec.convert(evidence["checkpoint"], Checkpoint)
        raw = evidence.get("raw")
        if raw is None:
            raise VerificationError(f"the node's proof shows no batch {seq} of {vin}")
        value = msgspec.json.decode(raw)
        try:
            summary = msgspec.convert(value["summary"], TripSummary)
            record = BatchRecord(vin, seq, str(value["root"]), summary, int(value["utc_offset_min"]),
                                 str(value["device"]), int(value["height"]), value, cp)
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            raise VerificationError(f"the proven value at {key} is not a batch record ({exc})") from None
        if value.get("vin") != vin or value.get("seq") != seq:
            raise VerificationError(f"the proven record is of batch {value.get('seq')} of {value.get('vin')}")
        return record
