"""Vehicle history reports (``blokauto-report/1``) against forgers: every kind of fraud a seller
could try on a report is refused by the offline verifier, with a message that says what failed;
the genuine reports verify; ``blokauto verify`` says the same on the command line; and
``blokauto report`` writes the JSON, HTML and PDF, from a data folder or from a running node.

The reports come from the real demo chain (``helpers.reports.world``): the demo car (VIN
WZZ3E5C22NM400117, an accident at seq 6 and a suspected odometer rollback at seq 8) as the demo left
it (``old``, block 22) and after a service and an inspection were added through a node (``new``).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest

from blokauto.core.encoding import canonical
from blokauto.verify.report import open_recalls, summarize, verify_report

from conftest import run_cli

pytest.register_assert_rewrite("helpers.reports")

from helpers.reports import (  # noqa: E402
    BUG_AS_OF,
    BUG_BOOL,
    CASES,
    HISTORY,
    OTHER_ANCHOR,
    VIN,
    World,
    entries_of,
    header_of,
    names,
    record_of,
    refusal,
)

pytest_plugins = ["helpers.reports"]

ENV = {"COLUMNS": "240", "NO_COLOR": "1"}


def refused(world: World, name: str) -> str:
    c = world.case(name)
    msg = refusal(c)
    assert c.expect is not None and c.expect in msg, f"{name}: {msg!r} does not say {c.expect!r}"
    return msg


# ---------------------------------------------------------------- genuine reports


def test_the_genuine_reports_verify(world: World):
    for report, entries, height_above in ((world.old, 17, 0), (world.new, 19, header_of(world.old).height)):
        proof = verify_report(report, world.anchor)
        assert (proof.vin, proof.entries, proof.chain, proof.quorum) == (VIN, entries, "blokauto-demo", 1)
        assert proof.height == report["as_of"]["height"] > height_above
        assert proof.warnings == ["odometer_rollback"]
        assert f"all {entries} history entries are genuine and complete" in proof.describe()
    s = world.new["summary"]
    assert (s["owners"], s["odometer"]["status"], s["odometer"]["max_km"]) == (2, "not_actual", 33_100)
    assert [a["seq"] for a in s["accidents"]] == [7] and s["accidents"][0]["severity"] == "moderate"
    assert [r["seq"] for r in s["odometer"]["suspected_rollbacks"]] == [9]
    assert [(r["number"], r["remedied"]) for r in s["open_recalls"]] == [("24V-117", True), ("24V-201", True)]
    assert (s["services"]["count"], s["inspections"]["count"], s["entries"]) == (2, 1, 19)
    rich = verify_report(world.rich, world.anchor)
    assert rich.warnings == ["odometer_exceeds_mechanical_limits", "salvage", "total_loss", "flood", "stolen"]


def test_summary_is_a_pure_function_of_record_and_entries(world: World):
    """...and of the proven recall evidence (the open campaigns that covered the vehicle)."""
    for report in (world.old, world.new, world.rich):
        recalls = open_recalls(record_of(report), report["evidence"]["recalls"])
        assert report["summary"] == summarize(record_of(report), entries_of(report), recalls)
        assert report["timeline"] == entries_of(report)


# ---------------------------------------------------------------- the history


def test_dropping_the_accident_is_detected(world: World):
    """Entry removed, later entries renumbered, timeline and summary rewritten to match: the
    history hash in the proven record still counts 15 entries."""
    msg = refused(world, "drop_accident")
    assert "over 18 entries" in msg and "over 19" in msg


def test_lowering_an_odometer_reading_is_detected(world: World):
    refused(world, "lower_odometer")
    refused(world, "hide_rollback_flag")


def test_reordering_entries_is_detected(world: World):
    refused(world, "reorder_entries")


def test_adding_an_entry_is_detected(world: World):
    assert "over 20 entries" in refused(world, "add_entry")


# ---------------------------------------------------------------- checkpoint and attestations


def test_checkpoint_of_another_height_is_detected(world: World):
    """The record was proven at block H; a checkpoint of another block has another state root."""
    assert f"at height {header_of(world.new).height}" in refused(world, "checkpoint_of_newer_height")
    assert f"at height {header_of(world.old).height}" in refused(world, "checkpoint_of_older_height")


def test_header_with_another_state_root_is_detected(world: World):
    """Splicing the newer state root into the old, signed header breaks its attestation."""
    refused(world, "header_with_other_state_root")


def test_attestation_by_an_unknown_key_is_detected(world: World):
    """A fresh key signs the real header hash: not a node key of the consortium, alone or added."""
    refused(world, "attestation_by_unknown_key")
    refused(world, "unknown_attestation_added")


def test_bad_signature_by_the_real_node_key_is_detected(world: World):
    refused(world, "node_key_signed_another_header")
    refused(world, "node_key_signature_corrupted")
    refused(world, "node_key_signed_without_attest_tag")
    refused(world, "no_attestations")


# ---------------------------------------------------------------- replay of an old report


def test_an_old_report_replayed(world: World):
    """Genuine as of its checkpoint; only freshness tells it apart from the current one."""
    old, new = world.old, world.new
    assert verify_report(old, world.anchor).entries == 17
    new_height, old_time = header_of(new).height, header_of(old).time
    msg = refused(world, "replay_old_below_min_height")
    assert f"block {header_of(old).height}" in msg and f"block {new_height}" in msg
    assert "days old" in refused(world, "replay_old_too_old")
    # the same report within the accepted age, and not below a known checkpoint, is fine
    verify_report(old, world.anchor, now_ms=old_time + 29 * 86_400_000, max_age_ms=30 * 86_400_000,
                  min_height=header_of(old).height)
    # the current report passes the same freshness rules
    verify_report(new, world.anchor, now_ms=header_of(new).time, max_age_ms=86_400_000, min_height=new_height)


def test_mixing_old_and_new_evidence_fails(world: World):
    refused(world, "old_checkpoint_with_new_entries")  # old checkpoint and record, the newer entries
    refused(world, "new_checkpoint_with_old_entries")  # current checkpoint, the later entries hidden


def test_an_old_report_cannot_claim_a_newer_date(world: World):
    """``as_of`` is what the page and the PDF print as the report's block and date."""
    c = world.case("as_of_claims_newer_block")
    assert c.report["as_of"] != world.old["as_of"]
    refusal(c)


# ---------------------------------------------------------------- summary and timeline


@pytest.mark.parametrize("name", ["summary_owners", "summary_warnings", "summary_odometer_status",
                                  "summary_accident_severity", "summary_accident_removed", "summary_rollback_removed"])
def test_a_changed_summary_is_detected(world: World, name: str):
    refused(world, name)


@pytest.mark.parametrize("name", ["summary_liens_false", "summary_airbags_as_number", "timeline_airbags_as_number"])
def test_a_value_changed_between_boolean_and_number_is_detected(world: World, name: str):
    refused(world, name)


def test_a_changed_timeline_alone_is_detected(world: World):
    refused(world, "timeline_accident_softened")
    refused(world, "timeline_accident_dropped")


@pytest.mark.parametrize("name", ["serial_recall_hidden_at_first_serial", "serial_recall_hidden_at_last_serial",
                                  "serial_recall_claimed_just_below", "serial_recall_claimed_just_above",
                                  "vin_range_recall_hidden", "late_registration_recall_claimed"])
def test_a_hidden_or_claimed_recall_is_detected(world: World, name: str):
    """The open recalls are recomputed from the proven campaigns, bill of parts and part twins: a
    serial range includes both its ends and nothing beyond, and a car registered after a campaign
    opened is not covered by it (the forger rewrote the warnings to match)."""
    refused(world, name)


# ---------------------------------------------------------------- record, VIN, trust anchor


def test_a_changed_vehicle_record_fails_its_proof(world: World):
    refused(world, "record_raw_changed")


def test_a_report_for_another_vin_is_detected(world: World):
    refused(world, "relabelled_for_another_vin")
    refused(world, "other_vin_with_its_key")


def test_the_wrong_trust_anchor_is_detected(world: World):
    refused(world, "wrong_trust_anchor")
    refused(world, "wrong_anchor_same_chain_id")
    refused(world, "report_relabelled_for_wrong_anchor")
    refused(world, "report_relabelled_for_twin_anchor")


def test_every_fraud_in_the_catalogue_is_covered_above():
    """The catalogue is shared with the browser and cross-check tests; each entry is asserted here."""
    import inspect

    source = inspect.getsource(inspect.getmodule(test_every_fraud_in_the_catalogue_is_covered_above))
    missing = [n for n in names("fraud", "stale") if f'"{n}"' not in source]
    assert not missing


def test_every_refusal_in_the_catalogue_names_what_failed(world: World):
    """An expected message is words of the real refusal, never a string every message contains."""
    vague = {n: c.expect for n, c in ((n, world.case(n)) for n in CASES) if c.expect is not None and len(c.expect) < 8}
    assert not vague, vague


# ---------------------------------------------------------------- blokauto verify


@pytest.fixture(scope="module")
def report_files(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every genuine, stale and forged report as a file, with the ``blokauto verify`` arguments."""
    out = tmp_path_factory.mktemp("report-files")
    anchors: dict[str, Path] = {}
    files = {}
    for name in names("genuine", "fraud", "stale"):
        c = world.case(name)
        h = c.genesis.hash().hex()
        if h not in anchors:
            anchors[h] = out / f"genesis-{h[:8]}.json"
            anchors[h].write_bytes(canonical(c.genesis))
        path = out / f"{name}.json"
        path.write_bytes(msgspec.json.encode(c.report))
        args = [str(path), "--trust", str(anchors[h])]
        if c.min_height is not None:
            args += ["--min-height", str(c.min_height)]
        if c.max_age_ms is not None:
            # the CLI judges age by the real clock: these checkpoints are minutes old, so 0 days is too old
            args += ["--max-age-days", "0" if c.expect else "30"]
        files[name] = args
    return files


def blokauto(*args: str) -> Any:
    """``blokauto ARGS`` in this process (Typer's runner: same command, exit code and streams, no
    interpreter start-up), for the many files; the real executable is run below for a few."""
    from typer.testing import CliRunner

    from blokauto.cli.main import app

    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture(scope="module")
def cli_verdicts(report_files: dict[str, list[str]]) -> dict[str, Any]:
    return {name: blokauto("verify", *args) for name, args in report_files.items()}


@pytest.mark.parametrize("name", names("genuine"))
def test_cli_verify_says_verified(world: World, cli_verdicts: dict[str, Any], name: str):
    r = cli_verdicts[name]
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("VERIFIED")
    assert "history entries are genuine and complete" in r.stdout and world.case(name).report["vin"] in r.stdout


def _cli_params() -> list[Any]:
    out = []
    for n in names("fraud", "stale"):
        bug = CASES[n].bug_python
        out.append(pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=bug)) if bug else n)
    return out


@pytest.mark.parametrize("name", _cli_params())
def test_cli_verify_refuses_each_forged_file_and_says_why(world: World, cli_verdicts: dict[str, Any], name: str):
    r, c = cli_verdicts[name], world.case(name)
    assert r.exit_code == 3, f"exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    assert "NOT VERIFIED" in r.stderr and "VERIFIED:" not in r.stdout
    assert c.expect in r.stderr, f"{name}: {r.stderr!r} does not say {c.expect!r}"


def test_the_blokauto_executable_verifies_and_refuses(world: World, report_files: dict[str, list[str]]):
    """The real executable, in child processes: exit 0 and VERIFIED, or exit 3 and the reason."""
    runs = {"genuine_new": [], "drop_accident": [], "wrong_trust_anchor": [], "replay_old_below_min_height": [],
            "summary_accident_severity": ["--json"]}
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(runs, pool.map(lambda n: run_cli("verify", *report_files[n], *runs[n], env=ENV), runs)))
    ok = done.pop("genuine_new")
    assert ok.returncode == 0 and ok.stdout.startswith("VERIFIED: VIN " + VIN), ok.stderr
    as_json = done.pop("summary_accident_severity")
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout) == {"ok": False, "error": "the summary is not what the entries say: "
                                          "summary.accidents[0].severity ('minor' vs 'moderate')"}
    for name, r in done.items():
        assert r.returncode == 3 and r.stdout == "", (name, r.stdout, r.stderr)
        assert r.stderr.startswith("NOT VERIFIED: ") and world.case(name).expect in r.stderr, (name, r.stderr)


def test_cli_verify_json_output(world: World, report_files: dict[str, list[str]]):
    ok = blokauto("verify", *report_files["genuine_new"], "--json")
    assert ok.exit_code == 0
    assert json.loads(ok.stdout) == {"ok": True, "vin": VIN, "entries": 19, "height": header_of(world.new).height,
                                     "time": header_of(world.new).time, "attestations": 1,
                                     "warnings": ["odometer_rollback"]}
    bad = blokauto("verify", *report_files["drop_accident"], "--json")
    assert bad.exit_code == 3
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and HISTORY in doc["error"]


def test_cli_verify_refuses_what_is_not_a_report(tmp_path: Path, world: World):
    junk = tmp_path / "junk.json"
    junk.write_text("this is not JSON")
    r = blokauto("verify", str(junk), "--trust", str(world.data / "genesis.json"))
    assert r.exit_code == 2 and "is not JSON" in r.stderr and "NOT VERIFIED" not in r.stderr
    junk.write_text("[1, 2, 3]")
    r = blokauto("verify", str(junk), "--trust", str(world.data / "genesis.json"))
    assert r.exit_code == 2 and "cannot be read as a report" in r.stderr and "NOT VERIFIED" not in r.stderr
    r = blokauto("verify", str(tmp_path / "missing.json"), "--trust", str(world.data / "genesis.json"))
    assert r.exit_code == 2 and "does not exist" in r.stderr and "NOT VERIFIED" not in r.stderr
    r = blokauto("verify", str(junk), "--trust", str(tmp_path / "missing-genesis.json"))
    assert r.exit_code == 2 and "trust anchor file" in r.stderr


# ---------------------------------------------------------------- blokauto report


def _check_outputs(world: World, out: Path, entries: int) -> dict[str, Any]:
    doc = msgspec.json.decode((out / "r.json").read_bytes())
    proof = verify_report(doc, world.anchor)
    assert (proof.vin, proof.entries) == (VIN, entries)
    html = (out / "r.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "BlokautoVerifier" in html
    assert "__REPORT_JSON__" not in html and "__ANCHOR_JSON__" not in html and "/*__VERIFIER__*/" not in html
    assert (out / "r.pdf").read_bytes().startswith(b"%PDF")
    return doc


def test_cli_report_from_the_data_folder(world: World, tmp_path: Path):
    r = run_cli("report", VIN, "--data", str(world.data), "--json", str(tmp_path / "r.json"),
                "--html", str(tmp_path / "r.html"), "--pdf", str(tmp_path / "r.pdf"), env=ENV)
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "wrote PDF" in r.stdout and "odometer_rollback" in r.stdout
    doc = _check_outputs(world, tmp_path, 19)
    assert doc["evidence"]["vehicle"]["raw"] == world.new["evidence"]["vehicle"]["raw"]


@pytest.fixture(scope="module")
def reader(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder whose default key store (./blokauto-data/keys) holds the consortium's node
    key, which reads every report: ``--as kba-node`` signs the CLI's requests to the node, and no
    --data is named (so the trust anchor stays what --trust says, or the node's own)."""
    import shutil

    folder = tmp_path_factory.mktemp("reader")
    (folder / "blokauto-data" / "keys").mkdir(parents=True)
    shutil.copy2(world.data / "keys" / "kba-node.json", folder / "blokauto-data" / "keys" / "kba-node.json")
    return folder


def test_cli_report_from_a_node(world: World, tmp_path: Path, reader: Path):
    r = run_cli("report", VIN, "--node", world.node.url, "--as", "kba-node", "--json", str(tmp_path / "r.json"),
                "--html", str(tmp_path / "r.html"), "--pdf", str(tmp_path / "r.pdf"),
                "--trust", str(world.data / "genesis.json"), env=ENV, cwd=reader)
    assert r.returncode == 0, r.stderr
    _check_outputs(world, tmp_path, 19)
    printed = run_cli("report", VIN, "--node", world.node.url, "--as", "kba-node", "--json", "-", env=ENV,
                      cwd=reader)  # the JSON on stdout
    assert printed.returncode == 0, printed.stderr
    assert verify_report(json.loads(printed.stdout), world.anchor).entries == 19
    assert "NOT pinned" not in printed.stderr and "not pinned" in printed.stderr  # the node's own anchor, and it says so
    summary = run_cli("report", VIN, "--node", world.node.url, "--as", "kba-node", "--trust",
                      str(world.data / "genesis.json"), env=ENV, cwd=reader)
    assert summary.returncode == 0 and len(summary.stdout.splitlines()) < 8  # a summary, not 700 lines of JSON
    assert "verified" in summary.stdout and "odometer_rollback" in summary.stdout and "--json FILE" in summary.stdout


def test_cli_report_of_an_unknown_vin(world: World):
    r = blokauto("report", "WZZ3E5C22NM999999", "--data", str(world.data))
    assert r.exit_code == 1 and "unknown_vin" in r.stderr


def test_cli_report_refuses_a_node_of_another_consortium(world: World, tmp_path: Path, reader: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    other = tmp_path / "other-genesis.json"
    other.write_bytes(canonical(world.other_genesis))
    monkeypatch.chdir(reader)  # --as kba-node: its key store
    r = blokauto("report", VIN, "--node", world.node.url, "--as", "kba-node", "--trust", str(other), "--json",
                 str(tmp_path / "r.json"))
    assert r.exit_code == 3 and "verification failed" in r.stderr, r.stderr
    assert OTHER_ANCHOR in r.stderr and not (tmp_path / "r.json").exists()


# ---------------------------------------------------------------- the node's report routes


def test_report_routes_of_the_node(world: World):
    doc = world.node.http.get(f"/v1/reports/{VIN}", timeout=30).json()
    assert verify_report(doc, world.anchor).entries == 19
    pdf = world.node.http.get(f"/v1/reports/{VIN}/pdf", timeout=30)
    assert pdf.status_code == 200 and pdf.headers["content-type"].startswith("application/pdf")
    assert pdf.content.startswith(b"%PDF")
    page = world.node.http.get(f"/reports/{VIN}", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="report-data"' in page.text and "BlokautoVerifier" in page.text
    missing = world.node.http.get("/v1/reports/WZZ3E5C22NM999999", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_vin"
