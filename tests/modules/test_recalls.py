"""Recall campaigns: who is affected, who is notified, what the remedies add up to.

Affected vehicles are resolved by SQL over the installation index, at the height the campaign
opened, so those scenarios run through one real node and its HTTP API (``net``). Each test
builds its own little world on it (part numbers prefixed with a fresh tag, fresh VINs, its own
build years where it scopes by build date), so tests never see each other's vehicles.

The rules a handler decides from state alone (refusals when opening, remedy rules, the recall
gate on installation) run on a MemoryLedger, where a refusal is also shown to change nothing.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Iterator

import msgspec
import pytest

from blokauto.core.crypto import KeyPair
from blokauto.modules.recalls.messages import CloseCampaign, RecordRemedy
from blokauto.modules.recalls.state import CAMPAIGNS, SoftwareFix
from blokauto.modules.vehicles.messages import AssignWmi, TransferTitle

from conftest import Chain, K, build_tx
from helpers.parts import (
    OEM,
    OEM2,
    REG,
    SHOP,
    SUP,
    V1,
    V2,
    W1,
    B,
    BatchRef,
    DateRange,
    PartsNode,
    Scope,
    SerialRange,
    VinRange,
    WMI,
    admin,
    assemble,
    campaign,
    install,
    mint,
    mint_batch,
    ok,
    part_type,
    parts_chain,
    receive,
    register_msg,
    remove,
    ship,
    supplied,
    vin_for,
)
from helpers.vehicles import history, snapshot

ALICE, BOB = K("alice"), K("bob")


# ---------------------------------------------------------------- one node, a small world per test


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartsNode]:
    with PartsNode(tmp_path_factory.mktemp("recalls")) as node:
        node.all(*[(REG, AssignWmi(wmi=wmi, org=org)) for org, wmi in WMI.items()])
        yield node


_tags = itertools.count(1)
_vin_numbers = itertools.count(1_000)
_years = itertools.count(2041)


class World:
    """A test's own part numbers (``T<n>-<name>``), vehicles and campaign numbers on the shared node."""

    def __init__(self, net: PartsNode) -> None:
        self.net = net
        self.tag = f"T{next(_tags)}"
        self._types: set[str] = set()

    def pn(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def number(self, name: str = "R") -> str:
        return f"{self.tag}-{name}"

    def vehicles(self, n: int, maker: str = "oem", build_date: str = "2027-01-15") -> list[str]:
        vins = [vin_for(WMI[maker], next(_vin_numbers)) for _ in range(n)]
        self.net.all(*[(admin(maker), register_msg(v, build_date=build_date)) for v in vins])
        return vins

    def _type_steps(self, pn: str, **kw: Any) -> list[tuple]:
        if pn in self._types:
            return []
        self._types.add(pn)
        return [(SUP, part_type(pn, **kw))]

    def parts(self, name: str, *serials: str, to: str = "oem", batch: str | None = None,
              assembly: bool = False) -> list[str]:
        """Serialized parts of sup's type ``name`` (in batch ``batch``, created if named), shipped to ``to``."""
        pn = self.pn(name)
        refs = [f"{pn}:{s}" for s in serials]
        steps = self._type_steps(pn, assembly=assembly)
        if batch is not None:
            steps.append((SUP, mint_batch(pn, batch, len(serials))))
        steps.append((SUP, mint(pn, *serials, batch=batch)))
        if to != "sup":
            steps += [(SUP, ship(to, *refs)), (admin(to), receive(*refs))]
        self.net.all(*steps)
        return refs

    def batch(self, name: str, batch: str, quantity: int, to: str = "oem") -> str:
        pn = self.pn(name)
        ref = f"{pn}:{batch}"
        self.net.all(*self._type_steps(pn, serialized=False), (SUP, mint_batch(pn, batch, quantity)),
                     (SUP, ship(to, ref)), (admin(to), receive(ref)))
        return ref

    def open(self, scope: Scope, by: KeyPair = OEM, name: str = "R", **kw: Any) -> tuple[int, dict[str, Any]]:
        """Open a campaign that must pass; returns (campaign id, the committed tx)."""
        out = self.net.must(by, campaign(self.number(name), scope, **kw))
        (ev,) = [e for e in out["receipt"]["events"] if e["type"] == "recalls.campaign_opened"]
        return ev["campaign"], out


def vin_range(vins: list[str]) -> VinRange:
    return VinRange(first=min(vins), last=max(vins))


# ---------------------------------------------------------------- campaign fields


def test_campaign_records_its_nhtsa_fields_and_the_affected_vehicles(net: PartsNode) -> None:
    w = World(net)
    (v,) = w.vehicles(1)
    (hose,) = w.parts("HOSE", "H1")
    net.must(OEM, install(v, hose))
    cid, out = w.open(Scope(part_numbers=[w.pn("HOSE")]), component="fuel hose (HOSE)",
                      summary="The hose may crack.", consequence="A fuel leak can cause a fire.",
                      remedy="Replace the hose.", do_not_drive=True, ota_remedy=False, units=1)
    assert out["receipt"]["events"] == [{"type": "recalls.campaign_opened", "campaign": cid, "number": w.number(),
                                         "component": "fuel hose (HOSE)", "do_not_drive": True}]
    c = net.q("recalls", "campaign", id=cid)
    assert {k: c[k] for k in ("id", "number", "manufacturer", "opened_by", "component", "summary", "consequence",
                              "remedy", "do_not_drive", "ota_remedy", "units", "opened", "status", "remedied")} == {
        "id": cid, "number": w.number(), "manufacturer": "oem", "opened_by": "oem", "component": "fuel hose (HOSE)",
        "summary": "The hose may crack.", "consequence": "A fuel leak can cause a fire.",
        "remedy": "Replace the hose.", "do_not_drive": True, "ota_remedy": False, "units": 1,
        "opened": out["height"], "status": "open", "remedied": 0}
    assert c["scope"]["part_numbers"] == [w.pn("HOSE")] and c["scope"]["manufacturer"] == "oem"
    assert c["progress"] == {"affected": 1, "remedied": 0, "outstanding": 1}
    assert any(x["id"] == cid for x in net.q("recalls", "open"))
    assert net.q("recalls", "affected", campaign=cid)["vehicles"] == [{"vin": v, "holder": "org:oem",
                                                                       "remedied": False}]


# ---------------------------------------------------------------- scope: part criteria


def test_scope_by_part_number_finds_every_vehicle_carrying_it(net: PartsNode) -> None:
    w = World(net)
    a, b, c = w.vehicles(3)
    h1, h2 = w.parts("HOSE", "H1", "H2")
    (other,) = w.parts("CLAMP", "X1")
    net.all((OEM, install(a, h1)), (OEM, install(b, h2)), (OEM, install(c, other)))
    cid, _ = w.open(Scope(part_numbers=[w.pn("HOSE")]))
    assert net.affected(cid) == [a, b]


def test_scope_by_batch_of_batch_made_parts_and_of_serialized_parts(net: PartsNode) -> None:
    w = World(net)
    a, b, c, d = w.vehicles(4)
    pads7 = w.batch("PAD", "B07", 8)
    pads8 = w.batch("PAD", "B08", 8)
    (k1,) = w.parts("PACK", "K1", batch="P1")
    (k2,) = w.parts("PACK", "K2", batch="P2")
    net.all((OEM, install(a, B(pads7, 4))), (OEM, install(b, B(pads8, 4))), (OEM, install(c, k1)),
            (OEM, install(d, k2)))
    cid, _ = w.open(Scope(batches=[BatchRef(part_number=w.pn("PAD"), batch="B07"),
                                   BatchRef(part_number=w.pn("PACK"), batch="P1")]))
    assert net.affected(cid) == sorted([a, c])


def test_scope_by_serial_range(net: PartsNode) -> None:
    w = World(net)
    vins = w.vehicles(5)
    refs = w.parts("AIRBAG", "S01", "S02", "S03", "S04", "S05")
    net.all(*[(OEM, install(v, r)) for v, r in zip(vins, refs)])
    cid, _ = w.open(Scope(serial_ranges=[SerialRange(part_number=w.pn("AIRBAG"), first="S02", last="S04")]))
    assert net.affected(cid) == vins[1:4]


def test_a_campaign_on_a_cell_batch_finds_the_vehicle_through_module_and_pack(net: PartsNode) -> None:
    w = World(net)
    v, spare = w.vehicles(2)
    cells = w.parts("CELL", "C1", "C2", "C3", to="sup", batch="CB1")
    (good,) = w.parts("CELL", "C9", to="sup", batch="CB2")
    (mod,) = w.parts("MOD", "M1", to="sup", assembly=True)
    (mod2,) = w.parts("MOD", "M2", to="sup", assembly=True)
    (pack,) = w.parts("PACK", "K1", to="sup", assembly=True)
    (pack2,) = w.parts("PACK", "K2", to="sup", assembly=True)
    net.all((SUP, assemble(mod, *cells)), (SUP, assemble(pack, mod)), (SUP, assemble(mod2, good)),
            (SUP, assemble(pack2, mod2)), (SUP, ship("oem", pack, pack2)), (OEM, receive(pack, pack2)),
            (OEM, install(v, pack)), (OEM, install(spare, pack2)))
    cid, _ = w.open(Scope(batches=[BatchRef(part_number=w.pn("CELL"), batch="CB1")]))
    assert net.affected(cid) == [v]
    serial, _ = w.open(Scope(serial_ranges=[SerialRange(part_number=w.pn("CELL"), first="C2", last="C2")]), name="S")
    assert net.affected(serial) == [v]
    by_pn, _ = w.open(Scope(part_numbers=[w.pn("MOD")]), name="M")
    assert net.affected(by_pn) == sorted([v, spare])
    assert sorted(net.q("parts", "bom", vin=v)["items"][0]["components"]) == sorted([mod, *cells])


# ---------------------------------------------------------------- scope: vehicle criteria


def test_build_dates_and_vin_ranges_narrow_part_criteria(net: PartsNode) -> None:
    w = World(net)
    early = w.vehicles(2, build_date="2027-02-01")
    late = w.vehicles(2, build_date="2027-09-01")
    hoses = w.parts("HOSE", "H1", "H2", "H3", "H4")
    net.all(*[(OEM, install(v, h)) for v, h in zip(early + late, hoses)])
    pn = [w.pn("HOSE")]
    by_date, _ = w.open(Scope(part_numbers=pn, build_dates=DateRange(first="2027-01-01", last="2027-03-31")),
                        name="D")
    assert net.affected(by_date) == early
    by_vin, _ = w.open(Scope(part_numbers=pn, vin_ranges=[vin_range([early[1], late[0]])]), name="V")
    assert net.affected(by_vin) == [early[1], late[0]]
    both, _ = w.open(Scope(part_numbers=pn, vin_ranges=[vin_range([early[1], late[0]])],
                           build_dates=DateRange(first="2027-06-01", last="2027-12-31")), name="B")
    assert net.affected(both) == [late[0]]
    two_ranges, _ = w.open(Scope(part_numbers=pn, vin_ranges=[vin_range([early[0]]), vin_range([late[1]])]),
                           name="T")
    assert net.affected(two_ranges) == [early[0], late[1]]


def test_vehicle_criteria_alone_cover_every_vehicle_they_match(net: PartsNode) -> None:
    w = World(net)
    year = next(_years)
    built = w.vehicles(2, build_date=f"{year}-05-01")
    other_year = w.vehicles(1, build_date=f"{year + 100}-05-01")
    by_date, _ = w.open(Scope(build_dates=DateRange(first=f"{year}-01-01", last=f"{year}-12-31")), name="D")
    assert net.affected(by_date) == built  # no parts needed
    by_vin, _ = w.open(Scope(vin_ranges=[vin_range(built + other_year)]), name="V")
    assert net.affected(by_vin) == built + other_year


# ---------------------------------------------------------------- point in time


def test_what_a_vehicle_carried_when_the_campaign_opened_decides(net: PartsNode) -> None:
    """a: part removed before the campaign (then fitted to c, before it too); b: part removed after."""
    w = World(net)
    a, b, c, d = w.vehicles(4)
    h1, h2 = w.parts("HOSE", "H1", "H2")
    net.all((OEM, install(a, h1)), (OEM, install(b, h2)))
    net.must(SHOP, remove(a, h1))
    net.must(SHOP, install(c, h1))
    cid, opened = w.open(Scope(part_numbers=[w.pn("HOSE")]))
    later = net.must(SHOP, remove(b, h2))
    assert later["height"] > opened["height"]
    net.must(OEM, CloseCampaign(campaign=cid))  # (an open campaign would refuse to fit h2 again)
    net.must(SHOP, install(d, h2))  # fitted after the campaign opened: d was not affected then
    assert net.affected(cid) == sorted([b, c])
    assert net.progress(cid)["affected"] == 2


def test_vehicles_registered_after_the_campaign_are_not_in_its_affected_set(net: PartsNode) -> None:
    w = World(net)
    (before,) = w.vehicles(1)
    h1, h2 = w.parts("HOSE", "H1", "H2")
    net.must(OEM, install(before, h1))
    year = next(_years)
    (dated,) = w.vehicles(1, build_date=f"{year}-03-01")
    by_part, _ = w.open(Scope(part_numbers=[w.pn("HOSE")]), name="P")
    by_date, _ = w.open(Scope(build_dates=DateRange(first=f"{year}-01-01", last=f"{year}-12-31")), name="D")
    (after,) = w.vehicles(1, build_date=f"{year}-03-02")  # matches both scopes, but too late
    net.must(OEM, CloseCampaign(campaign=by_part))  # (an open campaign would refuse to fit h2)
    net.must(OEM, install(after, h2))
    assert net.affected(by_part) == [before]
    assert net.affected(by_date) == [dated]


def test_a_vehicle_registered_after_a_campaign_cannot_be_remedied_under_it(net: PartsNode) -> None:
    w = World(net)
    year = next(_years)
    (dated,) = w.vehicles(1, build_date=f"{year}-03-01")
    cid, _ = w.open(Scope(build_dates=DateRange(first=f"{year}-01-01", last=f"{year}-12-31")))
    late = w.vehicles(2, build_date=f"{year}-03-02")
    listed = [x["campaign"] for x in net.q("recalls", "of_vehicle", vin=late[0])]
    codes = [net.send(SHOP, RecordRemedy(campaign=cid, vin=v))["receipt"]["code"] for v in late]
    assert (listed, codes, net.progress(cid)) == (
        [], ["not_affected", "not_affected"], {"affected": 1, "remedied": 0, "outstanding": 1})


# ---------------------------------------------------------------- whose vehicles


def test_a_manufacturers_campaign_covers_only_its_own_vehicles(net: PartsNode) -> None:
    w = World(net)
    (mine,) = w.vehicles(1)
    (theirs,) = w.vehicles(1, maker="oem2")
    (h1,) = w.parts("HOSE", "H1")
    (h2,) = w.parts("HOSE", "H2", to="oem2")
    net.all((OEM, install(mine, h1)), (OEM2, install(theirs, h2)))
    cid, _ = w.open(Scope(part_numbers=[w.pn("HOSE")]))
    assert net.affected(cid) == [mine]
    assert net.q("recalls", "campaign", id=cid)["manufacturer"] == "oem"
    assert net.fails(OEM, campaign(w.number("X"), Scope(part_numbers=[w.pn("HOSE")], manufacturer="oem2"))) == \
        "not_your_campaign"
    by_reg, _ = w.open(Scope(part_numbers=[w.pn("HOSE")]), by=REG, name="REG")
    assert net.affected(by_reg) == sorted([mine, theirs])
    assert net.q("recalls", "campaign", id=by_reg)["manufacturer"] == ""
    only_oem2, _ = w.open(Scope(part_numbers=[w.pn("HOSE")], manufacturer="oem2"), by=REG, name="REG2")
    assert net.affected(only_oem2) == [theirs]


# ---------------------------------------------------------------- progress and of_vehicle


def test_progress_counts_add_up_as_remedies_come_in(net: PartsNode) -> None:
    w = World(net)
    vins = w.vehicles(4)
    hoses = w.parts("HOSE", "H1", "H2", "H3", "H4")
    net.all(*[(OEM, install(v, h)) for v, h in zip(vins, hoses)])
    cid, _ = w.open(Scope(part_numbers=[w.pn("HOSE")]), ota_remedy=True, software_fix=FIX)
    assert net.progress(cid) == {"affected": 4, "remedied": 0, "outstanding": 4}
    net.must(SHOP, RecordRemedy(campaign=cid, vin=vins[0], notes="hose replaced"))
    assert net.fails(OEM, RecordRemedy(campaign=cid, vin=vins[2], method="software")) == "remedy_needs_manifest"
    net.must(SHOP, RecordRemedy(campaign=cid, vin=vins[2], notes="hose controller reflashed at the workshop"))
    assert net.fails(SHOP, RecordRemedy(campaign=cid, vin=vins[0])) == "already_remedied"
    res = net.q("recalls", "affected", campaign=cid)
    assert res["progress"] == {"affected": 4, "remedied": 2, "outstanding": 2}
    assert [x["remedied"] for x in res["vehicles"]] == [True, False, True, False]
    page = net.q("recalls", "affected", campaign=cid, limit=2, offset=2)
    assert [x["vin"] for x in page["vehicles"]] == vins[2:]
    net.must(OEM, CloseCampaign(campaign=cid, reason="done"))
    c = net.q("recalls", "campaign", id=cid)
    assert c["status"] == "closed" and c["progress"] == {"affected": 4, "remedied": 2, "outstanding": 2}


def test_of_vehicle_lists_its_open_campaigns_and_whether_each_is_remedied(net: PartsNode) -> None:
    w = World(net)
    v, other = w.vehicles(2)
    (hose,) = w.parts("HOSE", "H1")
    (clamp,) = w.parts("CLAMP", "X1")
    net.all((OEM, install(v, hose, clamp)))
    hose_c, _ = w.open(Scope(part_numbers=[w.pn("HOSE")]), name="H", do_not_drive=True)
    clamp_c, _ = w.open(Scope(part_numbers=[w.pn("CLAMP")]), name="C")
    net.must(SHOP, RecordRemedy(campaign=clamp_c, vin=v))
    listed = {x["campaign"]: x for x in net.q("recalls", "of_vehicle", vin=v)}
    assert set(listed) == {hose_c, clamp_c}
    assert (listed[hose_c]["remedied"], listed[hose_c]["do_not_drive"]) == (False, True)
    assert listed[clamp_c]["remedied"] is True and listed[clamp_c]["number"] == w.number("C")
    assert net.q("recalls", "of_vehicle", vin=other) == []
    net.must(OEM, CloseCampaign(campaign=hose_c))
    assert [x["campaign"] for x in net.q("recalls", "of_vehicle", vin=v)] == [clamp_c]


# ---------------------------------------------------------------- notifications on the event stream


def _notified_world(net: PartsNode) -> tuple[World, int, dict[str, Any], list[str]]:
    """Three affected vehicles (one sold to alice before the campaign) and one unaffected."""
    w = World(net)
    vins = w.vehicles(4)
    hoses = w.parts("HOSE", "H1", "H2", "H3")
    net.all(*[(OEM, install(v, h)) for v, h in zip(vins, hoses)])
    net.must(OEM, TransferTitle(vin=vins[1], to=ALICE.did), ALICE)
    cid, opened = w.open(Scope(part_numbers=[w.pn("HOSE")]), do_not_drive=True)
    return w, cid, opened, vins


def test_campaign_opened_is_followed_by_one_notification_per_affected_owner(net: PartsNode) -> None:
    w, cid, opened, vins = _notified_world(net)
    # after the campaign, alice sells to bob: the notification still names alice, the holder then
    net.must(ALICE, TransferTitle(vin=vins[1], to=BOB.did), BOB)
    marker = net.must(SUP, mint(w.pn("HOSE"), "MARK"))
    with net.events(from_height=opened["height"]) as s:
        got = s.until(lambda e: e[2]["tx"] == marker["id"])
    ours = [i for i, e in enumerate(got) if e[2]["tx"] == opened["id"]]
    assert ours == list(range(ours[0], ours[0] + 4)), "the notifications follow the campaign event at once"
    (eid, etype, data), *notes = [got[i] for i in ours]
    assert etype == "recalls.campaign_opened" and data["campaign"] == cid
    assert [n[1] for n in notes] == ["recalls.owner_notified"] * 3
    assert [n[0] for n in notes] == [f"{eid}:{k}" for k in (1, 2, 3)]
    assert [(n[2]["vin"], n[2]["holder"]) for n in notes] == [(vins[0], "org:oem"), (vins[1], ALICE.did),
                                                              (vins[2], "org:oem")]
    for n in notes:
        assert {k: n[2][k] for k in ("campaign", "number", "do_not_drive", "height", "tx")} == {
            "campaign": cid, "number": w.number(), "do_not_drive": True, "height": opened["height"],
            "tx": opened["id"]}
    assert [x["holder"] for x in net.q("recalls", "affected", campaign=cid)["vehicles"]][1] == ALICE.did


def test_notifications_resume_with_last_event_id_in_the_middle_of_them(net: PartsNode) -> None:
    w, cid, opened, vins = _notified_world(net)
    marker = net.must(SUP, mint(w.pn("HOSE"), "MARK"))
    with net.events(from_height=opened["height"]) as s:
        full = s.until(lambda e: e[2]["tx"] == marker["id"])
    start = next(i for i, e in enumerate(full) if e[2]["tx"] == opened["id"])
    cut = full[start + 1][0]  # after the first notification
    assert cut.endswith(":1")
    with net.events(last_event_id=cut) as s:
        rest = s.until(lambda e: e[2]["tx"] == marker["id"])
    assert rest == full[start + 2:]
    assert [e[2]["vin"] for e in rest[:2]] == vins[1:3]
    with net.events(last_event_id=full[start][0]) as s:  # right after the campaign event: every notification
        assert s.until(lambda e: e[2]["tx"] == marker["id"]) == full[start + 1:]


def test_a_client_connecting_before_the_state_flush_still_gets_every_notification(net: PartsNode) -> None:
    w = World(net)
    (v,) = w.vehicles(1)
    (hose,) = w.parts("HOSE", "H1")
    net.must(OEM, install(v, hose))
    net.flushed()
    store = net.node.committer.state
    release = threading.Event()
    write_layer = store._write_layer

    def held(layer: Any) -> None:  # the state flusher waits here until released: state.db stays behind
        release.wait(60)
        write_layer(layer)

    from blokauto.node.event_feed import HeightWaiter

    async def waits(self: Any, height: int, timeout: float) -> bool:  # whoever waits for the flush gets it
        release.set()
        return await wait_flushed(self, height, timeout)

    wait_flushed = HeightWaiter.wait
    store._write_layer = held
    HeightWaiter.wait = waits  # type: ignore[method-assign]
    try:
        cid, opened = w.open(Scope(part_numbers=[w.pn("HOSE")]))
        with net.events(from_height=opened["height"]) as s:
            (first,) = s.take(1)  # the catch-up is built now, while state.db is behind the campaign
            release.set()
            marker = net.must(SUP, mint(w.pn("HOSE"), "MARK"))
            rest = s.until(lambda e: e[2]["tx"] == marker["id"])
    finally:
        release.set()
        del store._write_layer
        HeightWaiter.wait = wait_flushed  # type: ignore[method-assign]
    assert (first[1], first[2]["campaign"]) == ("recalls.campaign_opened", cid)
    notes = [e for e in rest if e[2]["tx"] == opened["id"]]
    assert [(e[0], e[2]["vin"]) for e in notes] == [(first[0] + ":1", v)]


# ---------------------------------------------------------------- state rules on a MemoryLedger


def recall_chain() -> Chain:
    """``supplied`` plus: V2 (oem) and W1 (oem2); oem fits BRK:S1 and 2 units of PAD:B1 to V1,
    BRK:S2 to V2; oem2 fits BRK:S6 to W1. BRK:S3 and PAD:B1 stock stay at oem."""
    chain = parts_chain()
    supplied(chain)
    ok(chain, OEM, register_msg(V2))
    ok(chain, OEM2, register_msg(W1))
    ok(chain, SUP, mint("BRK", "S6"))
    ok(chain, SUP, ship("oem2", "BRK:S6"))
    ok(chain, OEM2, receive("BRK:S6"))
    ok(chain, OEM, install(V1, "BRK:S1", B("PAD:B1", 2)))
    ok(chain, OEM, install(V2, "BRK:S2"))
    ok(chain, OEM2, install(W1, "BRK:S6"))
    return chain


FIX = SoftwareFix(hardware_id="brk-ctl", min_release_counter=3)


def brk_recall(number: str = "R-1", **kw: Any) -> Any:
    return campaign(number, Scope(part_numbers=["BRK"]), **kw)


def opened(chain: Chain, msg: Any, by: KeyPair = OEM) -> int:
    r = ok(chain, by, msg)
    return next(e["campaign"] for e in r.events if e["type"] == "recalls.campaign_opened")


@pytest.mark.parametrize("sender,scope,code", [
    pytest.param(OEM, Scope(), "empty_scope", id="empty_scope"),
    pytest.param(REG, Scope(manufacturer="oem"), "empty_scope", id="only_a_manufacturer_is_no_scope"),
    pytest.param(OEM, Scope(part_numbers=["CELL"]), "scope_matches_nothing", id="part_number_minted_not_installed"),
    pytest.param(OEM, Scope(part_numbers=["NOPE"]), "scope_matches_nothing", id="unknown_part_number"),
    pytest.param(OEM, Scope(batches=[BatchRef(part_number="PAD", batch="B9")]), "scope_matches_nothing",
                 id="unknown_batch"),
    pytest.param(OEM, Scope(batches=[BatchRef(part_number="CELL", batch="C1")]), "scope_matches_nothing",
                 id="batch_not_installed"),
    pytest.param(OEM, Scope(serial_ranges=[SerialRange(part_number="BRK", first="S9", last="S1")]),
                 "scope_matches_nothing", id="inverted_serial_range"),
    pytest.param(OEM, Scope(serial_ranges=[SerialRange(part_number="CELL", first="C-1", last="C-3")]),
                 "scope_matches_nothing", id="serial_range_of_a_part_number_not_installed"),
    pytest.param(OEM, Scope(build_dates=DateRange(first="2027-12-31", last="2027-01-01")), "scope_matches_nothing",
                 id="inverted_build_dates"),
    pytest.param(OEM, Scope(vin_ranges=[VinRange(first=V2, last=V1)]), "scope_matches_nothing",
                 id="inverted_vin_range"),
    pytest.param(OEM, Scope(part_numbers=["BRK"], manufacturer="oem2"), "not_your_campaign",
                 id="manufacturer_recalls_another_makers_vehicles"),
])
def test_opening_a_campaign_is_refused(sender: KeyPair, scope: Scope, code: str) -> None:
    chain = recall_chain()
    before = snapshot(chain)
    raw = build_tx(sender, campaign("R-9", scope))
    receipt = chain.block(raw).receipts[0]
    assert (receipt.ok, receipt.code) == (False, code), receipt
    assert snapshot(chain) == before
    assert chain.block(raw).receipts[0].code == "replayed_tx"


def test_a_campaign_number_is_used_once_even_after_closing() -> None:
    chain = recall_chain()
    cid = opened(chain, brk_recall("24V-117"))
    assert chain.run(REG, brk_recall("24V-117")).code == "campaign_number_taken"
    ok(chain, OEM, CloseCampaign(campaign=cid))
    r = chain.run(OEM, brk_recall("24V-117"))
    assert (r.code, r.detail["campaign"]) == ("campaign_number_taken", cid)
    assert opened(chain, brk_recall("24V-118")) == cid + 1


def test_closing_rules() -> None:
    chain = recall_chain()
    cid = opened(chain, brk_recall())
    assert chain.run(OEM2, CloseCampaign(campaign=cid)).code == "not_your_campaign"
    assert chain.run(OEM, CloseCampaign(campaign=99)).code == "unknown_campaign"
    r = ok(chain, OEM, CloseCampaign(campaign=cid, reason="all remedied"))
    assert r.events == [{"type": "recalls.campaign_closed", "campaign": cid}]
    assert chain.run(OEM, CloseCampaign(campaign=cid)).code == "campaign_closed"
    assert CAMPAIGNS.get(chain.ledger, cid).status == "closed"
    reg_closes = opened(chain, brk_recall("R-2"))
    ok(chain, REG, CloseCampaign(campaign=reg_closes))


def _closed(chain: Chain) -> None:
    ok(chain, OEM, CloseCampaign(campaign=1))


def _remedied(chain: Chain) -> None:
    ok(chain, SHOP, RecordRemedy(campaign=1, vin=V1))


@pytest.mark.parametrize("setup,msg,code", [
    pytest.param(None, RecordRemedy(campaign=1, vin=W1), "not_affected", id="another_makers_vehicle"),
    pytest.param(None, RecordRemedy(campaign=1, vin=vin_for("WVW", 77)), "not_affected", id="unknown_vehicle"),
    pytest.param(None, RecordRemedy(campaign=1, vin="WVW/1"), "not_affected", id="vin_with_a_slash"),
    pytest.param(None, RecordRemedy(campaign=2, vin=V1), "not_affected", id="vehicle_without_the_part"),
    pytest.param(_remedied, RecordRemedy(campaign=1, vin=V1), "already_remedied", id="remedied_twice"),
    pytest.param(_closed, RecordRemedy(campaign=1, vin=V1), "campaign_closed", id="campaign_closed"),
    pytest.param(None, RecordRemedy(campaign=9, vin=V1), "unknown_campaign", id="unknown_campaign"),
    pytest.param(None, RecordRemedy(campaign=1, vin=V1, method="software"), "not_your_campaign",
                 id="software_remedy_without_ota_remedy"),
])
def test_remedy_is_refused(setup: Any, msg: RecordRemedy, code: str) -> None:
    chain = recall_chain()
    opened(chain, brk_recall("R-1"))  # campaign 1: BRK in oem's vehicles, workshop remedy only
    opened(chain, campaign("R-2", Scope(serial_ranges=[SerialRange(part_number="BRK", first="S2", last="S2")])))
    if setup is not None:
        setup(chain)
    before = snapshot(chain)
    raw = build_tx(SHOP, msg)
    receipt = chain.block(raw).receipts[0]
    assert (receipt.ok, receipt.code) == (False, code), receipt
    assert snapshot(chain) == before
    assert chain.block(raw).receipts[0].code == "replayed_tx"


def test_a_remedy_is_recorded_on_the_campaign_and_in_the_vehicle_history() -> None:
    chain = recall_chain()
    cid = opened(chain, brk_recall(ota_remedy=True, software_fix=FIX))
    r = ok(chain, SHOP, RecordRemedy(campaign=cid, vin=V1, notes="replaced"))
    assert {"type": "recalls.remedied", "campaign": cid, "vin": V1} in r.events
    assert CAMPAIGNS.get(chain.ledger, cid).remedied == 1
    entry = history(chain, V1)[-1]
    assert (entry["type"], entry["org"], entry["data"]) == ("recall_remedied", "shop",
                                                            {"campaign": cid, "number": "R-1", "method": "workshop"})


def test_an_over_the_air_remedy_is_the_vehicles_manifest_not_the_makers_word() -> None:
    chain = recall_chain()
    before_open = snapshot(chain)
    assert chain.block(build_tx(OEM, brk_recall(ota_remedy=True))).receipts[0].code == "software_fix_required"
    assert snapshot(chain) == before_open
    cid = opened(chain, brk_recall(ota_remedy=True, software_fix=FIX))
    before = snapshot(chain)
    r = chain.block(build_tx(OEM, RecordRemedy(campaign=cid, vin=V2, method="software"))).receipts[0]
    assert (r.code, r.detail) == ("remedy_needs_manifest", {"campaign": cid, "hardware_id": "brk-ctl",
                                                            "min_release_counter": 3})
    assert snapshot(chain) == before


def test_a_part_removed_after_the_campaign_opened_still_needs_its_remedy() -> None:
    chain = recall_chain()
    cid = opened(chain, brk_recall())
    ok(chain, SHOP, remove(V1, "BRK:S1"))
    ok(chain, SHOP, RecordRemedy(campaign=cid, vin=V1, notes="part already swapped"))


# ---------------------------------------------------------------- the recall gate on installation


def test_installing_a_recalled_part_is_refused_until_the_campaign_closes() -> None:
    chain = recall_chain()
    cid = opened(chain, campaign("R-1", Scope(serial_ranges=[SerialRange(part_number="BRK", first="S1", last="S3")])))
    before = snapshot(chain)
    r = chain.run(OEM, install(V2, "BRK:S3"))
    assert (r.ok, r.code, r.detail["campaign"], r.detail["number"]) == (False, "recalled_part", cid, "R-1")
    assert snapshot(chain) == before
    ok(chain, SUP, mint("BRK", "S7"))
    ok(chain, SUP, ship("oem", "BRK:S7"))
    ok(chain, OEM, receive("BRK:S7"))
    ok(chain, OEM, install(V2, "BRK:S7"))  # outside the serial range
    ok(chain, OEM, CloseCampaign(campaign=cid))
    ok(chain, OEM, install(V2, "BRK:S3"))


def test_the_gate_follows_the_campaigns_scope() -> None:
    chain = recall_chain()
    w2 = vin_for(WMI["oem2"], 2)
    ok(chain, OEM2, register_msg(w2))
    ok(chain, OEM, ship("oem2", "BRK:S3"))
    ok(chain, OEM2, receive("BRK:S3"))
    opened(chain, brk_recall())  # oem's campaign covers oem's vehicles only
    ok(chain, OEM2, install(w2, "BRK:S3"))
    opened(chain, campaign("R-2", Scope(batches=[BatchRef(part_number="PAD", batch="B1")])))
    assert chain.run(OEM, install(V2, B("PAD:B1", 2))).code == "recalled_part"  # batch units too


def test_the_gate_spares_vehicles_outside_the_vehicle_criteria() -> None:
    chain = recall_chain()
    opened(chain, campaign("R-1", Scope(part_numbers=["BRK"], vin_ranges=[VinRange(first=V1, last=V1)])), by=REG)
    ok(chain, SUP, mint("BRK", "S7"))
    ok(chain, SUP, ship("oem", "BRK:S7"))
    ok(chain, OEM, receive("BRK:S7"))
    assert chain.run(OEM, install(V1, "BRK:S7")).code == "recalled_part"
    ok(chain, OEM, install(V2, "BRK:S7"))


def test_a_pack_holding_recalled_cells_cannot_be_installed() -> None:
    chain = recall_chain()
    ok(chain, SUP, assemble("PACK:K1", "CELL:C-1", "CELL:C-2"))
    ok(chain, SUP, part_type("PACK2", assembly=True))
    ok(chain, SUP, mint("PACK2", "Q1"))
    ok(chain, SUP, assemble("PACK2:Q1", "CELL:C-3"))
    ok(chain, SUP, ship("oem", "PACK:K1", "PACK2:Q1"))
    ok(chain, OEM, receive("PACK:K1", "PACK2:Q1"))
    ok(chain, OEM, install(V1, "PACK:K1"))
    cid = opened(chain, campaign("CELLS", Scope(batches=[BatchRef(part_number="CELL", batch="C1")])))
    r = chain.run(OEM, install(V2, "PACK2:Q1"))  # C-3 is of the recalled batch C1
    assert (r.ok, r.code) == (False, "recalled_part"), r
    assert r.detail["campaign"] == cid


def test_a_component_added_to_a_pack_after_it_left_a_vehicle_does_not_make_that_vehicle_affected() -> None:
    chain = recall_chain()
    ok(chain, SUP, mint_batch("CELL", "D1", 2))
    ok(chain, SUP, mint("CELL", "D-1", "D-2", batch="D1"))
    ok(chain, SUP, assemble("PACK:K1", "CELL:C-1"))
    ok(chain, SUP, ship("oem", "PACK:K1", "CELL:D-1"))
    ok(chain, OEM, receive("PACK:K1", "CELL:D-1"))
    ok(chain, OEM, install(V1, "PACK:K1"))
    ok(chain, OEM, install(V2, "CELL:D-1"))
    cid = opened(chain, campaign("D-CELLS", Scope(batches=[BatchRef(part_number="CELL", batch="D1")])))
    # V1 carried PACK:K1 (with C-1 only) when the campaign opened; the pack then leaves and gains D-2
    ok(chain, SHOP, remove(V1, "PACK:K1"))
    ok(chain, SHOP, ship("sup", "PACK:K1"))
    ok(chain, SUP, receive("PACK:K1"))
    ok(chain, SUP, assemble("PACK:K1", "CELL:D-2"))
    ok(chain, SHOP, RecordRemedy(campaign=cid, vin=V2))  # V2 really carried a D1 cell
    r = chain.run(SHOP, RecordRemedy(campaign=cid, vin=V1))
    assert (r.ok, r.code) == (False, "not_affected"), r


# ---------------------------------------------------------------- scopes that cover no vehicle: previewed and flagged
# Whether a scope covers a vehicle is only known from the installation record (a derived index), which
# a transaction cannot read; so the ledger refuses what is provably empty (above) and otherwise lets a
# scope be checked before opening (recalls.preview) and flags a campaign that covered nothing.


def _covers_nothing(w: World, kind: str) -> tuple[KeyPair, Scope]:
    year = next(_years)
    (v,) = w.vehicles(1, build_date=f"{year}-06-01")
    (v2,) = w.vehicles(1, maker="oem2", build_date=f"{year}-06-01")
    brk = w.parts("BRK", "S1", "S2", "S3")
    pads = w.parts("PAD", "P1", to="oem2")
    w.net.all((OEM, install(v, brk[0])), (admin("oem2"), install(v2, pads[0])))
    return {
        "serial_range_where_no_serial_is_installed":
            (OEM, Scope(serial_ranges=[SerialRange(part_number=w.pn("BRK"), first="S2", last="S3")])),
        "vin_range_without_vehicles": (OEM, Scope(vin_ranges=[VinRange(first=vin_for("WVW", 900_000),
                                                                       last=vin_for("WVW", 900_100))])),
        "build_dates_without_vehicles": (OEM, Scope(build_dates=DateRange(first="1990-01-01", last="1990-12-31"))),
        "manufacturer_scope_on_parts_only_in_other_makers_vehicles": (OEM, Scope(part_numbers=[w.pn("PAD")])),
        "vehicle_criteria_exclude_every_carrier":
            (OEM, Scope(part_numbers=[w.pn("BRK")], build_dates=DateRange(first="1990-01-01", last="1990-12-31"))),
    }[kind]


@pytest.mark.parametrize("kind", ["serial_range_where_no_serial_is_installed", "vin_range_without_vehicles",
                                  "build_dates_without_vehicles",
                                  "manufacturer_scope_on_parts_only_in_other_makers_vehicles",
                                  "vehicle_criteria_exclude_every_carrier"])
def test_a_scope_that_covers_no_vehicle_is_previewed_as_empty_and_flagged_when_opened(net: PartsNode,
                                                                                    kind: str) -> None:
    w = World(net)
    sender, scope = _covers_nothing(w, kind)
    narrowed = msgspec.structs.replace(scope, manufacturer="oem")  # what oem's campaign covers
    assert net.q("recalls", "preview", scope=msgspec.json.encode(narrowed).decode()) | {"height": 0} == {
        "height": 0, "affected": 0, "first": []}
    cid, opened = w.open(scope, by=sender)
    marker = net.must(SUP, mint(w.pn("BRK"), "MARK"))
    with net.events(from_height=opened["height"]) as s:
        got = s.until(lambda e: e[2]["tx"] == marker["id"])
    ours = [(t, d) for _, t, d in got if d["tx"] == opened["id"]]
    assert [t for t, _ in ours] == ["recalls.campaign_opened", "recalls.scope_matched_nothing"]
    assert {k: ours[1][1][k] for k in ("campaign", "number", "opened_by")} == {
        "campaign": cid, "number": w.number(), "opened_by": "oem"}
    assert net.progress(cid) == {"affected": 0, "remedied": 0, "outstanding": 0}


def test_preview_counts_what_a_campaign_opened_now_would_cover(net: PartsNode) -> None:
    w = World(net)
    year = next(_years)
    vins = w.vehicles(3, build_date=f"{year}-02-01")
    hoses = w.parts("HOSE", "H1", "H2", "H3")
    net.all(*[(OEM, install(v, h)) for v, h in zip(vins, hoses)])
    scope = Scope(part_numbers=[w.pn("HOSE")])
    got = net.q("recalls", "preview", scope=msgspec.json.encode(scope).decode(), limit=2)
    assert (got["affected"], [x["vin"] for x in got["first"]]) == (3, sorted(vins)[:2])
    cid, _ = w.open(scope)
    assert net.progress(cid)["affected"] == got["affected"]


@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '{"part_numbers": "BRK"}'])
def test_a_preview_with_a_malformed_scope_is_a_clear_400(net: PartsNode, value: str) -> None:
    r = net.http.get("/v1/q/recalls/preview", params={"scope": value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_query", r.text
    assert "scope" in r.json()["error"]["message"]


def test_two_campaigns_on_one_part_number_gate_until_each_closes() -> None:
    """The part-number index keeps every open campaign naming a part number: closing one leaves the
    other's gate in place (and the closed one's block is on record); closing both lifts it."""
    chain = recall_chain()
    first = opened(chain, campaign("R-1", Scope(serial_ranges=[SerialRange(part_number="BRK", first="S3", last="S3")])))
    second = opened(chain, campaign("R-2", Scope(serial_ranges=[SerialRange(part_number="BRK", first="S3", last="S4")])))
    third = opened(chain, campaign("R-3", Scope(part_numbers=["PAD"])))
    assert chain.run(OEM, install(V2, "BRK:S3")).detail["campaign"] == first
    ok(chain, OEM, CloseCampaign(campaign=first))
    assert CAMPAIGNS.get(chain.ledger, first).closed == chain.ledger.head.height  # the block that closed it
    r = chain.run(OEM, install(V2, "BRK:S3"))
    assert (r.code, r.detail["campaign"]) == ("recalled_part", second)  # the second still gates it
    ok(chain, OEM, CloseCampaign(campaign=third))  # closing a campaign on another part number changes nothing
    assert chain.run(OEM, install(V2, "BRK:S3")).detail["campaign"] == second
    ok(chain, OEM, CloseCampaign(campaign=second))
    ok(chain, OEM, install(V2, "BRK:S3"))


def test_a_one_day_build_date_range_is_a_scope() -> None:
    chain = recall_chain()
    day = "2027-01-15"  # the build date of every vehicle register_msg makes
    cid = opened(chain, campaign("R-1", Scope(build_dates=DateRange(first=day, last=day))))
    assert CAMPAIGNS.get(chain.ledger, cid).scope.build_dates == DateRange(first=day, last=day)
