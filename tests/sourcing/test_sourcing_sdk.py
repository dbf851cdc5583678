"""The sourcing SDK against a live node: cobalt from two mines through concentration and refining
into a cell batch and a pack, handoffs with places and declared times, origins recomputed from
proven state, a passport proven by the pack's buyer."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from blokauto.client import Client
from blokauto.client.sourcing import Sourcing

from helpers.cobalt import cobalt_world, world_of
from helpers.parts import OEM, SUP, SUP2

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = cobalt_world(tmp_path_factory.mktemp("sourcing"))
    try:
        yield world_of(node)
    finally:
        node.close()


def sdk(world: dict[str, Any], key: Any) -> Sourcing:
    return Sourcing(Client(world["url"], key=key, trust=world["genesis"]))


def test_the_pack_makers_origin_is_recomputed_from_proven_state_and_matches(world: dict[str, Any]) -> None:
    got = sdk(world, SUP).origin("PACK:P1")
    assert got.verified and not got.unreadable
    (cobalt,) = got.answer["materials"]
    shares = {o["mine"]: o["ppm"] for o in cobalt["origins"]}
    assert shares == {"Kamoto": 250_000, "Murrin Murrin": 750_000}  # 10 t and 30 t of ore, by mass balance
    assert cobalt["recycled_ppm"] == 0
    assert all(o["attestations"][0]["result"] == "conformant" for o in cobalt["origins"])
    assert "parts/lot/ORE-1" in got.proven and "parts/b/CELL:C1" in got.proven


def test_the_buyer_reads_the_origin_but_cannot_prove_upstream_lots_it_is_no_party_to(world: dict[str, Any]) -> None:
    got = sdk(world, OEM).origin("PACK:P1")
    assert not got.verified
    assert got.unreadable and all(code == "not_a_party" for code in got.unreadable.values())
    assert "parts/p/PACK:P1" in got.proven


def test_the_passport_is_proven_for_the_buyer_with_the_computed_origins(world: dict[str, Any]) -> None:
    p = sdk(world, OEM).passport("PACK:P1")
    assert (p["manufacturer"], p["issuer"], p["chemistry"], p["version"]) == ("sup", SUP.did, "NMC811", 1)
    assert {m["mine"]: m["ppm"] for m in p["materials"]} == {"Kamoto": 250_000, "Murrin Murrin": 750_000}
    assert p["recycled"] == [{"material": "cobalt", "ppm": 0}]
    assert {a["lot"] for a in p["attestations"]} == {"ORE-1", "ORE-2"}  # REF-1, consumed by the cells, was not audited
    with pytest.raises(LookupError):
        sdk(world, OEM).passport("PACK:P9")


def test_route_legs_lanes_and_transit_report_the_declared_times(world: dict[str, Any]) -> None:
    s = sdk(world, SUP2)
    route = s.route("CONC-1")
    made, shipped, received = route["handoffs"]
    assert [h["kind"] for h in route["handoffs"]] == ["made", "shipped", "received"]
    assert (shipped["party"], shipped["receiver"], received["party"]) == ("org:sup", "org:sup2", "org:sup2")
    assert shipped["held_ms"] == shipped["time"] - made["time"]  # the dwell at the maker
    (leg,) = route["legs"]
    assert (leg["origin"], leg["destination"]) == ("TZDAR", "FIKOK")
    assert leg["duration_ms"] == received["time"] - shipped["time"] > 0
    assert route["stays"][0]["dwell_ms"] == shipped["held_ms"]
    assert route["now"] == {"in_transit": False, "custodian": "org:sup2", "location": "FIKOK"}
    durations = [leg["duration_ms"] for leg in sdk(world, SUP).legs(supplier="sup")["legs"]]
    assert durations == sorted(durations, reverse=True) and len(durations) == 2  # CONC-1 and PACK:P1
    lanes = sdk(world, SUP).lanes(supplier="sup")["lanes"]
    assert {(x["origin"], x["destination"], x["legs"]) for x in lanes} == {("TZDAR", "FIKOK", 1), ("HUPEC", "DEMUC", 1)}
    assert sdk(world, SUP).in_transit(supplier="sup")["items"] == 0
    pack = sdk(world, OEM).route("PACK:P1")
    assert pack["legs"][0]["origin"] == "HUPEC" and pack["legs"][0]["destination"] == "DEMUC"


def test_a_reader_outside_the_supply_chain_is_refused_legs(world: dict[str, Any]) -> None:
    from blokauto.core.errors import BlokautoError

    with pytest.raises(BlokautoError) as err:
        sdk(world, OEM).legs(supplier="sup")
    assert err.value.code == "not_a_party"

