"""The real ``blokauto`` command line, end to end: a chain created with ``init``, a node started
with ``node start`` in a child process (stopped by its PID), transactions sent, built, co-signed
and submitted, reads verified (signed with ``--as NAME``, a key in DATA/keys), refusals reported
with their code, and the offline tools (``status --data``, ``audit``) and ``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blokauto.keystore import KeyStore

from conftest import NodeProcess, free_port, run_cli, write_chain

pytestmark = pytest.mark.e2e  # starts real node processes

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
ROLES = 'roles=["manufacturer"]'


def cli(*args: Any, ok: bool = True, **kw: Any):
    r = run_cli(*[str(a) for a in args], env=ENV, **kw)
    if ok:
        assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def cli_json(*args: Any) -> Any:
    return json.loads(cli(*args, "--json").stdout)


def init_chain(data: Path) -> None:
    r = cli("init", "--data", data, "--org", "oem:manufacturer", "--org", "ins:insurer")
    assert "created chain" in r.stdout and (data / "genesis.json").exists()


def new_key(data: Path, name: str) -> str:
    """A key in DATA/keys (``keys new`` itself is tested once; set-up uses the key store directly)."""
    return KeyStore(data / "keys").create(name).did


def stop(node: NodeProcess) -> None:
    """SIGTERM by PID (a clean stop that flushes state), SIGKILL if it does not stop."""
    try:
        node.stop()
    finally:
        if node.proc.poll() is None:
            node.kill()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    data = tmp_path_factory.mktemp("cli") / "chain"
    init_chain(data)
    node = NodeProcess(data)
    try:
        yield node
    finally:
        stop(node)


def send_add_member(node: NodeProcess, sender: str, member_key: str, did: str, *extra: str, ok: bool = True):
    return cli("tx", "send", "governance.add_member", "--key", sender, "--cosign", member_key, "--set", f"member={did}",
               "--set", ROLES, "--data", node.data, "--node", node.url, *extra, ok=ok)


# ---------------------------------------------------------------- init and keys


def test_init_creates_the_trust_anchor_and_founding_keys(tmp_path):
    data = tmp_path / "chain"
    init_chain(data)
    genesis = json.loads((data / "genesis.json").read_text())
    assert genesis["chain"] == "blokauto-local" and genesis["quorum"] == 1
    assert {o["id"]: o["roles"] for o in genesis["organisations"]} == {"oem": ["manufacturer"], "ins": ["insurer"]}
    keys = {k["name"]: k for k in cli_json("keys", "list", "--data", data)}
    assert {"oem-admin", "oem-node", "ins-admin", "ins-node"} <= set(keys)
    assert keys["oem-node"]["kind"] == "node" and keys["oem-admin"]["kind"] == "member"
    oem = next(o for o in genesis["organisations"] if o["id"] == "oem")
    assert oem["admins"] == [keys["oem-admin"]["did"]] and oem["nodes"] == [keys["oem-node"]["did"]]
    assert oct((data / "keys" / "oem-admin.json").stat().st_mode & 0o777) == "0o600"

    did = cli("keys", "new", "workshop-laptop", "--data", data).stdout.strip()
    assert did.startswith("did:key:z")
    assert cli("keys", "show", "workshop-laptop", "--data", data).stdout.strip() == did

    again = cli("keys", "new", "workshop-laptop", "--data", data, ok=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert cli("keys", "show", "workshop-laptop", "--data", data).stdout.strip() == did  # not replaced
    missing = cli("keys", "show", "nobody", "--data", data, ok=False)
    assert missing.returncode == 2 and "nobody" in missing.stderr
    bad_name = cli("keys", "new", "../escape", "--data", data, ok=False)
    assert bad_name.returncode == 2 and not (tmp_path / "escape.json").exists()

    before = (data / "genesis.json").read_bytes()
    twice = cli("init", "--data", data, "--org", "x:dealer", ok=False)
    assert twice.returncode == 2 and "already holds a chain" in twice.stderr
    assert (data / "genesis.json").read_bytes() == before

    r = cli("init", "--data", tmp_path / "c", "--org", "just-a-name", ok=False)
    assert r.returncode == 2 and "ID:ROLE" in r.stderr
    assert not (tmp_path / "c" / "genesis.json").exists()


# ---------------------------------------------------------------- the whole journey on one chain


def test_journey_send_build_sign_submit_read_then_audit_offline(tmp_path):
    data = tmp_path / "chain"
    init_chain(data)
    node = NodeProcess(data)
    try:
        line = new_key(data, "line-7")
        r = send_add_member(node, "oem-admin", "line-7", line)
        assert "committed" in r.stdout and "governance.member_added" in r.stdout
        txid = r.stdout.split("committed", 1)[1].split()[0]

        got = cli_json("tx", "get", txid, "--as", "oem-admin", "--data", data, "--node", node.url)  # its sender
        assert got["id"] == txid and got["receipt"]["ok"] is True
        assert got["receipt"]["events"][0]["member"] == line

        # multi-party: the admin builds, both keys sign (one command, two keys), anyone submits
        desk = new_key(data, "desk")
        unsigned = tmp_path / "add-desk.json"
        cli("tx", "build", "governance.add_member", "--sender", "oem-admin", "--set", f"member={desk}",
            "--set", ROLES, "--out", unsigned, "--data", data, "--node", node.url)
        assert json.loads(unsigned.read_text())["sigs"] == []
        signed = cli("tx", "sign", unsigned, "--key", "oem-admin", "--key", "desk", "--data", data)
        assert "2 signature(s)" in signed.stdout
        sub = cli_json("tx", "submit", unsigned, "--as", "desk", "--data", data, "--node", node.url)  # a signer
        assert sub["receipt"]["ok"] is True and sub["height"] > got["height"]

        st = cli_json("status", "--node", node.url)
        assert st["height"] == sub["height"] and st["healthy"] is True and st["committed_txs"] == 2

        member = cli_json("state", f"gov/member/{desk}", "--as", "ins-admin", "--data", data, "--node", node.url)
        assert member["verified"] is True and member["value"]["org"] == "oem"
        human = cli("state", f"gov/member/{line}", "--as", "line-7", "--data", data, "--node", node.url).stdout
        assert "verified" in human and "manufacturer" in human

        org = json.loads(cli("query", "governance", "organisation", "id=oem", "--as", "ins-admin", "--data", data,
                             "--node", node.url).stdout)
        assert {line, desk} <= {m["did"] for m in org["members"]}
    finally:
        stop(node)
    assert node.proc.returncode is not None

    offline = cli_json("status", "--data", data)
    assert offline["height"] == st["height"] and offline["head"] == st["head"]
    assert offline["state_root"] == st["state_root"] and offline["attestations"] == 1

    audit = cli("audit", "--data", data)
    assert "audit OK" in audit.stdout and "2 transactions" in audit.stdout
    report = cli_json("audit", "--data", data)
    assert report["ok"] is True and report["findings"] == [] and report["txs"] == 2
    assert report["height"] == st["height"] and report["state_height"] == st["height"]


# ---------------------------------------------------------------- refusals and errors against a running node


def test_sender_without_the_admin_role_is_refused(running):
    data = running.data
    worker = new_key(data, "worker")
    send_add_member(running, "oem-admin", "worker", worker)
    friend = new_key(data, "friend")
    r = send_add_member(running, "worker", "friend", friend, ok=False)
    assert r.returncode == 1
    assert "[role_not_allowed]" in r.stderr and "admin" in r.stderr
    assert r.stdout.strip() == ""


def test_missing_cosigner_is_refused(running):
    did = new_key(running.data, "shy")
    r = cli("tx", "send", "governance.add_member", "--key", "oem-admin", "--set", f"member={did}", "--set", ROLES,
            "--data", running.data, "--node", running.url, ok=False)
    assert r.returncode == 1 and "[missing_cosigner]" in r.stderr


def test_admin_of_another_organisation_records_a_failed_transaction(running):
    """Organisation ownership is a domain rule: the attempt is committed as failed, not refused."""
    did = new_key(running.data, "oem-tech")
    send_add_member(running, "oem-admin", "oem-tech", did)
    r = cli("tx", "send", "governance.revoke_member", "--key", "ins-admin", "--set", f"member={did}",
            "--data", running.data, "--node", running.url, ok=False)
    assert r.returncode == 1  # on the ledger, as a failure
    assert "failed" in r.stdout and "[not_your_organisation]" in r.stdout
    member = cli_json("state", f"gov/member/{did}", "--as", "ins-admin", "--data", running.data, "--node", running.url)
    assert member["value"]["status"] == "active"


def test_submitting_the_same_file_twice_is_a_replay(running, tmp_path):
    data = running.data
    did = new_key(data, "twice")
    f = tmp_path / "tx.json"
    cli("tx", "build", "governance.add_member", "--sender", "oem-admin", "--set", f"member={did}", "--set", ROLES,
        "--out", f, "--data", data, "--node", running.url)
    cli("tx", "sign", f, "--key", "oem-admin", "--data", data)
    cli("tx", "sign", f, "--key", "twice", "--data", data)  # signatures accumulate across commands
    assert len(json.loads(f.read_text())["sigs"]) == 2
    cli("tx", "submit", f, "--as", "oem-admin", "--data", data, "--node", running.url)
    again = cli("tx", "submit", f, "--as", "oem-admin", "--data", data, "--node", running.url, ok=False)
    assert again.returncode == 1 and "[replayed_tx]" in again.stderr


def test_tampered_transaction_file_is_refused(running, tmp_path):
    data = running.data
    did = new_key(data, "tamper")
    f = tmp_path / "tx.json"
    cli("tx", "build", "governance.add_member", "--sender", "oem-admin", "--set", f"member={did}", "--set", ROLES,
        "--out", f, "--data", data, "--node", running.url)
    cli("tx", "sign", f, "--key", "oem-admin", "--key", "tamper", "--data", data)
    tx = json.loads(f.read_text())
    tx["body"]["msg"]["roles"] = ["admin", "manufacturer"]  # escalate after signing
    f.write_text(json.dumps(tx))
    r = cli("tx", "submit", f, "--as", "oem-admin", "--data", data, "--node", running.url, ok=False)
    assert r.returncode == 1 and "[bad_signature]" in r.stderr


def test_unknown_message_type_and_bad_fields(running):
    data = running.data
    r = cli("tx", "send", "governance.crown_king", "--key", "oem-admin", "--data", data, "--node", running.url, ok=False)
    assert r.returncode == 2 and "no message type 'governance.crown_king'" in r.stderr and "blokauto messages" in r.stderr
    r = cli("tx", "send", "governance.add_member", "--key", "oem-admin", "--set", "member=x", "--set", "roles=7",
            "--data", data, "--node", running.url, ok=False)
    assert r.returncode == 2 and "roles" in r.stderr
    r = cli("tx", "send", "governance.add_member", "--key", "no-such-key", "--data", data, "--node", running.url,
            ok=False)
    assert r.returncode == 2 and "no-such-key" in r.stderr


def test_tx_get_with_a_bad_or_unknown_id(running):
    r = cli("tx", "get", "not-an-id", "--data", running.data, "--node", running.url, ok=False)
    assert r.returncode == 2 and "'not-an-id' is not a transaction id" in r.stderr  # a usage error, checked locally
    r = cli("tx", "get", "ab" * 32, "--as", "oem-admin", "--data", running.data, "--node", running.url, ok=False)
    assert r.returncode == 1 and "[unknown_tx]" in r.stderr


def test_state_checked_against_another_trust_anchor_fails_verification(running, tmp_path):
    other = tmp_path / "other"
    write_chain(other)
    r = cli("state", "gov/org/oem", "--trust", other / "genesis.json", "--as", "oem-admin", "--data", running.data,
            "--node", running.url, ok=False)  # --trust wins over DATA/genesis.json; DATA holds the key
    assert r.returncode == 3 and "verification failed" in r.stderr
    ok = cli_json("state", "gov/org/oem", "--as", "oem-admin", "--data", running.data, "--node", running.url)
    assert ok["verified"] is True and ok["value"]["id"] == "oem"


def test_state_of_an_absent_key_is_proven_absent(running):
    r = cli("state", "gov/org/nobody", "--as", "oem-admin", "--data", running.data, "--node", running.url)
    assert "absent (proven)" in r.stdout


def test_status_and_query_against_a_running_node(running):
    st = cli_json("status", "--node", running.url)
    assert st["chain"] == "blokauto-local" and st["healthy"] is True
    offline = cli_json("status", "--data", running.data)  # reading the folder of a running node
    assert offline["chain"] == st["chain"] and offline["height"] >= 0
    human = cli("status", "--node", running.url).stdout
    assert "height" in human and st["chain"] in human
    signed = ("--as", "ins-admin", "--data", running.data, "--node", running.url)
    orgs = json.loads(cli("query", "governance", "organisations", *signed).stdout)
    assert {o["id"] for o in orgs} == {"oem", "ins"}
    bad = cli("query", "governance", "proposals", "limit=lots", *signed, ok=False)
    assert bad.returncode == 1 and "[invalid_query]" in bad.stderr
    unsigned = cli("query", "governance", "organisations", "--node", running.url, ok=False)
    assert unsigned.returncode == 1 and "[signature_required]" in unsigned.stderr and unsigned.stdout == ""


def test_messages_lists_what_the_software_knows():
    table = cli("messages").stdout
    assert "governance.add_member" in table and "admin" in table
    listed = cli_json("messages")
    add = next(m for m in listed if m["type"] == "governance.add_member")
    assert add["roles"] == "admin" and add["schema"]


def test_unreachable_node_is_a_clear_error(tmp_path):
    r = cli("status", "--node", f"http://127.0.0.1:{free_port()}", ok=False)
    assert r.returncode == 2 and "cannot reach" in r.stderr


def test_status_of_a_folder_without_a_chain(tmp_path):
    r = cli("status", "--data", tmp_path, ok=False)
    assert r.returncode == 2 and "holds no chain" in r.stderr


# ---------------------------------------------------------------- demo


def test_demo_runs_audits_and_can_run_again(tmp_path):
    data = tmp_path / "demo"
    first = cli("demo", "--data", data, timeout=180)
    assert "audit: OK" in first.stdout, first.stdout
    assert "FAILED" not in first.stdout
    # the insured driver: a claim opened by the car's own crash report, a statement checked to the cent and paid
    assert "opens a claim on Dan's policy in the same transaction" in first.stdout
    assert "[period_not_ended]" in first.stdout and "Dan's SDK checks the statement to the cent" in first.stdout
    assert "Allied pays the claim from its account to Dan's" in first.stdout and "Dan pays the statement" in first.stdout
    insured = first.stdout.split("Insurance that reads the road", 1)[1].split("Sharing the report", 1)[0]
    assert insured.count("recorded as failed") == 1  # only the bill sent before the month ended
    assert (data / "chain.db").exists() and (data / "genesis.json").exists()
    genesis1 = (data / "genesis.json").read_bytes()
    second = cli("demo", "--data", data, timeout=180)
    assert "audit: OK" in second.stdout
    assert (data / "genesis.json").read_bytes() != genesis1  # a fresh chain replaced the demo's own folder


def test_demo_refuses_a_folder_holding_other_data(tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    (data / "thesis.txt").write_text("four years of work")
    r = cli("demo", "--data", data, ok=False)
    assert r.returncode != 0 and "holds other data" in r.stderr
    assert (data / "thesis.txt").read_text() == "four years of work"
    assert sorted(p.name for p in data.iterdir()) == ["thesis.txt"]


def test_demo_refuses_a_real_chain_folder(tmp_path):
    data = tmp_path / "chain"
    write_chain(data)
    before = {p.name: p.read_bytes() for p in (data / "keys").iterdir()}
    r = cli("demo", "--data", data, ok=False)
    assert r.returncode != 0 and "holds other data" in r.stderr
    assert {p.name: p.read_bytes() for p in (data / "keys").iterdir()} == before
