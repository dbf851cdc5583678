"""``blokauto privacy`` end to end: a chain made with ``init``, a node started with ``node start`` in
a child process (stopped by its PID). The insurer records a person's name and address in its vault
(DATA/vault) with commitments on the ledger, hands a disclosure to a bank, which checks it; the
insurer erases the person; the disclosure now says erased, the export says erased, the vehicle's
report still verifies and ``blokauto audit`` still passes. All through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.e2e  # starts a real node process

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
VIN = "WVWZZZ1JZ00000042"
NAME = "Erika Mustermann"
ADDRESS = "Heidestrasse 17, 51147 Koeln"


def cli(*args: Any, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    if stdin is None:
        r = run_cli(*[str(a) for a in args], env=ENV)
    else:
        r = subprocess.run([sys.executable, "-m", "blokauto.cli", *[str(a) for a in args]], input=stdin,
                           capture_output=True, text=True, timeout=120, env={**os.environ, **ENV})
    if ok:
        assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    """A node on a fresh chain with a registered vehicle; the insurer (ins) keeps a vault."""
    data: Path = tmp_path_factory.mktemp("privacy") / "chain"
    cli("init", "--data", data, "--org", "oem:manufacturer", "--org", "ins:insurer", "--org", "bank:lender",
        "--org", "reg:regulator")
    node = NodeProcess(data)
    try:
        at = ("--data", data, "--node", node.url)
        cli("tx", "send", "vehicles.assign_wmi", "--key", "reg-admin", "--set", "wmi=WVW", "--set", "org=oem", *at)
        birth = {"vin": VIN, "make": "Test", "model": "T", "model_year": 2027, "body": "sedan", "powertrain": "bev",
                 "plant": "P1", "build_date": "2027-01-15", "country": "DE"}
        cli("tx", "send", "vehicles.register", json.dumps(birth), "--key", "oem-admin", *at)
        yield node, data, at
    finally:
        if node.proc.poll() is None:
            node.stop()
        if node.proc.poll() is None:
            node.kill()


def test_tombstone_only_is_refused_while_the_vault_still_holds_the_subject(chain) -> None:
    _, _, at = chain
    subject = json.loads(cli("privacy", "record", "--new", "name", NAME, "--key", "ins-admin", "--json",
                             *at).stdout)["subject"]
    r = cli("privacy", "erase", subject, "--tombstone-only", "--key", "ins-admin", *at, ok=False)
    assert r.returncode == 1 and "still holds" in r.stderr


def test_record_disclose_check_erase_export_and_the_chain_still_verifies(chain, tmp_path: Path) -> None:
    node, data, at = chain
    ins = ("--key", "ins-admin")

    r = cli("privacy", "record", "--new", "name", NAME, "--vin", VIN, *ins, "--json", *at)
    out = json.loads(r.stdout)
    subject, commitment = out["subject"], out["commitment"]
    assert subject.startswith("subj-") and out["receipt"]["ok"]
    assert out["receipt"]["events"][0] == {"type": "privacy.committed", "subject": subject, "org": "ins",
                                           "field": "name", "version": 1, "commitment": commitment, "vin": VIN}
    r = cli("privacy", "record", subject, "postal_address", "-", *ins, *at, stdin=ADDRESS + "\n")
    assert f"subject {subject}" in r.stdout and "committed" in r.stdout and "privacy.committed" in r.stdout
    assert ADDRESS not in r.stdout  # the value is never echoed

    # the vault holds the values; the ledger only the commitments
    assert (data / "vault" / "vault.db").exists() and ((data / "vault" / "master.key").stat().st_mode & 0o777) == 0o600
    node_files = b"".join(p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file() and "vault" not in p.parts)
    assert subject.encode() in node_files and commitment.encode() in node_files
    assert NAME.encode() not in node_files and b"Koeln" not in node_files

    # a disclosure the person hands to the bank, checked by the bank against the ledger
    disclosure = tmp_path / "name.json"
    cli("privacy", "disclose", subject, "name", "--out", disclosure, "--data", data)  # the vault alone: no node
    d = json.loads(disclosure.read_text())
    assert (d["subject"], d["field"], d["value"], d["commitment"]) == (subject, "name", NAME, commitment)
    assert (disclosure.stat().st_mode & 0o777) == 0o600
    r = cli("privacy", "check-disclosure", disclosure, "--key", "bank-admin", *at)
    assert "proven" in r.stdout and "in force" in r.stdout
    checked = json.loads(cli("privacy", "check-disclosure", disclosure, "--key", "bank-admin", "--json", *at).stdout)
    assert (checked["ok"], checked["status"], checked["record"]["org"]) == (True, "live", "ins")

    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**d, "value": "Max Mustermann"}))
    r = cli("privacy", "check-disclosure", forged, "--key", "bank-admin", *at, ok=False)
    assert r.returncode == 1 and "do not open" in r.stdout

    # the bank holds nothing about the subject: it may check a disclosure, not list what others hold
    r = cli("query", "privacy", "commitments", f"subject={subject}", "--as", "bank-admin", *at, ok=False)
    assert r.returncode != 0 and "not_a_party" in r.stdout + r.stderr

    export = tmp_path / "export.json"
    cli("privacy", "export", subject, "--out", export, *ins, *at)
    doc = json.loads(export.read_text())
    assert doc["vault"]["erased"] is False
    assert {(f["field"], f["value"]) for f in doc["vault"]["fields"]} == {("name", NAME), ("postal_address", ADDRESS)}
    assert [(c["field"], c["status"]) for c in doc["ledger"]["commitments"]] == [("name", "live"),
                                                                                 ("postal_address", "live")]

    # erasure: the vault destroys key and data, the ledger records a tombstone
    r = cli("privacy", "erase", subject, *ins, *at)
    assert "erased" in r.stdout and "privacy.erased" in r.stdout and '"voided": 2' in r.stdout
    raw = (data / "vault" / "vault.db").read_bytes()
    assert NAME.encode() not in raw and d["salt"].encode() not in raw
    r = cli("privacy", "check-disclosure", disclosure, "--key", "bank-admin", *at, ok=False)
    assert r.returncode == 1 and "erased" in r.stdout and "no longer counts" in r.stdout
    r = cli("privacy", "disclose", subject, "name", "--data", data, ok=False)
    assert r.returncode == 1 and "[subject_erased]" in r.stderr
    r = cli("privacy", "erase", subject, *ins, *at, ok=False)
    assert r.returncode == 1 and "[subject_already_erased]" in r.stdout + r.stderr

    doc = json.loads(cli("privacy", "export", subject, *ins, *at).stdout)
    assert doc["vault"]["erased"] is True and doc["vault"]["fields"] == [] and doc["vault"]["erased_at"]
    assert {c["status"] for c in doc["ledger"]["commitments"]} == {"erased"}
    assert [(t["org"], t["voided"]) for t in doc["ledger"]["tombstones"]] == [("ins", 2)]
    assert NAME not in json.dumps(doc) and ADDRESS not in json.dumps(doc)

    # the vehicle's report still verifies, and so does the whole folder
    report = tmp_path / "report.json"
    cli("report", VIN, "--data", data, "--json", report)
    r = cli("verify", report, "--trust", data / "genesis.json")
    assert r.returncode == 0
    node.stop()
    r = cli("audit", "--data", data)
    assert "audit OK" in r.stdout


def test_erase_while_the_node_is_unreachable_leaves_the_tombstone_pending(tmp_path: Path) -> None:
    """The vault erases at once; the tombstone waits for ``--tombstone-only``."""
    data = tmp_path / "chain"
    cli("init", "--data", data, "--org", "ins:insurer", "--org", "reg:regulator")
    node = NodeProcess(data)
    try:
        at = ("--data", data, "--node", node.url)
        subject = json.loads(cli("privacy", "record", "--new", "name", NAME, "--key", "ins-admin", "--json",
                                 *at).stdout)["subject"]
        node.stop()
        away = ("--data", data, "--node", f"http://127.0.0.1:{free_port()}")
        r = cli("privacy", "erase", subject, "--key", "ins-admin", *away, ok=False)
        assert r.returncode == 2 and "tombstone is pending" in r.stderr and "--tombstone-only" in r.stderr
        r = cli("privacy", "export", subject, "--key", "ins-admin", *away, ok=False)
        assert r.returncode == 2  # the export needs the ledger's part too
        node = NodeProcess(data)
        at = ("--data", data, "--node", node.url)
        r = cli("privacy", "erase", subject, "--tombstone-only", "--key", "ins-admin", *at)
        assert "privacy.erased" in r.stdout
        doc = json.loads(cli("privacy", "export", subject, "--key", "ins-admin", *at).stdout)
        assert doc["vault"]["erased"] is True and [t["voided"] for t in doc["ledger"]["tombstones"]] == [1]
    finally:
        if node.proc.poll() is None:
            node.stop()
