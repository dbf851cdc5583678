"""Property tests: random lifecycles over a few vehicles, applied block by block.

Each operation is drawn abstractly (which vehicle, what, whose signature) and turned into a
signed transaction against the ledger as it stands before the block, so sales are often signed
by the right people and sometimes not; senders come from every organisation, owners and device
keys. After every block the vehicle records must agree with their own history (the facts a
buyer's report would carry), with the derived indexes, and with the rules of ``_reading``;
scrapped vehicles must never change; and replaying the blocks gives the same chain.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blokauto.core.crypto import KeyPair
from blokauto.modules.vehicles.handlers import BRAND_ROLES, history_head
from blokauto.modules.vehicles.messages import (
    BrandTitle,
    ChangeRegistration,
    Deregister,
    RecordAccident,
    RecordInspection,
    RecordLien,
    RecordOdometer,
    RecordRepair,
    RecordService,
    ReleaseLien,
    ReplaceCluster,
    TransferTitle,
)
from blokauto.modules.vehicles.spec import BY_HOLDER, HISTORY
from blokauto.modules.vehicles.state import VEHICLES, Vehicle

from conftest import Chain, K, build_tx
from helpers.vehicles import ORGS, WMI, admin, register, vehicle, vehicles_chain, vin_for

EXTRA = [("bank2", ["lender"])]
ROLES = {**ORGS, **dict(EXTRA)}
VINS = [vin_for(WMI["oem"], 1), vin_for(WMI["oem"], 2), vin_for(WMI["oem2"], 3)]
DEVICES = [K(f"inv-dev-{i}") for i in range(len(VINS))]
LIMITS = [999_999, 99_999, 999_999]  # the second vehicle's cluster shows at most 99 999 km
PEOPLE = {k.did: k for k in (K("alice"), K("bob"), K("carol"))}
ORG_IDS = ["oem", "oem2", "dealer", "shop", "ins", "bank", "bank2", "reg", "scrap", "fleet"]
HOLDERS = [*PEOPLE, "org:dealer", "org:fleet", "org:oem", "org:ins", "org:bank"]
READING_TYPES = {"odometer", "service", "inspection", "repair", "cluster_replaced"}


def setup_chain() -> Chain:
    chain = vehicles_chain(extra=EXTRA)
    for i, vin in enumerate(VINS):
        register(chain, vin, maker="oem" if i < 2 else "oem2", device_keys=[DEVICES[i].did],
                 odometer_limit_km=LIMITS[i])
    return chain


# ---------------------------------------------------------------- abstract operations


def key_of(name: str, vin_i: int) -> KeyPair:
    """An actor by name: an organisation id, a person, 'dev' (this vehicle's device) or 'otherdev'."""
    if name == "dev":
        return DEVICES[vin_i]
    if name == "otherdev":
        return DEVICES[(vin_i + 1) % len(DEVICES)]
    if name in ("alice", "bob", "carol"):
        return K(name)
    return admin(name)


def holder_key(holder: str) -> KeyPair:
    return PEOPLE[holder] if holder in PEOPLE else admin(holder.removeprefix("org:"))


vin_i = st.integers(0, len(VINS) - 1)
reading = st.one_of(st.integers(0, 150_000), st.sampled_from([0, 1, 99_999, 100_000, 999_999, 1_000_000, 3_000_000]))
unit = st.sampled_from(["km", "km", "mi"])
readers = st.sampled_from(["shop", "ins", "dev", "dev", "fleet", "reg", "bank", "alice", "otherdev"])

OPS = st.one_of(
    st.tuples(st.just("transfer"), vin_i, st.sampled_from(HOLDERS),
              st.sampled_from(["proper", "proper", "agent", "no_lender", "buyer_only"]),
              st.sampled_from([None, None, "fleet", "taxi"])),
    st.tuples(st.just("lien"), vin_i, st.sampled_from(["bank", "bank2", "dealer"]),
              st.sampled_from([True, True, False]), st.integers(1, 10**9)),
    st.tuples(st.just("lien"), vin_i, st.sampled_from(["bank", "bank2", "bank"]),
              st.sampled_from([True, True, False]), st.integers(1, 10**9)),
    st.tuples(st.just("release"), vin_i, st.sampled_from(["its lender", "its lender", "the other bank"]),
              st.integers(0, 2)),
    st.tuples(st.just("release"), vin_i, st.sampled_from(["its lender", "its lender", "the other bank"]),
              st.integers(0, 2)),
    st.tuples(st.just("brand"), vin_i, st.sampled_from(sorted(BRAND_ROLES)),
              st.sampled_from(["ins", "reg", "scrap", "oem", "shop"])),
    st.tuples(st.just("odometer"), vin_i, reading, unit, readers),
    st.tuples(st.just("odometer"), vin_i, reading, unit, readers),
    st.tuples(st.just("odometer"), vin_i, reading, unit, readers),
    st.tuples(st.just("cluster"), vin_i, reading, st.integers(0, 50_000), unit, st.sampled_from(["shop", "ins"])),
    st.tuples(st.just("service"), vin_i, reading, unit, st.sampled_from(["shop", "dealer", "fleet"])),
    st.tuples(st.just("inspection"), vin_i, reading, unit, st.sampled_from(["reg", "shop"])),
    st.tuples(st.just("accident"), vin_i, st.booleans(), st.sampled_from(["ins", "reg", "shop", "dealer"])),
    st.tuples(st.just("repair"), vin_i, reading, st.integers(0, 6), st.sampled_from(["shop", "shop", "ins"])),
    st.tuples(st.just("deregister"), vin_i, st.sampled_from(["scrap", "shop", "shop", "shop"])),
    st.tuples(st.just("registration"), vin_i, st.sampled_from([None, "rental", "ride_share"]),
              st.sampled_from([None, "FR", "PL"])),
)
BLOCKS = st.lists(st.lists(OPS, min_size=1, max_size=5), min_size=1, max_size=10)


def build(chain: Chain, op: tuple) -> bytes:
    """A signed transaction for ``op`` against the ledger as it stands now."""
    kind, i = op[0], op[1]
    vin = VINS[i]
    v = vehicle(chain, vin)
    assert v is not None
    holder = holder_key(v.holder)
    lenders = [admin(lien.lender) for lien in v.liens]
    if kind == "transfer":
        _, _, to, mode, usage = op
        buyer = holder_key(to)
        msg = TransferTitle(vin=vin, to=to, usage=usage)
        if mode == "proper":
            return build_tx(holder, msg, buyer, *lenders)
        if mode == "agent":
            return build_tx(admin("dealer"), msg, holder, buyer, *lenders)
        if mode == "no_lender":
            return build_tx(holder, msg, buyer)
        return build_tx(buyer, msg)
    if kind == "lien":
        _, _, lender, cosigned, amount = op
        msg = RecordLien(vin=vin, amount=amount, currency="EUR")
        return build_tx(admin(lender), msg, *([holder] if cosigned else []))
    if kind == "release":  # one of the open liens, or the next (unknown) id
        _, _, who, pick = op
        lien = v.liens[pick] if pick < len(v.liens) else None
        lender = lien.lender if lien is not None else "bank"
        if who == "the other bank":
            lender = "bank2" if lender == "bank" else "bank"
        return build_tx(admin(lender), ReleaseLien(vin=vin, lien=lien.id if lien is not None else v.next_lien))
    if kind == "brand":
        return build_tx(admin(op[3]), BrandTitle(vin=vin, brand=op[2], reason="property test"))
    if kind == "odometer":
        _, _, value, u, who = op
        return build_tx(key_of(who, i), RecordOdometer(vin=vin, value=value, unit=u))
    if kind == "cluster":
        _, _, old, new, u, who = op
        return build_tx(admin(who), ReplaceCluster(vin=vin, old_value=old, new_value=new, unit=u))
    if kind == "service":
        _, _, value, u, who = op
        return build_tx(admin(who), RecordService(vin=vin, odometer=value, unit=u, items=["oil"]))
    if kind == "inspection":
        _, _, value, u, who = op
        return build_tx(admin(who), RecordInspection(vin=vin, odometer=value, unit=u, result="pass"))
    if kind == "accident":
        _, _, total, who = op
        return build_tx(admin(who), RecordAccident(vin=vin, date="2027-06-01", severity="severe" if total else "minor",
                                                   impact_areas=["front"], total_loss=total))
    if kind == "repair":
        _, _, value, accident, who = op
        return build_tx(admin(who), RecordRepair(vin=vin, odometer=value, items=["panel"], accident=accident))
    if kind == "deregister":
        return build_tx(admin(op[2]), Deregister(vin=vin, certificate=f"COD-{i}"))
    if kind == "registration":
        return build_tx(admin("reg"), ChangeRegistration(vin=vin, usage=op[2], country=op[3]))
    raise AssertionError(kind)


# ---------------------------------------------------------------- what must hold after every block


def to_km(value: int, u: str) -> int:
    return value if u == "km" else value * 1_609_344 // 1_000_000


def history_of(chain: Chain, vin: str) -> tuple[list[dict[str, Any]], list[bytes]]:
    rows = sorted((r for r in chain.ledger.index[HISTORY.name].values() if r["vin"] == vin), key=lambda r: r["seq"])
    entries = [msgspec.json.decode(r["entry"]) for r in rows]
    for row, entry in zip(rows, entries):
        assert (entry["seq"], entry["type"], entry["height"], entry["time"]) == (
            row["seq"], row["type"], row["height"], row["time"])
    return entries, [r["entry"] for r in rows]


def check_history_chain(v: Vehicle, entries: list[dict[str, Any]], raws: list[bytes]) -> None:
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert history_head(raws) == (v.history.count, v.history.head)
    assert entries[0]["type"] == "birth" and entries[0]["data"]["manufacturer"] == v.manufacturer


def check_odometer(v: Vehicle, entries: list[dict[str, Any]]) -> None:
    """Replay ``_reading``'s rule over the recorded readings: a reading whose cluster shows more
    than the limit is flagged exceeds_mechanical_limits and ignored for the maximum; otherwise one
    below the maximum so far is flagged suspected_rollback; not_actual is for ever."""
    limit = entries[0]["data"]["odometer_limit_km"]
    offset = status_rollback = status_exceeds = 0
    max_km = km = readings = rollbacks = 0
    for e in entries:
        if e["type"] not in READING_TYPES:
            continue
        d = e["data"]
        readings += 1
        if e["type"] == "cluster_replaced":
            shown = to_km(d["old_value"], d["unit"])
        else:
            shown = to_km(d["value"] if e["type"] == "odometer" else d["odometer"], d["unit"])
            assert d["km"] == shown + offset, e
        reading_km = shown + offset
        flag = d.get("flag", "")
        expected = ("exceeds_mechanical_limits" if shown > limit
                    else "suspected_rollback" if reading_km < max_km else "")
        assert flag == expected, (e, max_km, offset)
        if flag == "exceeds_mechanical_limits":
            status_exceeds = 1
        else:
            max_km = max(max_km, reading_km)
            if flag:
                rollbacks += 1
                status_rollback = 1
        km = max(reading_km, 0)
        if e["type"] == "cluster_replaced":
            offset = d["offset_km"]
            km = to_km(d["new_value"], d["unit"]) + offset
    o = v.odometer
    status = "not_actual" if status_rollback else "exceeds_mechanical_limits" if status_exceeds else "actual"
    assert (o.status, o.max_km, o.readings, o.rollbacks, o.offset_km, o.limit_km) == (
        status, max_km, readings, rollbacks, offset, limit)
    assert o.km == km
    assert (o.status == "not_actual") == any(
        e["data"].get("flag") == "suspected_rollback" for e in entries if e["type"] in READING_TYPES)


def check_title(v: Vehicle, entries: list[dict[str, Any]]) -> None:
    transfers = [e["data"] for e in entries if e["type"] == "title_transfer"]
    assert v.owners == sum(1 for t in transfers if t["owner"])
    assert v.holder == (transfers[-1]["to"] if transfers else "org:" + v.manufacturer)
    for before, after in zip(["org:" + v.manufacturer] + [t["to"] for t in transfers], transfers):
        assert after["from"] == before
    count = 0
    for t in transfers:  # a person or a non-trade organisation is an owner; a maker or dealer is not
        org = t["to"].removeprefix("org:") if t["to"].startswith("org:") else None
        trade = org is not None and bool(set(ROLES[org]) & {"manufacturer", "dealer"})
        assert t["owner"] is not trade, t
        count += not trade
        assert t["owner_number"] == (count if not trade else 0)
    liens: dict[int, str] = {}
    for e in entries:
        if e["type"] == "lien_recorded":
            liens[e["data"]["lien"]] = e["data"]["lender"]
        elif e["type"] == "lien_released":
            assert liens.pop(e["data"]["lien"]) == e["data"]["lender"]
    assert {lien.id: lien.lender for lien in v.liens} == liens


def check_status(v: Vehicle, entries: list[dict[str, Any]]) -> None:
    brands: list[str] = []
    stolen = False
    for e in entries:
        if e["type"] != "brand":
            continue
        b = e["data"]["brand"]
        if b == "stolen":
            stolen = True
        elif b == "recovered":
            stolen = False
            brands = [x for x in brands if x != "stolen"]
        if b not in brands:
            brands.append(b)
    assert v.brands == brands
    if "rebuilt" in brands:
        assert brands.index("salvage") < brands.index("rebuilt")
    types = [e["type"] for e in entries]
    scrapped = "deregistered" in types
    assert v.status == ("scrapped" if scrapped else "stolen" if stolen else "active")
    if scrapped:
        assert types.index("deregistered") == len(types) - 1  # nothing after the end of life
    assert (v.accidents, v.services, v.inspections) == (types.count("accident"), types.count("service"),
                                                        types.count("inspection"))


def check_indexes(chain: Chain, records: dict[str, Vehicle]) -> None:
    rows = list(chain.ledger.index[BY_HOLDER.name].values())
    listed: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        listed.setdefault(row["vin"], []).append(row)
    assert set(listed) <= set(VINS)
    for vin, v in records.items():
        if v.status == "scrapped":
            assert vin not in listed
        else:
            assert [(r["holder"], r["since"]) for r in listed[vin]] == [(v.holder, v.holder_since)]
    assert {r["vin"] for r in chain.ledger.index[HISTORY.name].values()} == set(VINS)


def check_all(chain: Chain) -> dict[str, Vehicle]:
    records: dict[str, Vehicle] = {}
    for vin in VINS:
        v = vehicle(chain, vin)
        assert v is not None and v.vin == vin
        entries, raws = history_of(chain, vin)
        check_history_chain(v, entries, raws)
        check_odometer(v, entries)
        check_title(v, entries)
        check_status(v, entries)
        records[vin] = v
    check_indexes(chain, records)
    return records


def frozen_view(chain: Chain, vin: str) -> tuple[bytes | None, list]:
    rows = sorted((r for r in chain.ledger.index[HISTORY.name].values() if r["vin"] == vin), key=lambda r: r["seq"])
    return chain.ledger.get(VEHICLES.key(vin)), [dict(r) for r in rows]


# ---------------------------------------------------------------- the properties


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(blocks=BLOCKS)
def test_random_lifecycles_keep_every_invariant(blocks: list[list[tuple]]) -> None:
    chain = setup_chain()
    check_all(chain)
    scrapped: dict[str, tuple] = {}
    for ops in blocks:
        raws = [build(chain, op) for op in ops]
        before = dict(chain.ledger.state)
        outcome = chain.block(*raws)
        if not any(r.ok for r in outcome.receipts):
            assert chain.ledger.state == before, "a block of failed transactions changed the state"
        for receipt in outcome.receipts:
            assert receipt.ok == (receipt.code == "")
            if not receipt.ok:
                assert receipt.events == []
        records = check_all(chain)
        for vin, frozen in scrapped.items():
            assert frozen_view(chain, vin) == frozen, f"scrapped {vin} changed"
        for vin, v in records.items():
            if v.status == "scrapped" and vin not in scrapped:
                scrapped[vin] = frozen_view(chain, vin)
    check_replay(chain)


def check_replay(chain: Chain) -> None:
    """The same blocks into a fresh MemoryLedger: the same headers (so the same state roots,
    transactions and receipts), state and derived indexes."""
    fresh = Chain(chain.genesis)
    assert fresh.ledger.headers[0] == chain.ledger.headers[0]
    for outcome in chain.ledger.blocks[1:]:
        replayed = fresh.block(*outcome.txs, time=outcome.header.time)
        assert replayed.header == outcome.header
    assert fresh.root == chain.root
    assert fresh.ledger.state == chain.ledger.state
    assert fresh.ledger.index == chain.ledger.index


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.tuples(reading, unit), min_size=1, max_size=25))
def test_odometer_readings_alone_follow_the_rollback_rule(values: list[tuple[int, str]]) -> None:
    """Many readings of one vehicle in one block each: max_km is the highest plausible reading,
    and exactly the readings below it at their time are flagged as rollbacks."""
    chain = setup_chain()
    vin = VINS[1]  # limit 99 999 km
    highest = 0
    rollbacks = 0
    for value, u in values:
        receipt = chain.run(DEVICES[1], RecordOdometer(vin=vin, value=value, unit=u))
        assert receipt.ok
        km = to_km(value, u)
        flags = [e["flag"] for e in receipt.events if e["type"] == "vehicles.odometer_flagged"]
        if km > 99_999:
            assert flags == ["exceeds_mechanical_limits"]
        elif km < highest:
            assert flags == ["suspected_rollback"]
            rollbacks += 1
        else:
            assert flags == []
            highest = km
        assert (vehicle(chain, vin).odometer.max_km, vehicle(chain, vin).odometer.rollbacks) == (highest, rollbacks)
    check_all(chain)
