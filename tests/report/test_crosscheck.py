"""The Python verifier (``blokauto.verify.report``) and the browser's (``web/verifier.js``, run in
Chromium) give the same verdict on every report of the shared catalogue (genuine, stale, forged,
odd encodings and malformed), their ``summarize`` agree byte for byte on every genuine report, both
find the open recalls the documented rules give on the recall cars (a serial range at its ends and
just outside, a VIN range with a late registration), and their Ed25519 rules agree on all 151
Wycheproof vectors.

verifier.js is injected into a blank page opened from a file:// URL: WebCrypto (crypto.subtle) only
exists in a secure context, which about:blank is not.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import msgspec
import pytest

from blokauto.core.crypto import verify_signature
from blokauto.core.encoding import canonical, to_builtins
from blokauto.report.html import verifier_script
from blokauto.verify import VerificationError
from blokauto.verify.report import open_recalls, summarize

from conftest import DATA

pytest.register_assert_rewrite("helpers.reports")

from helpers.reports import (  # noqa: E402
    CASES,
    LATE_VIN,
    RECALL_EXPECTED,
    SERIAL_CAMPAIGN,
    VIN_CAMPAIGN,
    World,
    entries_of,
    names,
    record_of,
)

pytest_plugins = ["helpers.reports"]

WYCHEPROOF = DATA / "vectors" / "wycheproof" / "ed25519_test.json"

JS_VERIFY = """async ([report, genesis, opts]) => {
  const V = window.BlokautoVerifier;
  const anchor = await V.anchorFromGenesis(genesis);
  try {
    const proof = await V.verifyReport(report, anchor, opts);
    return {ok: true, proof};
  } catch (e) {
    return {ok: false, error: String(e && e.message), verificationError: e instanceof V.VerificationError};
  }
}"""

JS_SUMMARIZE = """([recordRaw, entriesRaw, recallEvidence]) => {
  const V = window.BlokautoVerifier;
  const record = JSON.parse(recordRaw);
  const recalls = recallEvidence ? V.openRecalls(record, recallEvidence) : [];
  return V.canonical(V.summarize(record, entriesRaw.map((r) => JSON.parse(r)), recalls));
}"""


@pytest.fixture(scope="module")
def js(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    blank = tmp_path_factory.mktemp("blank") / "blank.html"
    blank.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>")
    page = browser.new_page()
    try:
        page.goto(blank.as_uri())
        page.add_script_tag(content=verifier_script())
        assert page.evaluate("() => window.isSecureContext && typeof window.BlokautoVerifier.verifyReport") == "function"
        yield page
    finally:
        page.close()


def python_verdict(world: World, name: str) -> dict[str, Any]:
    c = world.case(name)
    try:
        proof = c.verify()
    except VerificationError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any other exception is a verifier bug, reported as such
        return {"ok": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "proof": {"vin": proof.vin, "entries": proof.entries, "height": proof.height, "time": proof.time,
                                  "attestations": proof.attestations, "quorum": proof.quorum, "chain": proof.chain,
                                  "warnings": proof.warnings}}


def js_verdict(js: Any, world: World, name: str) -> dict[str, Any]:
    c = world.case(name)
    return js.evaluate(JS_VERIFY, [c.report, to_builtins(c.genesis), c.js_opts()])


def _params() -> list[Any]:
    out = []
    for n, b in CASES.items():
        out.append(pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=b.bug_agree)) if b.bug_agree else n)
    return out


def test_the_corpus_is_large_and_varied():
    kinds = [b.kind for b in CASES.values()]
    assert len(CASES) >= 15
    assert {k: kinds.count(k) for k in set(kinds)}.keys() == {"genuine", "fraud", "stale", "variant"}
    assert kinds.count("genuine") >= 3 and kinds.count("fraud") >= 15


@pytest.mark.parametrize("name", _params())
def test_python_and_javascript_agree(world: World, js: Any, name: str):
    py, jv = python_verdict(world, name), js_verdict(js, world, name)
    assert py["ok"] is not None, f"the Python verifier crashed: {py['error']}"
    assert py["ok"] == jv["ok"], f"Python {py} / JavaScript {jv}"
    c = world.case(name)
    if py["ok"]:
        assert jv["proof"] == py["proof"]  # the same facts proven
    else:
        assert jv["verificationError"], jv  # a refusal, not a crash
        for verdict in (py, jv):
            assert c.expect in verdict["error"], (verdict, c.expect)


@pytest.mark.parametrize("name", names("genuine"))
def test_summarize_is_the_same_in_python_and_javascript(world: World, js: Any, name: str):
    report = world.case(name).report
    recalls = open_recalls(record_of(report), report["evidence"]["recalls"])  # the same rules in both languages
    py = canonical(summarize(record_of(report), entries_of(report), recalls)).decode()
    assert js.evaluate(JS_SUMMARIZE, [report["evidence"]["vehicle"]["raw"], report["evidence"]["entries"],
                                      report["evidence"]["recalls"]]) == py
    assert py == canonical(report["summary"]).decode()


def test_summarize_agrees_on_every_prefix_of_each_history(world: World, js: Any):
    """Each prefix of a genuine history is what the summary looked like back then (with today's record):
    more inputs for the two implementations of the same rules."""
    checked = 0
    for report in (world.new, world.rich):
        raw = report["evidence"]["vehicle"]["raw"]
        for n in range(len(report["evidence"]["entries"]) + 1):
            entries = report["evidence"]["entries"][:n]
            py = canonical(summarize(json.loads(raw), [json.loads(e) for e in entries])).decode()
            assert js.evaluate(JS_SUMMARIZE, [raw, entries, None]) == py, (report["vin"], n)
            checked += 1
    assert checked >= 20


# ---------------------------------------------------------------- recalls: ranges and late registration

JS_OPEN_RECALLS = """([recordRaw, recallEvidence]) =>
  window.BlokautoVerifier.openRecalls(JSON.parse(recordRaw), recallEvidence).map((r) => r.number)"""


def test_the_recall_cars_are_resolved_as_the_documented_rules_say(world: World):
    """The node's recalls module (SQL over the installation index) agrees with the rules: both ends of
    the serial range are in it, the serials just outside are not, and the car registered after the
    VIN-range campaign opened is not affected (docs/recalls.md, "Affected vehicles")."""
    assert world.recall_affected == {
        SERIAL_CAMPAIGN: sorted(v for v, numbers in RECALL_EXPECTED.items() if SERIAL_CAMPAIGN in numbers),
        VIN_CAMPAIGN: sorted(v for v, numbers in RECALL_EXPECTED.items() if VIN_CAMPAIGN in numbers)}
    late = record_of(world.recall_report(LATE_VIN))
    opened = {msgspec.json.decode(c["raw"])["number"]: msgspec.json.decode(c["raw"])["opened"]
              for c in world.recall_report(LATE_VIN)["evidence"]["recalls"]["campaigns"]}
    assert late["registered"] > opened[VIN_CAMPAIGN]  # the case is a late registration


@pytest.mark.parametrize("vin", list(RECALL_EXPECTED))
def test_both_verifiers_find_the_documented_open_recalls(world: World, js: Any, vin: str):
    report = world.recall_report(vin)
    record, evidence = record_of(report), report["evidence"]["recalls"]
    expected = RECALL_EXPECTED[vin]
    assert [r["number"] for r in report["summary"]["open_recalls"]] == expected  # what the node served
    assert [r["number"] for r in open_recalls(record, evidence)] == expected, "the Python verifier's rules"
    assert js.evaluate(JS_OPEN_RECALLS, [report["evidence"]["vehicle"]["raw"], evidence]) == expected, \
        "verifier.js's rules"
    assert ("open_recall" in report["summary"]["warnings"]) is bool(expected)


# ---------------------------------------------------------------- Ed25519: Wycheproof


def _wycheproof() -> list[tuple[int, str, str, str, str]]:
    doc = json.loads(WYCHEPROOF.read_text())
    return [(t["tcId"], g["publicKey"]["pk"], t["sig"], t["msg"], t["result"])
            for g in doc["testGroups"] for t in g["tests"]]


VECTORS = _wycheproof()


@pytest.fixture(scope="module")
def js_ed25519(js: Any) -> dict[int, bool]:
    results = js.evaluate("""async (cases) => {
      const V = window.BlokautoVerifier, out = {};
      for (const [id, pk, sig, msg] of cases) out[id] = await V.ed25519Verify(V.unhex(pk), V.unhex(sig), V.unhex(msg));
      return out;
    }""", [list(v[:4]) for v in VECTORS])
    return {int(k): v for k, v in results.items()}


def test_all_151_wycheproof_vectors_are_checked(js_ed25519: dict[int, bool]):
    assert len(VECTORS) == 151 and sorted(js_ed25519) == sorted(v[0] for v in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=[f"tc{v[0]}" for v in VECTORS])
def test_ed25519_in_the_browser_agrees_with_libsodium(js_ed25519: dict[int, bool], vector: tuple[Any, ...]):
    tc, pk, sig, msg, result = vector
    py = verify_signature(bytes.fromhex(pk), bytes.fromhex(sig), bytes.fromhex(msg))
    assert js_ed25519[tc] is py, f"tcId {tc}: verifier.js says {js_ed25519[tc]}, libsodium says {py}"
    assert py is (result == "valid")
