"""Access control through the real ``blokauto`` command line (docs/privacy.md): a chain made with
``init``, a node started with ``node start`` in a child process (stopped by its PID). Reads are
signed with ``--as NAME`` (a key in DATA/keys) and judged by who signed them: the holder reads its
vehicle, an unrelated member is refused ``consent_required``, an unsigned read
``signature_required``; a share link the holder signs opens the report with no key until the
holder sells the vehicle; the event stream leaves out what the signer may not read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from blokauto.keystore import KeyStore

from conftest import NodeProcess

pytestmark = pytest.mark.e2e  # starts a real node process

VIN = "WVWZZZ1JZ00000042"  # made by oem, held by alice
SOLD = "WVWZZZ1JZ00000059"  # made by oem, held by carol, who shares its report and then sells it to bob


def cli(*args: Any, ok: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real CLI, with no key or data folder from the environment (BLOKAUTO_KEY, BLOKAUTO_DATA):
    a command signs only with the ``--as`` it is given."""
    env = {k: v for k, v in os.environ.items() if k not in ("BLOKAUTO_KEY", "BLOKAUTO_DATA", "BLOKAUTO_NODE")}
    r = subprocess.run([sys.executable, "-m", "blokauto.cli", *[str(a) for a in args]], capture_output=True,
                       text=True, timeout=120, cwd=cwd, env={**env, "COLUMNS": "200", "NO_COLOR": "1"})
    if ok:
        assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def refused(r: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit ``code``, ``words`` on stderr, nothing on stdout and no traceback."""
    assert r.returncode == code, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    said = " ".join(r.stderr.split())
    for w in words:
        assert w in said, f"{w!r} not in: {r.stderr}"
    assert r.stdout == "", r.stdout


def grant_fields(vin: str, org: str) -> str:
    """A consent grant that changes no read of these tests (the organisation already reads the vehicle)."""
    until = int(time.time() * 1000) + 86_400_000
    return json.dumps({"vin": vin, "org": org, "categories": ["odometer"], "purpose": "test", "until": until})


def birth(vin: str) -> str:
    return json.dumps({"vin": vin, "make": "Test", "model": "T", "model_year": 2027, "body": "sedan",
                       "powertrain": "bev", "plant": "P1", "build_date": "2027-01-15", "country": "DE"})


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    """A node on a fresh chain: oem (manufacturer) made VIN and sold it to alice, and SOLD to carol;
    ins (insurer) has no relation to either; reg is a regulator. The data folder is the default
    ``blokauto-data`` of its parent: ``report VIN --node URL --as NAME`` (whose ``--data`` means "read
    this folder instead of a node") finds its keys there, run in that parent."""
    data: Path = tmp_path_factory.mktemp("access") / "blokauto-data"
    cli("init", "--data", data, "--org", "oem:manufacturer", "--org", "ins:insurer", "--org", "reg:regulator")
    keys = KeyStore(data / "keys")
    people = {name: keys.create(name).did for name in ("alice", "carol", "bob")}
    node = NodeProcess(data)
    try:
        at = ("--data", data, "--node", node.url)
        cli("tx", "send", "vehicles.assign_wmi", "--key", "reg-admin", "--set", "wmi=WVW", "--set", "org=oem", *at)
        for vin, holder in ((VIN, "alice"), (SOLD, "carol")):
            cli("tx", "send", "vehicles.register", birth(vin), "--key", "oem-admin", *at)
            cli("tx", "send", "vehicles.transfer_title", "--key", "oem-admin", "--cosign", holder,
                "--set", f"vin={vin}", "--set", f"to={people[holder]}", *at)
        yield node, data, at, people
    finally:
        node.stop()
        if node.proc.poll() is None:
            node.kill()


# ---------------------------------------------------------------- reads: signed, and judged by who signed


def test_the_holder_reads_its_vehicle(chain) -> None:
    _, _, at, people = chain
    history = json.loads(cli("query", "vehicles", "history", f"vin={VIN}", "--as", "alice", *at).stdout)
    assert [e["type"] for e in history["entries"]] == ["birth", "title_transfer"]
    assert history["entries"][-1]["data"]["to"] == people["alice"]
    vehicle = json.loads(cli("state", f"veh/v/{VIN}", "--as", "alice", "--json", *at).stdout)
    assert vehicle["verified"] is True and vehicle["value"] is not None


def test_an_unrelated_member_is_refused_with_consent_required(chain) -> None:
    _, _, at, _ = chain
    r = cli("query", "vehicles", "history", f"vin={VIN}", "--as", "ins-admin", *at, ok=False)
    refused(r, 1, "[consent_required]", VIN, "history")
    refused(cli("state", f"veh/v/{VIN}", "--as", "ins-admin", *at, ok=False), 1, "[consent_required]", VIN)
    refused(cli("report", VIN, "--as", "ins-admin", "--node", at[-1], "--trust", at[1] / "genesis.json",
                cwd=at[1].parent, ok=False), 1, "[consent_required]", VIN)
    alices = cli("report", VIN, "--as", "alice", "--node", at[-1], "--trust", at[1] / "genesis.json", cwd=at[1].parent)
    assert "verified" in alices.stdout
    # carol holds a car, not alice's: a vehicle holder reads its own vehicles only
    refused(cli("query", "vehicles", "vehicle", f"vin={VIN}", "--as", "carol", *at, ok=False), 1, "[consent_required]")


def test_an_unsigned_read_is_refused_with_signature_required(chain) -> None:
    _, _, at, _ = chain
    refused(cli("query", "vehicles", "history", f"vin={VIN}", *at, ok=False), 1, "[signature_required]",
            "--as NAME")
    refused(cli("state", f"veh/v/{VIN}", *at, ok=False), 1, "[signature_required]")
    status = json.loads(cli("status", "--json", "--node", at[-1]).stdout)  # a public route needs no key
    assert status["healthy"] is True


def test_a_transaction_is_read_by_its_signers_only(chain, tmp_path: Path) -> None:
    _, _, at, _ = chain
    txid = json.loads(cli("tx", "send", "consent.grant", grant_fields(VIN, "oem"), "--key", "alice", "--json",
                          *at).stdout)["id"]
    assert json.loads(cli("tx", "get", txid, "--as", "alice", "--json", *at).stdout)["receipt"]["ok"] is True
    refused(cli("tx", "get", txid, "--as", "ins-admin", *at, ok=False), 1, "[not_your_data]")


# ---------------------------------------------------------------- share links


def test_a_share_link_opens_the_report_without_a_key_until_the_holder_sells(chain, tmp_path: Path) -> None:
    node, data, at, people = chain
    trust = data / "genesis.json"
    r = cli("report", "share", SOLD, "--expires", "1h", "--as", "carol", *at)
    link = r.stdout.strip()
    assert link.startswith(f"{node.url}/reports/{SOLD}?share=") and "\n" not in link
    assert "selling the vehicle voids it" in " ".join(r.stderr.split())

    # no key, no data folder, no --node: only the link, which names its node
    opened = cli("report", SOLD, "--share", link, "--trust", trust, "--json", "-", cwd=tmp_path)
    doc = json.loads(opened.stdout)
    assert doc["vin"] == SOLD and doc["summary"]["owners"] >= 1
    assert f"trust anchor {trust}" in opened.stderr
    refused(cli("report", SOLD, "--node", node.url, "--trust", trust, cwd=tmp_path, ok=False), 1,
            "[signature_required]")  # without the link, the same reader is refused

    cli("tx", "send", "vehicles.transfer_title", "--key", "carol", "--cosign", "bob", "--set", f"vin={SOLD}",
        "--set", f"to={people['bob']}", *at)
    r = cli("report", SOLD, "--share", link, "--node", node.url, "--trust", trust, cwd=tmp_path, ok=False)
    refused(r, 1, "[share_token_invalid]")
    r = cli("report", SOLD, "--as", "bob", "--node", node.url, "--trust", trust, cwd=data.parent)
    assert "verified" in r.stdout  # the new holder reads it
    refused(cli("report", SOLD, "--as", "carol", "--node", node.url, "--trust", trust, cwd=data.parent, ok=False), 1,
            "[unknown_caller]")  # the former holder no longer does: she holds no vehicle now


def test_as_takes_a_key_file_from_anywhere_and_a_missing_folder_is_named(chain, tmp_path: Path) -> None:
    node, data, at, _ = chain
    key_file = data / "keys" / "alice.json"
    r = cli("query", "vehicles", "vehicle", f"vin={VIN}", "--node", node.url, "--as", key_file, cwd=tmp_path)
    assert json.loads(r.stdout)["vin"] == VIN
    bogus = tmp_path / "not-a-key.json"
    bogus.write_text('{"name": "x", "did": "did:key:z6Mkw", "seed": "00"}')
    refused(cli("query", "vehicles", "vehicle", f"vin={VIN}", "--node", node.url, "--as", bogus, ok=False), 2,
            "not a blokauto key file")
    refused(cli("state", f"veh/v/{VIN}", "--node", node.url, "--as", "alice", "--data", tmp_path / "kyes", ok=False),
            2, "holds no")


def test_a_share_link_lasts_at_most_90_days(chain) -> None:
    _, _, at, _ = chain
    refused(cli("report", "share", VIN, "--expires", "91d", "--as", "alice", *at, ok=False), 2, "at most 90 days")
    refused(cli("report", "share", VIN, "--expires", "soon", "--as", "alice", *at, ok=False), 2, "--expires")


def test_only_the_holder_shares_a_report(chain) -> None:
    _, _, at, _ = chain
    refused(cli("report", "share", VIN, "--expires", "1h", "--as", "ins-admin", *at, ok=False), 1,
            "[consent_required]")


# ---------------------------------------------------------------- usage


def test_tx_submit_without_as_is_a_usage_error(chain, tmp_path: Path) -> None:
    _, data, at, _ = chain
    f = tmp_path / "tx.json"
    cli("tx", "build", "consent.grant", grant_fields(VIN, "oem"), "--sender", "alice", "--out", f, *at)
    cli("tx", "sign", f, "--key", "alice", "--data", data)
    r = cli("tx", "submit", f, *at, ok=False)
    assert r.returncode == 2 and "--as" in r.stderr and r.stdout == "", r.stderr
    sub = json.loads(cli("tx", "submit", f, "--as", "alice", "--json", *at).stdout)
    assert sub["receipt"]["ok"] is True  # the same file, signed with --as, is submitted


# ---------------------------------------------------------------- the event stream


def test_events_leave_out_what_the_signer_may_not_read(chain) -> None:
    _, _, at, _ = chain
    mine = cli("events", "--from-height", 0, "--no-follow", "--as", "alice", *at).stdout
    seen = [json.loads(line) for line in mine.splitlines()]
    assert any(e.get("vin") == VIN for e in seen) and not any(e.get("vin") == SOLD for e in seen)
    everything = cli("events", "--from-height", 0, "--no-follow", "--as", "reg-admin", *at).stdout
    assert VIN in everything and SOLD in everything  # a regulator reads every vehicle's events
    r = cli("events", "--from-height", 0, "--no-follow", "--as", "ins-admin", *at)
    assert VIN not in r.stdout and SOLD not in r.stdout
    refused(cli("events", "--from-height", 0, "--no-follow", *at, ok=False), 1, "[signature_required]")


def test_consent_with_wait_0_prints_the_id_and_returns(chain) -> None:
    """Found by the fourth attack: `consent revoke … --wait 0` printed unknown_tx and exited 1."""
    import re

    _, _, at, _ = chain
    r = cli("consent", "grant", VIN, "--to", "ins", "--category", "odometer", "--purpose", "quote", "--until", "1h",
            "--key", "alice",
            "--wait", "0", *at)
    assert re.fullmatch(r"[0-9a-f]{64}", r.stdout.strip()), r.stdout
