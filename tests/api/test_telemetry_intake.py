"""A vehicle's batches through the real HTTP API: the samples travel beside their ``commit_batch``
transaction, are checked against it (typed, a batch, its root, its summary), stored durably, and
only then is the transaction submitted; who reads them, proves one of them, and erases them.

One node serves the whole file (``helpers.telemetry_intake``: one car held by a private key with a
device key, an insurer the holder consented to for location and driving, a dealer nobody consented
to). Each refusal is checked by its code, never by status alone, and a refused batch leaves nothing
in the node's sample store.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import httpx
import msgspec
import pytest

from blokauto.client import Client, signed_http
from blokauto.client.telemetry import Telemetry, make_batch, verify_sample_inclusion
from blokauto.core.crypto import KeyPair
from blokauto.core.merkle import ProofError
from blokauto.modules.telemetry import Sample, sample_proof, verify_sample
from blokauto.modules.vehicles.messages import RecordOdometer, RevokeDeviceKey
from blokauto.verify import VerificationError

from conftest import K, Served, build_tx, now_ms
from helpers.telemetry_intake import (DEALER, DEVICE, DEVICE2, INSURER, JSON, MAKER, OUTSIDER, OWNER, REGULATOR, VIN,
                                      VIN2, intake_body, new_chain, stage, trip)

ROUTE = "/v1/telemetry/batches"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("telemetry") / "data"
    g = new_chain(data)
    served = Served(data)
    try:
        stage(served.url, g)
        served.genesis = g
        yield served
    finally:
        served.stop()


def tx(node: Any, msg: Any, sender: KeyPair = DEVICE, *cosigners: KeyPair) -> bytes:
    return build_tx(sender, msg, *cosigners, chain=node.genesis.chain, expires=now_ms() + 600_000)


def post(node: Any, body: bytes, key: KeyPair | None = DEVICE, **kw: Any) -> httpx.Response:
    with signed_http(node.url, key, timeout=60) as http:
        return http.post(ROUTE, content=body, headers=kw.pop("headers", JSON), **kw)


def get(node: Any, path: str, key: KeyPair | None, **kw: Any) -> httpx.Response:
    with signed_http(node.url, key, timeout=60) as http:
        return http.get(path, **kw)


def code(r: httpx.Response) -> str:
    return r.json()["error"]["code"]


def committed(node: Any, samples: list[Sample], *, vin: str = VIN, device: KeyPair = DEVICE, offset: int = 0) -> int:
    """Send a batch through the route, wait for its receipt; returns its sequence number."""
    r = post(node, intake_body(tx(node, make_batch(vin, samples, offset), device), samples), device,
             params={"wait": 30})
    assert r.status_code == 200, r.text
    receipt = r.json()["receipt"]
    assert receipt["ok"], receipt
    return next(e["seq"] for e in receipt["events"] if e["type"] == "telemetry.batch_committed")


def held(node: Any) -> int:
    return node.node.samples.count()


# ---------------------------------------------------------------- the happy path


def test_a_batch_is_checked_stored_then_committed(node):
    samples = trip(30, brake_at=7)
    msg = make_batch(VIN, samples, 60)
    before = held(node)
    r = post(node, intake_body(tx(node, msg), samples))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["samples"] == 30 and len(body["id"]) == 64
    assert held(node) == before + 1  # durable before the answer
    with Client(node.url, key=OWNER, trust=node.genesis) as c:
        info = c.receipt(body["id"], wait=30, key=DEVICE)
        assert info.ok, info.error
        seq = next(e["seq"] for e in info.events if e["type"] == "telemetry.batch_committed")
        got = Telemetry(c).samples(VIN, seq, min_height=info.height)  # record proven, samples checked
    assert got.samples == samples and got.record.root == msg.root and got.record.summary == msg.summary
    assert got.record.summary.harsh_brakes == 1 and got.tx == body["id"]


def test_with_wait_the_answer_is_the_receipt(node):
    samples = trip(5)
    r = post(node, intake_body(tx(node, make_batch(VIN, samples)), samples), params={"wait": 30})
    assert r.status_code == 200, r.text
    assert r.json()["receipt"]["ok"] and r.json()["tx"]["body"]["msg"]["type"] == "telemetry.commit_batch"


def test_the_sdk_sends_and_reads_back(node):
    samples = trip(12)
    with Client(node.url, trust=node.genesis) as c:
        tel = Telemetry(c)
        info = tel.send_batch(VIN, samples, DEVICE, utc_offset_min=120)
        assert info.ok, info.error
        seq = next(e["seq"] for e in info.events if e["type"] == "telemetry.batch_committed")
        record = tel.check_batch(VIN, seq, samples, key=INSURER)  # an insurer's recomputation
        assert record.utc_offset_min == 120 and record.device == DEVICE.did


def test_the_largest_batch_fits_the_body_limit(node):
    samples = trip(10_000, step_ms=100)
    assert committed(node, samples) >= 1


# ---------------------------------------------------------------- refusals at intake


def _altered(samples: list[Sample], index: int, **change: int) -> list[Sample]:
    out = list(samples)
    out[index] = msgspec.structs.replace(out[index], **change)
    return out


def _with_summary(msg: Any, **change: int) -> Any:
    return msgspec.structs.replace(msg, summary=msgspec.structs.replace(msg.summary, **change))


def _raw_samples(samples: list[Any]) -> list[Any]:
    return [list(msgspec.to_builtins(s)) if isinstance(s, Sample) else s for s in samples]


def _case_bad_value(n: Any) -> tuple[Any, Any]:
    s = trip(6)
    raw = _raw_samples(s)
    raw[3][1] = 900  # speed above 500 km/h
    return tx(n, make_batch(VIN, s)), raw


def _case_short_sample(n: Any) -> tuple[Any, Any]:
    s = trip(6)
    raw = _raw_samples(s)
    raw[2] = raw[2][:7]
    return tx(n, make_batch(VIN, s)), raw


def _case_time_back(n: Any) -> tuple[Any, Any]:
    s = trip(6)
    swapped = [s[0], s[1], s[2], s[4], s[3], s[5]]
    return tx(n, make_batch(VIN, s)), swapped


def _case_odometer_back(n: Any) -> tuple[Any, Any]:
    s = trip(6)
    return tx(n, make_batch(VIN, s)), _altered(s, 4, odometer_m=s[3].odometer_m - 1)


def _case_no_samples(n: Any) -> tuple[Any, Any]:
    s = trip(2)
    return tx(n, make_batch(VIN, s)), []


def _case_one_field_altered(n: Any) -> tuple[Any, Any]:
    s = trip(8)
    return tx(n, make_batch(VIN, s)), _altered(s, 5, lat=s[5].lat + 1)  # a position moved by 11 m


def _case_summary_lies(n: Any) -> tuple[Any, Any]:
    s = trip(8, speed=90)
    return tx(n, _with_summary(make_batch(VIN, s), max_speed=80)), s


def _case_offset_not_the_summarys(n: Any) -> tuple[Any, Any]:
    s = trip(8)
    msg = make_batch(VIN, s, 0)
    other = next(o for o in range(-720, 841, 60)  # an offset that puts the trip in the other half of the day
                 if make_batch(VIN, s, o).summary.night_distance_m != msg.summary.night_distance_m)
    return tx(n, msgspec.structs.replace(msg, utc_offset_min=other)), s


def _case_not_a_batch(n: Any) -> tuple[Any, Any]:
    return tx(n, RecordOdometer(vin=VIN, value=12_345)), trip(3)


def _case_batch_of_another_signature(n: Any) -> tuple[Any, Any]:
    s = trip(4)
    raw = tx(n, make_batch(VIN, s))
    doc = msgspec.json.decode(raw)
    doc["sigs"][0]["sig"] = "00" * 64
    return msgspec.json.encode(doc), s


#: (case, HTTP status, code, what the detail must say)
REFUSALS: list[tuple[Callable[[Any], tuple[Any, Any]], int, str, dict[str, Any]]] = [
    (_case_bad_value, 400, "samples_invalid", {"index": 3}),
    (_case_short_sample, 400, "samples_invalid", {"index": 2}),
    (_case_time_back, 400, "samples_invalid", {"index": 4}),
    (_case_odometer_back, 400, "samples_invalid", {"index": 4}),
    (_case_no_samples, 400, "samples_invalid", {"index": -1}),
    (_case_one_field_altered, 400, "batch_root_mismatch", {}),
    (_case_summary_lies, 400, "summary_mismatch", {"field": "max_speed", "committed": 80, "recomputed": 90}),
    (_case_offset_not_the_summarys, 400, "summary_mismatch", {"field": "night_distance_m"}),
    (_case_not_a_batch, 400, "not_a_batch", {"type": "vehicles.record_odometer"}),
    (_case_batch_of_another_signature, 401, "bad_signature", {}),
]


@pytest.mark.parametrize("case,status,expected,detail", REFUSALS, ids=[r[0].__name__[6:] for r in REFUSALS])
def test_a_batch_that_does_not_hold_is_refused_and_nothing_is_kept(node, case, status, expected, detail):
    before = held(node)
    the_tx, samples = case(node)
    r = post(node, intake_body(the_tx, samples))
    assert (r.status_code, code(r)) == (status, expected), r.text
    got = r.json()["error"]["detail"]
    assert {k: got.get(k) for k in detail} == detail, got
    assert held(node) == before


def test_a_summary_mismatch_names_the_field_and_both_values(node):
    s = trip(8, speed=90)
    r = post(node, intake_body(tx(node, _with_summary(make_batch(VIN, s), max_speed=80)), s))
    message = r.json()["error"]["message"]
    assert "max_speed = 80" in message and "give 90" in message


def test_a_sample_out_of_range_is_named_by_index_and_field(node):
    the_tx, raw = _case_bad_value(node)
    r = post(node, intake_body(the_tx, raw))
    assert "sample 3" in r.json()["error"]["message"] and "speed" in r.json()["error"]["message"]


#: (who posts, status, code): a batch is sent by a key that signed it.
SENDERS = [
    ("another vehicle's device key", DEVICE2, 401, "unknown_caller"),
    ("a member that did not sign it", INSURER, 403, "not_batch_signer"),
    ("an unknown key", OUTSIDER, 401, "unknown_caller"),
    ("nobody (unsigned)", None, 401, "signature_required"),
]


@pytest.mark.parametrize("who,key,status,expected", SENDERS, ids=[s[0] for s in SENDERS])
def test_only_a_signer_of_the_transaction_sends_the_batch(node, who, key, status, expected):
    s = trip(4)
    before = held(node)
    r = post(node, intake_body(tx(node, make_batch(VIN, s)), s), key)
    assert (r.status_code, code(r)) == (status, expected), r.text
    assert held(node) == before


#: (what is wrong with the request itself, status, code)
BODIES = [
    ("a body over the route's limit", lambda n: b'{"tx":{},"samples":[' + b"0," * 1_100_000 + b"0]}", JSON, 413,
     "request_too_large"),
    ("samples padded past what 10,000 need", lambda n: intake_body(tx(n, make_batch(VIN, trip(2))), trip(2))[:-2]
     + b" " * 1_100_000 + b"]}", JSON, 400, "samples_invalid"),
    ("no samples field", lambda n: b'{"tx":' + tx(n, make_batch(VIN, trip(2))) + b"}", JSON, 400, "bad_request"),
    ("not JSON", lambda n: b"tx=1", JSON, 400, "bad_request"),
    ("not declared JSON", lambda n: intake_body(tx(n, make_batch(VIN, trip(2))), trip(2)),
     {"content-type": "text/plain"}, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("what,make,headers,status,expected", BODIES, ids=[b[0] for b in BODIES])
def test_a_request_that_is_not_an_intake_is_refused(node, what, make, headers, status, expected):
    before = held(node)
    r = post(node, make(node), headers=headers)
    assert (r.status_code, code(r)) == (status, expected), r.text[:500]
    assert held(node) == before


def test_a_batch_the_ledger_refuses_takes_its_samples_with_it(node):
    """Accepted at intake (the car's key signed it; the samples hold), refused at execution (it overlaps
    the car's previous batch): the receipt fails and the node discards the samples it kept for it."""
    first = trip(6)
    committed(node, first)
    overlapping = [msgspec.structs.replace(x, odometer_m=x.odometer_m + 1) for x in first]  # same times
    before = held(node)
    r = post(node, intake_body(tx(node, make_batch(VIN, overlapping), DEVICE), overlapping), DEVICE,
             params={"wait": 30})
    assert r.status_code == 200, r.text
    assert r.json()["receipt"]["code"] == "batch_overlaps"
    _settled(node, before)


def test_a_key_that_is_not_the_cars_device_stores_nothing(node):
    """Found by the outside attack: a key the consortium does not know re-uploaded erased samples in a
    batch of its own; refused at intake (the vehicles rule the ledger applies), nothing stored."""
    stranger = K("tel-not-a-device")
    s = trip(6)
    before = held(node)
    r = post(node, intake_body(tx(node, make_batch(VIN, s), stranger), s), stranger)
    assert (r.status_code, code(r)) == (422, "not_vehicle_device"), r.text
    assert held(node) == before


def test_a_revoked_device_key_sends_no_more_batches(node):
    with Client(node.url, trust=node.genesis) as c:
        c.send(RevokeDeviceKey(vin=VIN2, key=DEVICE2.did, reason="compromised"), MAKER).raise_for_status()
    s = trip(4)
    before = held(node)
    r = post(node, intake_body(tx(node, make_batch(VIN2, s), DEVICE2), s), DEVICE2, params={"wait": 30})
    assert (r.status_code, code(r)) == (422, "device_key_revoked"), r.text
    assert held(node) == before


def _settled(node: Any, count: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while held(node) != count and time.monotonic() < deadline:
        time.sleep(0.05)  # the discard runs once the receipt is out, off the committer's thread
    assert held(node) == count


def test_the_same_batch_sent_twice_keeps_the_committed_samples(node):
    """The second submission of a committed batch fails (it overlaps), and must not take the first's samples."""
    s = trip(5)
    seq = committed(node, s)
    r = post(node, intake_body(tx(node, make_batch(VIN, s)), s), params={"wait": 30})
    assert r.json()["receipt"]["code"] == "batch_overlaps"
    with Client(node.url, key=OWNER, trust=node.genesis) as c:
        assert Telemetry(c).samples(VIN, seq).samples == s


# ---------------------------------------------------------------- reading


@pytest.fixture(scope="module")
def batch(node: Any) -> tuple[int, list[Sample]]:
    s = trip(25, brake_at=3)
    return committed(node, s), s


#: (reader, status, code): samples are location data, the record driving data.
READERS = [
    ("holder", OWNER, 200, None),
    ("consented insurer", INSURER, 200, None),
    ("regulator", REGULATOR, 200, None),
    ("the vehicle's own device", DEVICE, 200, None),
    ("unconsented dealer", DEALER, 403, "consent_required"),
    ("unknown key", OUTSIDER, 401, "unknown_caller"),
    ("unsigned", None, 401, "signature_required"),
]


@pytest.mark.parametrize("route", ["samples", "samples/0", "record"])
@pytest.mark.parametrize("who,key,status,expected", READERS, ids=[r[0] for r in READERS])
def test_who_reads_a_batch_and_its_samples(node, batch, route, who, key, status, expected):
    seq, _ = batch
    path = f"/v1/telemetry/{VIN}/batches/{seq}" + ("" if route == "record" else f"/{route}")
    r = get(node, path, key)
    assert r.status_code == status, r.text
    if expected is not None:
        assert code(r) == expected


def test_the_samples_are_the_committed_batch(node, batch):
    seq, samples = batch
    r = get(node, f"/v1/telemetry/{VIN}/batches/{seq}/samples", OWNER).json()
    assert r["count"] == 25 and [Sample(*s) for s in r["samples"]] == samples
    assert r["batch"]["key"] == f"tel/batch/{VIN}/{seq:016d}" and r["batch"]["value"]["seq"] == seq


def test_an_inclusion_proof_verifies_and_a_tampered_sample_fails(node, batch):
    seq, samples = batch
    with Client(node.url, key=INSURER, trust=node.genesis) as c:
        tel = Telemetry(c)
        for i in (0, 13, 24):
            p = tel.sample(VIN, seq, i)  # proof verified against the proven root
            assert p.sample == samples[i] and p.count == 25
        p = tel.sample(VIN, seq, 13)
    forged = msgspec.structs.replace(p.sample, speed=p.sample.speed - 20)  # "I was not speeding"
    with pytest.raises(ProofError):
        verify_sample_inclusion(forged, 13, p.count, p.proof, p.record.root)
    with pytest.raises(ProofError):
        verify_sample_inclusion(p.sample, 12, p.count, p.proof, p.record.root)  # another position
    with pytest.raises(ProofError):
        verify_sample_inclusion(p.sample, 13, p.count, [p.proof[0][::-1], *p.proof[1:]], p.record.root)


def test_a_node_serving_a_tampered_sample_is_caught_by_the_sdk(node, batch, monkeypatch):
    seq, _ = batch
    real = Client._request

    def lying(self: Client, method: str, path: str, **kw: Any) -> Any:
        doc = real(self, method, path, **kw)
        if "/samples" in path and "sample" in doc:
            doc["sample"][1] = 0  # the node claims the car stood still
        elif "/samples" in path:
            doc["samples"][0][1] = 0
        return doc

    monkeypatch.setattr(Client, "_request", lying)
    with Client(node.url, key=OWNER, trust=node.genesis) as c:
        with pytest.raises(VerificationError):
            Telemetry(c).sample(VIN, seq, 4)
        with pytest.raises(VerificationError):
            Telemetry(c).samples(VIN, seq)


def test_the_modules_verify_sample_accepts_its_own_proofs():
    s = trip(9)
    from blokauto.modules.telemetry import batch_root

    verify_sample(s[4], 4, 9, sample_proof(s, 4), batch_root(s).hex())


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 100])
def test_the_sdks_check_agrees_with_the_modules_proofs_at_every_index(n):
    from blokauto.modules.telemetry import batch_root

    s = trip(n)
    root = batch_root(s).hex()
    for i in range(n):
        verify_sample_inclusion(s[i], i, n, sample_proof(s, i), root)


#: (path after /v1/telemetry/VIN, status, code)
NOT_THERE = [
    ("/batches/999/samples", 404, "unknown_telemetry_batch"),
    ("/batches/999", 404, "unknown_telemetry_batch"),
    ("/batches/0/samples", 400, "bad_request"),
    ("/batches/01/samples", 400, "bad_request"),
    ("/batches/1/samples/25000", 404, "unknown_sample"),
    ("/batches/1/samples/-1", 400, "bad_request"),
]


@pytest.mark.parametrize("path,status,expected", NOT_THERE, ids=[n[0] for n in NOT_THERE])
def test_what_is_not_there_is_refused_by_name(node, batch, path, status, expected):
    r = get(node, f"/v1/telemetry/{VIN}{path}", OWNER)
    assert (r.status_code, code(r)) == (status, expected), r.text


def test_a_batch_this_node_did_not_receive_has_no_samples_here(node):
    """Committed without its samples, as a batch another node received arrives here in a network (the
    transaction alone, from the ordering): the record is there, the samples are not."""
    s = trip(4)
    raw = tx(node, make_batch(VIN, s), DEVICE)
    txid = node.node.submit_one(raw).result(timeout=30)  # past this node's API, as the stream delivers it
    with Client(node.url, trust=node.genesis) as c:
        info = c.receipt(txid.hex(), wait=30, key=DEVICE)
        assert info.ok, info.error
        seq = next(e["seq"] for e in info.events if e["type"] == "telemetry.batch_committed")
    r = get(node, f"/v1/telemetry/{VIN}/batches/{seq}/samples", OWNER, params={"min_height": info.height})
    assert (r.status_code, code(r)) == (404, "samples_not_held")
    assert get(node, f"/v1/telemetry/{VIN}/batches/{seq}", OWNER).status_code == 200


# ---------------------------------------------------------------- erasure (runs last: it empties the store of VIN)


def delete(node: Any, key: KeyPair | None, **kw: Any) -> httpx.Response:
    with signed_http(node.url, key, timeout=60) as http:
        return http.delete(f"/v1/telemetry/{VIN}/samples", **kw)


#: Only the holder erases: reading rights (regulators, police, consent) do not include erasure.
ERASERS = [
    ("consented insurer", INSURER, 403, "not_vehicle_holder"),
    ("regulator", REGULATOR, 403, "not_vehicle_holder"),
    ("node key", K("reg-node"), 403, "not_vehicle_holder"),
    ("maker", MAKER, 403, "not_vehicle_holder"),
    # found by the outside attack: the car's own device was told it is "not a device key" (401)
    ("device", DEVICE, 403, "not_vehicle_holder"),
    ("unknown key", OUTSIDER, 403, "not_vehicle_holder"),
]


@pytest.mark.parametrize("who,key,status,expected", ERASERS, ids=[e[0] for e in ERASERS])
def test_only_the_holder_erases(node, batch, who, key, status, expected):
    before = held(node)
    r = delete(node, key)
    assert (r.status_code, code(r)) == (status, expected), r.text
    assert held(node) == before


def test_the_holder_erases_and_the_ledger_still_has_the_roots(node, batch):
    seq, _ = batch
    newer = trip(4)
    newer_seq = committed(node, newer)
    r = delete(node, OWNER, params={"before": newer[0].t})  # everything that ended before the newer trip
    assert r.status_code == 200 and r.json()["erased"] >= 1, r.text
    assert code(get(node, f"/v1/telemetry/{VIN}/batches/{seq}/samples", OWNER)) == "samples_not_held"
    assert get(node, f"/v1/telemetry/{VIN}/batches/{newer_seq}/samples", OWNER).status_code == 200
    r = delete(node, OWNER)
    assert r.status_code == 200 and r.json()["erased"] == 1
    assert node.node.samples.count(VIN) == 0
    for s in (seq, newer_seq):
        assert code(get(node, f"/v1/telemetry/{VIN}/batches/{s}/samples", INSURER)) == "samples_not_held"
        record = get(node, f"/v1/telemetry/{VIN}/batches/{s}", INSURER)
        assert record.status_code == 200 and record.json()["batch"]["value"]["root"]
    with Client(node.url, key=OWNER, trust=node.genesis) as c:
        assert Telemetry(c).erase_samples(VIN) == 0


# ---------------------------------------------------------------- a sale: positions stay with their holding


def test_the_buyer_never_reads_the_positions_recorded_before_the_sale(node):
    """A car held by its maker records a batch, is sold; the buyer, and an organisation the buyer
    consents to for location, are refused the seller's samples (not_your_data); a regulator still
    reads them; the buyer reads the samples recorded in its own holding."""
    from blokauto.modules.consent.messages import GrantConsent
    from blokauto.modules.vehicles.messages import TransferTitle
    from helpers.vehicles import WMI, register_msg, vin_for

    vin3, device3 = vin_for(WMI["oem"], 3), K("tel-sale-device")
    with Client(node.url, key=K("reg-node"), trust=node.genesis) as c:
        c.send(register_msg(vin3, device_keys=[device3.did]), MAKER).raise_for_status()
    before = committed(node, trip(10), vin=vin3, device=device3)
    assert get(node, f"/v1/telemetry/{vin3}/batches/{before}/samples", MAKER).status_code == 200
    buyer = K("samples-buyer")
    with Client(node.url, key=K("reg-node"), trust=node.genesis) as c:
        c.send(TransferTitle(vin=vin3, to=buyer.did), MAKER, buyer).raise_for_status()
        until = c.checkpoint("latest").header.time + 86_400_000
        c.send(GrantConsent(vin=vin3, org="ins", categories=["location", "driving"], purpose="pay as you drive",
                            until=until), buyer).raise_for_status()
    for who in (buyer, INSURER):
        r = get(node, f"/v1/telemetry/{vin3}/batches/{before}/samples", who)
        assert (r.status_code, code(r)) == (403, "not_your_data"), r.text
        r = get(node, f"/v1/telemetry/{vin3}/batches/{before}/samples/0", who)
        assert (r.status_code, code(r)) == (403, "not_your_data"), r.text
    assert get(node, f"/v1/telemetry/{vin3}/batches/{before}/samples", REGULATOR).status_code == 200
    # nor erases them (found by the outside attack: it did, and the police's evidence went with them)
    with signed_http(node.url, buyer, timeout=60) as http:
        r = http.delete(f"/v1/telemetry/{vin3}/samples")
    assert (r.status_code, r.json()["erased"]) == (200, 0), r.text
    assert get(node, f"/v1/telemetry/{vin3}/batches/{before}/samples", REGULATOR).status_code == 200
    after = committed(node, trip(10), vin=vin3, device=device3)
    assert get(node, f"/v1/telemetry/{vin3}/batches/{after}/samples", buyer, params={"min_height": 0}).status_code == 200


def test_a_batch_without_its_samples_is_refused_on_the_transaction_routes(node):
    """Only the samples route takes a commit_batch: on POST /v1/txs it would put a root and summary on
    the ledger that no node checked and no node holds samples for."""
    s = trip(5)
    raw = tx(node, make_batch(VIN, s), DEVICE)
    with signed_http(node.url, DEVICE, timeout=60) as http:
        r = http.post("/v1/txs", content=raw, headers=JSON)
    assert (r.status_code, code(r)) == (400, "batch_without_samples"), r.text
    assert "/v1/telemetry/batches" in r.json()["error"]["message"]
    reading = tx(node, RecordOdometer(vin=VIN, value=10), DEVICE)
    with signed_http(node.url, DEVICE, timeout=60) as http:
        r = http.post("/v1/txs/batch", content=b"[" + raw + b"," + reading + b"]", headers=JSON)
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["error"]["code"] == "batch_without_samples" and "id" in second, r.json()
    assert r.json()["accepted"] == 1
