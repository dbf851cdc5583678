"""Telemetry routes: a vehicle's batches of samples enter beside their transaction and stay off the ledger.

    POST   /v1/telemetry/batches                           {"tx": <telemetry.commit_batch>, "samples": [...]}
                                                           -> 202 {"id", "status", "samples"} (?wait=S: the receipt)
    GET    /v1/telemetry/{vin}/batches/{seq}               the committed record, with its state proof
    GET    /v1/telemetry/{vin}/batches/{seq}/samples       the record and the samples this node holds
    GET    /v1/telemetry/{vin}/batches/{seq}/samples/{i}   one sample, its inclusion proof, the record
    DELETE /v1/telemetry/{vin}/samples[?before=MS]         the holder erases the stored samples -> {"erased": n}

Intake, in order: the request's signer signed the transaction; the transaction is a
``telemetry.commit_batch``; the samples decode (typed), form a batch, hash to the committed root and
give the committed summary (``telemetry.check_batch``, the module's own function: CPU work off the
event loop); the samples are stored durably (``node.sample_store``); then the transaction is
submitted as ``POST /v1/txs`` submits it. A transaction refused there or failing at execution takes
its samples with it (unless another submission of the same batch still claims them), so the node keeps
no positions the ledger did not accept.

Who reads: the batch record is the vehicle's ``driving`` data (as the module's ``batch`` query);
samples hold positions, so they are its ``location`` data (``VehicleData("vin", "location")``: the
holder, its devices, maker and lenders, organisations the holder consented to for ``location``,
regulators and police). Only the holder erases (``HolderOf("vin")``, judged without the reading
rights of regulators, police and nodes: an erasure is the data subject's act).

Refusals (``blokauto.telemetry_intake``, so that the SDK raises the same classes): not_a_batch,
samples_invalid, batch_root_mismatch, summary_mismatch (400), not_batch_signer, not_vehicle_holder (403),
samples_not_held, unknown_sample (404; and the module's unknown_telemetry_batch),
sample_store_unavailable, samples_damaged (503, not retryable: the store's, see node.sample_store).
Damage in samples.db never makes the node unhealthy: the ledger does not depend on it.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from ..core.access import SIGNED, Caller, HolderOf, NotYourData, ReadRefused, UnknownCaller, VehicleData
from ..core.errors import BlokautoError, RequestError, TxTooLarge, Unavailable
from ..core.state import StateMap
from ..core.tx import tx_id
from ..modules.telemetry import sample_proof
from ..modules.telemetry import keys as telemetry_keys
from ..modules.telemetry.errors import UnknownBatch
from ..modules.telemetry.messages import CommitBatch
from ..modules.vehicles import keys as vehicle_keys
from ..modules.vehicles.doors import VehicleDoor
from ..node.intake_pool import prepared
from ..node.sample_store import SampleStore
from ..telemetry_intake import (MAX_SAMPLE_BYTES, NotABatch, NotBatchSigner, NotVehicleHolder,
                                SamplesInvalid, SamplesNotHeld, UnknownSample, decode_intake)
from .errors import UnsupportedMediaType
from .openapi import documented, json_body

MAX_INTAKE_BODY = 1_048_576 + MAX_SAMPLE_BYTES  # the largest transaction a chain may allow, and the samples
MAX_SAFE = 2**53 - 1
#: A route's ``api`` and ``caller``: the app's ``api.app.Api`` and who signed the request (injected by name).
ApiDep = NamedDependency[Any]
CallerDep = NamedDependency[Any]

LOCATION = VehicleData("vin", "location")


class _DeviceNow:
    """The caller is one of the vehicle's current device keys, by the vehicles rule the ledger applies
    (``VehicleDoor.require_device``: unknown_vehicle, vehicle_scrapped, device_key_revoked,
    not_vehicle_device), judged before the node stores anything."""

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        view.need(VehicleDoor).require_device(view, obj.get("vin"), caller.did)

    def describe(self) -> str:
        return "the vehicle's current device keys"


DEVICE_NOW = _DeviceNow()
DRIVING = VehicleData("vin", "driving")
HOLDER = HolderOf("vin")
BATCH_KEYS = StateMap(telemetry_keys.BATCH, dict)  # the module's prefix; the key's shape is the core's
VEHICLE_RECORDS = StateMap(vehicle_keys.VEHICLE, dict)  # a vehicle record: when its holding began

_VIN = re.compile(r"[A-Za-z0-9]{1,40}", re.ASCII)
_NUMBER = re.compile(r"0|[1-9][0-9]{0,15}", re.ASCII)

_settling = ThreadPoolExecutor(1, thread_name_prefix="telemetry-settle")  # a refused batch's samples go here


def _store(api: Any) -> SampleStore:
    store = api.node.samples
    if store is None:
        raise Unavailable(reason="its sample store is not open")
    return store  # type: ignore[no-any-return]


def _settle_when_committed(api: Any, store: SampleStore, vin: str, root: str, txid: bytes) -> None:
    """Once the transaction's block is committed, a failed batch's samples are discarded (off the committer's thread)."""
    fut: Future = api.node.receipt_future(txid)

    def done(f: Future) -> None:
        try:
            kept = f.result().receipt.ok
        except Exception:  # the node stopped before the block: the samples stay (erase removes them)
            return
        _settling.submit(store.settle, vin, root, txid.hex(), kept)

    fut.add_done_callback(done)


def _settle_submitted(api: Any, store: SampleStore, vin: str, root: str, txid: bytes, submitted: Future) -> None:
    """A submission whose client went away: settled as the node answered it, then as the ledger does."""
    if submitted.exception() is not None:
        _settling.submit(store.settle, vin, root, txid.hex(), False)
    else:
        _settle_when_committed(api, store, vin, root, txid)


@post("/v1/telemetry/batches", status_code=202, summary="Submit a batch of samples with its commit_batch transaction",
      request_max_body_size=MAX_INTAKE_BODY, opt={"read": SIGNED},
      operation_class=documented(
          errors=(400, 401, 403, 409, 413, 415),
          request_body=json_body({
              "type": "object", "required": ["tx", "samples"], "additionalProperties": False,
              "properties": {
                  "tx": {"type": "object", "description": "One signed transaction whose message is "
                                                          "telemetry.commit_batch, signed by the vehicle's device key."},
                  "samples": {"type": "array", "minItems": 1, "maxItems": 10_000, "description": (
                      "The batch's samples, [t, speed, accel, lat, lon, odometer_m, limit, events] each "
                      "(docs/telemetry.md#samples)."),
                      "items": {"type": "array", "minItems": 8, "maxItems": 8, "items": {"type": "integer"}}}}},
              "A commit_batch transaction and the samples it commits to (they never enter the ledger)."),
          also_ok={200: "With ?wait: the receipt, as GET /v1/txs/{tx_id} answers it."}))
async def submit_samples(request: Request, api: ApiDep, caller: CallerDep, wait: Annotated[float, QueryParameter(
        ge=0, le=60, description="Seconds to wait for the receipt (0-60).")] = 0.0) -> Response:
    """The samples are checked against the transaction (root, summary), stored durably on this node,
    then the transaction is submitted: 202 once both are durable. Sent by a key that signed the
    transaction (the vehicle's device key)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(got=media or "no content type")
    body = await request.body()
    try:
        intake = decode_intake(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise RequestError(reason=f'the body is {{"tx": <signed transaction>, "samples": [[...], ...]}} ({exc})') \
            from None
    raw_tx, raw_samples = bytes(intake.tx), bytes(intake.samples)
    limit = api.node.params.get("max_tx_bytes", 65_536)
    if len(raw_tx) > limit:
        raise TxTooLarge(size=len(raw_tx), limit=limit)
    tx = api.node.registry.codec.decode(raw_tx)
    msg = tx.body.msg
    if not isinstance(msg, CommitBatch):
        raise NotABatch(type=msg.__struct_config__.tag)
    if caller.did not in [s.signer for s in tx.sigs]:
        if not caller.known:
            raise UnknownCaller(caller=caller.describe(), what="submissions of batches it does not sign")
        raise NotBatchSigner(caller=caller.describe())
    if len(raw_samples) > MAX_SAMPLE_BYTES:
        raise SamplesInvalid(where="the batch", reason=f"{len(raw_samples)} bytes of samples, more than the "
                                                       f"{MAX_SAMPLE_BYTES} any batch of 10,000 needs", index=-1)
    store = _store(api)
    await api.reach(api.node.head_height)  # judged on the newest block (a key added just now counts)
    # a key that is not one of the car's devices now stores nothing here, whatever it signs
    await asyncio.to_thread(api.reader.check_read, DEVICE_NOW, Caller(did=tx.body.sender, known=False),
                            {"vin": msg.vin}, f"the batches of {msg.vin}")
    batch = await prepared(api.node.intake, raw_samples, msg)  # checked and compressed in a worker process
    txid = tx_id(tx.body)
    await asyncio.to_thread(store.put_prepared, msg.vin, msg.root, batch, msg.utc_offset_min, txid.hex())
    try:
        submitted = api.node.submit_one(raw_tx)
        await asyncio.shield(asyncio.wrap_future(submitted))  # a client going away does not withdraw it
    except BlokautoError:  # refused before ordering: the samples go with it
        await asyncio.to_thread(store.settle, msg.vin, msg.root, txid.hex(), False)
        raise
    except asyncio.CancelledError:  # the client went away: what the node does with the transaction decides
        submitted.add_done_callback(lambda f: _settle_submitted(api, store, msg.vin, msg.root, txid, f))
        raise
    _settle_when_committed(api, store, msg.vin, msg.root, txid)
    if wait > 0:
        return Response(await api.receipt(txid, wait), status_code=200)
    return Response({"id": txid.hex(), "status": "accepted", "samples": batch.count}, status_code=202)


# ---------------------------------------------------------------- reads and erasure

PathVin = Annotated[str, PathParameter(description="The vehicle's VIN.", min_length=1, max_length=40,
                                       pattern="^[A-Za-z0-9]{1,40}$")]
PathSeq = Annotated[str, PathParameter(description="The batch's sequence number (1, 2, ...).")]
PathIndex = Annotated[str, PathParameter(description="The sample's position in its batch, from 0.")]
MinHeight = Annotated[int, QueryParameter(ge=-1, le=MAX_SAFE, description=(
    "Wait (up to 10 s) until the state reflects this block (read your own writes); -1: do not wait."))]
SEQ_PATTERN = "^[1-9][0-9]{0,15}$"
INDEX_PATTERN = "^(0|[1-9][0-9]{0,15})$"


def _vin(vin: str) -> str:
    if not _VIN.fullmatch(vin):
        raise RequestError(reason=f"the VIN in the path is 1 to 40 letters and digits, not {vin[:60]!r}")
    return vin


def _number(value: str, name: str, least: int) -> int:
    """A path number in ASCII digits (Litestar's int parameters must be the path's last segment here)."""
    if not _NUMBER.fullmatch(value) or int(value) < least:
        raise RequestError(reason=f"the {name} in the path is a whole number from {least}, in ASCII digits, "
                                  f"not {value[:40]!r}")
    return int(value)


async def _batch(api: Any, caller: Caller, policy: Any, vin: str, seq: int, what: str,
                 min_height: int) -> dict[str, Any]:
    """The committed record of batch ``seq`` of ``vin`` as ``GET /v1/state`` answers it (value,
    proof, checkpoint), once ``caller`` may read ``what``."""
    await api.reach(min_height)
    await api.check(policy, caller, {"vin": vin}, what)
    if policy is LOCATION:  # samples hold speeds and accelerations too: driving data as well as positions
        await api.check(DRIVING, caller, {"vin": vin}, what)
    evidence = await asyncio.to_thread(api.reader.state_value, BATCH_KEYS.key(vin, seq))
    if evidence["value"] is None:
        raise UnknownBatch(vin=vin, seq=seq)
    return evidence  # type: ignore[no-any-return]


async def _held(api: Any, caller: Caller, vin: str, seq: int, evidence: dict[str, Any]) -> Any:
    """The samples of a batch, for a caller who may read the vehicle's location data now; a batch
    committed before the current holding began is the former holder's: its positions go to regulators
    and police only, never to the buyer or an organisation the buyer consented to."""
    if not caller.reads_all:
        vehicle = (await asyncio.to_thread(api.reader.state_value, VEHICLE_RECORDS.key(vin)))["value"]
        if vehicle is not None and evidence["value"]["time"] < vehicle["holder_since"]:
            raise NotYourData(what=f"the samples of batch {seq} of {vin}", caller=caller.describe(),
                              owner="the holding that recorded them (the vehicle changed hands since)")
    root = evidence["value"]["root"]
    stored = await asyncio.to_thread(_store(api).get, vin, root)
    if stored is None:
        raise SamplesNotHeld(vin=vin, seq=seq, root=root)
    return stored


@get("/v1/telemetry/{vin:str}/batches/{seq:str}", summary="A committed telemetry batch with its state proof",
     opt={"read": DRIVING}, operation_class=documented(errors=(400, 401, 403, 404), path_patterns={"seq": SEQ_PATTERN}))
async def get_batch(api: ApiDep, caller: CallerDep, vin: PathVin, seq: PathSeq,
                    min_height: MinHeight = -1) -> dict[str, Any]:
    """Root, trip summary, UTC offset, signing device and running totals, proven against a checkpoint.
    Read by whoever reads the vehicle's driving data (the module's ``batch`` query)."""
    n = _number(seq, "seq", 1)
    evidence = await _batch(api, caller, DRIVING, _vin(vin), n, f"batch {n} of {vin}", min_height)
    return {"vin": vin, "seq": n, "batch": evidence}


@get("/v1/telemetry/{vin:str}/batches/{seq:str}/samples", summary="A batch's samples, held off the ledger",
     opt={"read": LOCATION},
     operation_class=documented(errors=(400, 401, 403, 404), path_patterns={"seq": SEQ_PATTERN}))
async def get_samples(api: ApiDep, caller: CallerDep, vin: PathVin, seq: PathSeq,
                      min_height: MinHeight = -1) -> dict[str, Any]:
    """The committed record (with its state proof) and the samples this node holds for it, checked
    against its root. Read by whoever reads the vehicle's location data; 404 ``samples_not_held``
    when another node received them or the holder erased them."""
    n = _number(seq, "seq", 1)
    evidence = await _batch(api, caller, LOCATION, _vin(vin), n, f"the samples of batch {n} of {vin}", min_height)
    stored = await _held(api, caller, vin, n, evidence)
    return {"vin": vin, "seq": n, "count": len(stored.samples), "samples": stored.samples, "tx": stored.tx,
            "received": stored.received_ms, "batch": evidence}


@get("/v1/telemetry/{vin:str}/batches/{seq:str}/samples/{index:str}",
     summary="One sample with its inclusion proof in the committed batch", opt={"read": LOCATION},
     operation_class=documented(errors=(400, 401, 403, 404),
                                path_patterns={"seq": SEQ_PATTERN, "index": INDEX_PATTERN}))
async def get_sample(api: ApiDep, caller: CallerDep, vin: PathVin, seq: PathSeq, index: PathIndex,
                     min_height: MinHeight = -1) -> dict[str, Any]:
    """Sample ``index`` (from 0), its RFC 9162 inclusion proof (hex, leaf upwards), the batch's root
    and count, and the committed record with its state proof: whoever holds this answer shows the
    sample belongs to the batch the vehicle signed (``telemetry.verify_sample``)."""
    n, i = _number(seq, "seq", 1), _number(index, "index", 0)
    evidence = await _batch(api, caller, LOCATION, _vin(vin), n, f"the samples of batch {n} of {vin}", min_height)
    stored = await _held(api, caller, vin, n, evidence)
    count = len(stored.samples)
    if i >= count:
        raise UnknownSample(vin=vin, seq=n, count=count, index=i)
    proof = await asyncio.to_thread(sample_proof, stored.samples, i)
    return {"vin": vin, "seq": n, "index": i, "count": count, "root": stored.root, "sample": stored.samples[i],
            "proof": proof, "batch": evidence}


@delete("/v1/telemetry/{vin:str}/samples", status_code=200, summary="Erase a vehicle's stored samples (its holder)",
        opt={"read": HOLDER}, operation_class=documented(errors=(400, 401, 403)))
async def erase_samples(api: ApiDep, caller: CallerDep, vin: PathVin, before: Annotated[int, QueryParameter(
        ge=0, le=MAX_SAFE, description="Erase only the batches whose last sample is before this time (ms); "
                                       "by default all of them.")] = MAX_SAFE) -> dict[str, Any]:
    """The holder erases this node's copy of the samples its holding sent (all, or those ending before
    ``before``): deleted, their pages zeroed. The ledger keeps every root and summary, and still
    verifies. Only the holder (a key, or a member key of a holding organisation) erases, and only what
    this node received since it took the title."""
    _vin(vin)
    as_person = msgspec.structs.replace(caller, roles=frozenset(), node=False)  # no reading rights of a role here
    try:
        await asyncio.to_thread(api.reader.check_read, HOLDER, as_person, {"vin": vin}, f"the samples of {vin}")
    except ReadRefused:  # an unknown key, the car's own device, a former holder: none is the holder
        raise NotVehicleHolder(vin=vin, caller=caller.describe()) from None
    given = before if before < MAX_SAFE else None
    # only its own holding's: a buyer never erases the positions a seller's holding recorded (regulators
    # and police may still read those)
    vehicle = (await asyncio.to_thread(api.reader.state_value, VEHICLE_RECORDS.key(vin)))["value"]
    since = vehicle["holder_since"] if vehicle is not None else 0
    erased = await asyncio.to_thread(_store(api).erase, vin, given, since=since)
    return {"vin": vin, "erased": erased, **({"before": given} if given is not None else {})}


#: The telemetry routes, for ``api.app.ROUTES``.
ROUTES = [submit_samples, get_batch, get_samples, get_sample, erase_samples]
