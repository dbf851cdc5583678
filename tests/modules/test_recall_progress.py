"""A campaign's progress over time (``recalls progress``) and its remedies (``recalls remedies``).

``progress`` counts the vehicles remedied so far at each block height where the count changed,
from the remedied index (campaign, vin, height); a long history is downsampled by position, with
integers only, keeping the first and the last point. ``remedies`` lists who remedied which vehicle,
how and at which block. Both are read by the campaign's manufacturer and opener (and regulators,
police): the same parties as ``affected``. They run through one real node (SQL over the index),
each test with its own part numbers and VINs, as ``test_recalls`` does.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator

import pytest
from hypothesis import given, strategies as st

from blokauto.core.crypto import KeyPair
from blokauto.modules.recalls import queries
from blokauto.modules.recalls.messages import RecordRemedy
from blokauto.modules.recalls.queries import PROGRESS_POINTS_MAX, downsample
from blokauto.modules.vehicles.messages import AssignWmi

from conftest import signed, signed_client
from helpers.parts import (
    OEM,
    OEM2,
    REG,
    SHOP,
    SUP,
    WMI,
    PartsNode,
    Scope,
    admin,
    campaign,
    install,
    mint,
    part_type,
    receive,
    register_msg,
    ship,
    vin_for,
)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartsNode]:
    with PartsNode(tmp_path_factory.mktemp("recall-progress")) as node:
        node.all(*[(REG, AssignWmi(wmi=wmi, org=org)) for org, wmi in WMI.items()])
        yield node


_tags = itertools.count(1)
_vins = itertools.count(5_000)


def hose_campaign(net: PartsNode, n: int, *, by: KeyPair = OEM, maker: str = "oem") -> tuple[int, int, list[str]]:
    """``n`` vehicles of ``maker``, each fitted with a hose of a fresh part number, and a campaign on
    that part number opened by ``by``: (campaign id, the height it opened at, the VINs)."""
    tag = f"P{next(_tags)}"
    pn = f"{tag}-HOSE"
    vins = [vin_for(WMI[maker], next(_vins)) for _ in range(n)]
    refs = [f"{pn}:H{i}" for i in range(n)]
    net.all((SUP, part_type(pn)), (SUP, mint(pn, *[r.split(":")[1] for r in refs])),
            (SUP, ship(maker, *refs)), (admin(maker), receive(*refs)),
            *[(admin(maker), register_msg(v)) for v in vins],
            *[(admin(maker), install(v, r)) for v, r in zip(vins, refs)])
    out = net.must(by, campaign(f"{tag}-R", Scope(part_numbers=[pn])))
    (ev,) = [e for e in out["receipt"]["events"] if e["type"] == "recalls.campaign_opened"]
    return ev["campaign"], out["height"], vins


def read(net: PartsNode, key: KeyPair, name: str, **params: Any) -> tuple[int, Any]:
    """(HTTP status, result or error) of ``recalls <name>`` asked with ``key``."""
    net.flushed()
    with signed(net.url, key) as http:
        r = http.get(f"/v1/q/recalls/{name}", params=params)
    body = r.json()
    return r.status_code, body["result"] if r.status_code == 200 else body["error"]


# ---------------------------------------------------------------- downsampling (pure)


@pytest.mark.parametrize("n, limit, kept", [
    (0, 200, []),
    (1, 200, [0]),
    (200, 200, list(range(200))),                      # exactly the limit: every point
    (201, 200, [i * 200 // 199 for i in range(200)]),  # one too many: evenly spaced, first and last kept
    (10, 2, [0, 9]),                                   # the smallest limit: the first and the last
    (10, 4, [0, 3, 6, 9]),
    (7, 3, [0, 3, 6]),
])
def test_a_long_history_is_downsampled_by_position_keeping_the_first_and_the_last(n: int, limit: int,
                                                                                   kept: list[int]) -> None:
    points = [(10 + 3 * i, i + 1) for i in range(n)]
    assert downsample(points, limit) == [points[i] for i in kept]


@given(st.lists(st.integers(1, 5), max_size=600), st.integers(2, 250))
def test_downsampling_keeps_order_ends_and_at_most_the_limit(steps: list[int], limit: int) -> None:
    heights = list(itertools.accumulate(steps))
    points = [(h, i + 1) for i, h in enumerate(heights)]
    out = downsample(points, limit)
    assert len(out) == min(len(points), limit)
    assert out == sorted(set(out)) and set(out) <= set(points)  # distinct points of the input, in order
    if points:
        assert (out[0], out[-1]) == (points[0], points[-1])


# ---------------------------------------------------------------- through a node


def test_progress_of_a_campaign_nobody_remedied_yet_is_its_affected_count_and_no_point(net: PartsNode) -> None:
    cid, opened, vins = hose_campaign(net, 3)
    status, p = read(net, OEM, "progress", campaign=cid)
    assert status == 200
    _, c = read(net, OEM, "campaign", id=cid)
    assert p == {"campaign": cid, "number": c["number"], "opened": opened, "closed": 0, "affected": 3,
                 "remedied": 0, "changes": 0, "points": []}


def test_progress_counts_remedies_per_block_height_and_ends_at_the_campaigns_count(net: PartsNode) -> None:
    cid, opened, vins = hose_campaign(net, 5)
    heights = [net.must(SHOP, RecordRemedy(campaign=cid, vin=v, notes=f"hose {i} replaced"))["height"]
               for i, v in enumerate(vins[:2])]
    heights += [r["height"] for r in net.all(*[(SHOP, RecordRemedy(campaign=cid, vin=v)) for v in vins[2:4]])]
    expected, total = [], 0
    for h, group in itertools.groupby(heights):
        total += len(list(group))
        expected.append({"height": h, "remedied": total})
    _, p = read(net, OEM, "progress", campaign=cid)
    assert (p["opened"], p["affected"], p["remedied"], p["changes"]) == (opened, 5, 4, len(expected))
    assert p["points"] == expected
    assert all(pt["height"] > opened for pt in p["points"])
    _, c = read(net, OEM, "campaign", id=cid)
    assert c["remedied"] == p["points"][-1]["remedied"] == 4  # the index agrees with the campaign record


def test_remedies_list_who_remedied_which_vehicle_how_and_at_which_block(net: PartsNode) -> None:
    cid, _, vins = hose_campaign(net, 3)
    first = net.must(SHOP, RecordRemedy(campaign=cid, vin=vins[2], notes="hose replaced"))
    second = net.must(SHOP, RecordRemedy(campaign=cid, vin=vins[0]))
    _, r = read(net, OEM, "remedies", campaign=cid)
    assert r["remedied"] == 2
    assert r["remedies"] == [
        {"campaign": cid, "vin": vins[2], "by": "shop", "method": "workshop", "height": first["height"],
         "notes": "hose replaced"},
        {"campaign": cid, "vin": vins[0], "by": "shop", "method": "workshop", "height": second["height"], "notes": ""},
    ]
    _, page = read(net, OEM, "remedies", campaign=cid, limit=1, offset=1)
    assert [x["vin"] for x in page["remedies"]] == [vins[0]]


def test_a_history_longer_than_the_limit_comes_downsampled_with_its_last_point(
        net: PartsNode, monkeypatch: pytest.MonkeyPatch) -> None:
    cid, _, vins = hose_campaign(net, 4)
    heights = [net.must(SHOP, RecordRemedy(campaign=cid, vin=v))["height"] for v in vins]
    assert len(set(heights)) == 4
    monkeypatch.setattr(queries, "PROGRESS_POINTS_MAX", 3)  # the node runs in this process
    _, p = read(net, OEM, "progress", campaign=cid)
    assert p["changes"] == 4 and p["remedied"] == 4
    assert p["points"] == [{"height": heights[i], "remedied": i + 1} for i in (0, 1, 3)]
    assert PROGRESS_POINTS_MAX == 200


@pytest.mark.parametrize("query", ["progress", "remedies"])
@pytest.mark.parametrize("opener, reader, status, code", [
    ("oem", OEM, 200, None),             # the campaign's manufacturer and opener
    ("oem", REG, 200, None),             # regulators read everything
    ("oem", SHOP, 403, "not_a_party"),   # a workshop remedies vehicles but does not read the campaign's list
    ("oem", OEM2, 403, "not_a_party"),   # another manufacturer
    ("reg", REG, 200, None),             # a regulator's campaign: its opener
    ("reg", OEM, 403, "not_a_party"),    # a regulator's campaign across makers names no manufacturer
])
def test_who_reads_a_campaigns_progress_and_remedies(net: PartsNode, query: str, opener: str, reader: KeyPair,
                                                     status: int, code: str | None) -> None:
    cid, _, _ = hose_campaign(net, 1, by=admin(opener))
    got, answer = read(net, reader, query, campaign=cid)
    assert got == status, answer
    if code is not None:
        assert answer["code"] == code
    else:
        assert answer["campaign"] == cid


def test_progress_and_remedies_of_an_unknown_campaign_are_not_found(net: PartsNode) -> None:
    for name in ("progress", "remedies"):
        status, err = read(net, REG, name, campaign=999_999)
        assert (status, err["code"]) == (404, "not_found")


def test_the_sdk_asks_progress_and_remedies_as_any_query(net: PartsNode) -> None:
    cid, _, vins = hose_campaign(net, 2)
    done = net.must(SHOP, RecordRemedy(campaign=cid, vin=vins[1]))
    with signed_client(net.url, OEM) as bc:
        p = bc.query("recalls", "progress", campaign=cid, min_height=done["height"])
        r = bc.query("recalls", "remedies", campaign=cid, min_height=done["height"])
    assert p["points"] == [{"height": done["height"], "remedied": 1}]
    assert [(x["vin"], x["by"]) for x in r["remedies"]] == [(vins[1], "shop")]
