"""Open recalls in a history report are proven, not claimed: each tampering is caught by the
Python and the browser verifier alike."""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterator

import pytest

from blokauto.modules import default_registry
from blokauto.report import build_report
from blokauto.report.html import verifier_script
from blokauto.store.blocks import BlockLog
from blokauto.store.state import StateStore
from blokauto.verify import VerificationError
from blokauto.verify.report import verify_report

pytest_plugins = ["helpers.reports"]

CARLA = "WZZ3E5C22NM400125"  # the demo's second car: pads from the recalled batch, not remedied
DAN = "WZZ3E5C22NM400133"  # pads from another batch: not covered


@pytest.fixture(scope="module")
def reports(world: Any) -> dict[str, dict[str, Any]]:
    blocks, state = BlockLog(world.data / "chain.db"), StateStore(world.data / "state.db", default_registry())
    try:
        return {vin: build_report(blocks, state, vin) for vin in (CARLA, DAN)}
    finally:
        blocks.close()
        state.close()


@pytest.fixture(scope="module")
def js(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    blank = tmp_path_factory.mktemp("blank") / "blank.html"
    blank.write_text("<!doctype html><meta charset='utf-8'>")
    page = browser.new_page()
    page.goto(blank.as_uri())
    page.add_script_tag(content=verifier_script())
    yield page
    page.close()


def js_verify(js: Any, report: dict[str, Any], genesis: dict[str, Any]) -> str | None:
    """None when the browser verifier accepts, else its reason."""
    return js.evaluate("""async ([r, g]) => {
        try { await BlokautoVerifier.verifyReport(r, await BlokautoVerifier.anchorFromGenesis(g)); return null; }
        catch (e) { return e.message; } }""", [report, genesis])


def test_an_open_unremedied_recall_is_reported_and_warned(world: Any, reports: dict) -> None:
    s = reports[CARLA]["summary"]
    # 24V-201 (the brake software) was remedied by the car's own install manifest
    assert [(r["number"], r["remedied"]) for r in s["open_recalls"]] == [("24V-117", False), ("24V-201", True)]
    assert "open_recall" in s["warnings"]
    assert verify_report(reports[CARLA], world.anchor).warnings == ["open_recall"]
    dan = reports[DAN]["summary"]["open_recalls"]  # pads of another batch; the brake software flashed at a workshop
    assert [(r["number"], r["remedied"]) for r in dan] == [("24V-201", True)] and verify_report(reports[DAN], world.anchor)


def _hide(r: dict) -> None:
    r["summary"]["open_recalls"] = []
    r["summary"]["warnings"] = [w for w in r["summary"]["warnings"] if w != "open_recall"]


def _claim_remedied(r: dict) -> None:
    r["summary"]["open_recalls"][0]["remedied"] = True
    r["summary"]["warnings"] = [w for w in r["summary"]["warnings"] if w != "open_recall"]


def _drop_campaign_evidence(r: dict) -> None:
    _hide(r)
    ev = r["evidence"]["recalls"]
    ev["campaigns"], ev["remedies"] = [], []


def _forge_remedy(r: dict) -> None:
    _claim_remedied(r)
    r["evidence"]["recalls"]["remedies"][0]["raw"] = '{"by":"meister-werkstatt","campaign":1}'


def _bill_without_the_pads(r: dict) -> None:
    _hide(r)
    ev = r["evidence"]["recalls"]["bom"]
    ev["raw"] = ev["raw"].replace("SW-PAD-44:B2024-07", "SW-PAD-44:B2024-08")


def _drop_a_part(r: dict) -> None:
    r["evidence"]["recalls"]["parts"] = []


TAMPERS: dict[str, tuple[Callable[[dict], None], str]] = {
    "hide_the_open_recall": (_hide, "summary.open_recalls"),
    "claim_it_remedied": (_claim_remedied, "summary.open_recalls"),
    "drop_the_campaign_evidence": (_drop_campaign_evidence, "does not cover every open campaign"),
    "forge_a_remedy_record": (_forge_remedy, "not proven holding that value"),
    "swap_the_batch_on_the_bill_of_parts": (_bill_without_the_pads, "not proven holding that value"),
    "drop_the_battery_pack_record": (_drop_a_part, "lacks part VP-83:VP83-0002"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_recall_tampering_is_detected_by_both_verifiers(world: Any, reports: dict, js: Any, name: str) -> None:
    tamper, reason = TAMPERS[name]
    bad = copy.deepcopy(reports[CARLA])
    tamper(bad)
    with pytest.raises(VerificationError) as exc:
        verify_report(bad, world.anchor)
    assert reason in str(exc.value)
    from blokauto.core.encoding import to_builtins

    js_reason = js_verify(js, bad, to_builtins(world.genesis))
    assert js_reason is not None and reason in js_reason, js_reason
