"""``blokauto consent`` end to end: a chain made with ``init``, a node started with ``node start`` in
a child process (stopped by its PID), a vehicle sold to a person, who grants an insurer consent,
lists it, and revokes it, each through the real command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blokauto.keystore import KeyStore

from conftest import NodeProcess, run_cli

pytestmark = pytest.mark.e2e  # starts a real node process

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
VIN = "WVWZZZ1JZ00000042"


def cli(*args: Any, ok: bool = True):
    r = run_cli(*[str(a) for a in args], env=ENV)
    if ok:
        assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


@pytest.fixture(scope="module")
def sold(tmp_path_factory: pytest.TempPathFactory):
    """A node on a fresh chain where oem made VIN and sold it to alice (a key in DATA/keys)."""
    data: Path = tmp_path_factory.mktemp("consent") / "chain"
    cli("init", "--data", data, "--org", "oem:manufacturer", "--org", "ins:insurer", "--org", "reg:regulator")
    alice = KeyStore(data / "keys").create("alice").did
    node = NodeProcess(data)
    try:
        at = ("--data", data, "--node", node.url)
        cli("tx", "send", "vehicles.assign_wmi", "--key", "reg-admin", "--set", "wmi=WVW", "--set", "org=oem", *at)
        birth = {"vin": VIN, "make": "Test", "model": "T", "model_year": 2027, "body": "sedan", "powertrain": "bev",
                 "plant": "P1", "build_date": "2027-01-15", "country": "DE"}
        cli("tx", "send", "vehicles.register", json.dumps(birth), "--key", "oem-admin", *at)
        cli("tx", "send", "vehicles.transfer_title", "--key", "oem-admin", "--cosign", "alice", "--set", f"vin={VIN}",
            "--set", f"to={alice}", *at)
        yield node, at, alice
    finally:
        node.stop()
        if node.proc.poll() is None:
            node.kill()


def test_holder_grants_lists_and_revokes_consent_through_the_cli(sold) -> None:
    node, at, alice = sold
    r = cli("consent", "grant", VIN, "--to", "ins", "--category", "history", "--category", "odometer",
            "--purpose", "quote a policy", "--until", "30d", "--key", "alice", "--json", *at)
    receipt = json.loads(r.stdout)["receipt"]
    assert receipt["ok"] and receipt["events"][0]["type"] == "consent.granted"
    gid = receipt["events"][0]["grant"]

    listed = json.loads(cli("consent", "list", VIN, "--as", "alice", "--json", *at).stdout)
    assert [(g["id"], g["org"], g["categories"], g["status"], g["holder"]) for g in listed["grants"]] == [
        (gid, "ins", ["history", "odometer"], "active", alice)]
    text = cli("consent", "list", VIN, "--as", "alice", *at).stdout
    assert "active" in text and "quote a policy" in text
    assert json.loads(cli("query", "vehicles", "history", f"vin={VIN}", "--as", "ins-admin", *at).stdout)["total"] >= 2

    r = cli("consent", "revoke", VIN, gid, "--key", "alice", *at)
    assert "committed" in r.stdout and "consent.revoked" in r.stdout
    listed = json.loads(cli("consent", "list", VIN, "--as", "alice", "--json", *at).stdout)
    assert [g["status"] for g in listed["grants"]] == ["revoked"]
    r = cli("query", "vehicles", "history", f"vin={VIN}", "--as", "ins-admin", *at, ok=False)
    assert r.returncode == 1 and "[consent_required]" in r.stderr and r.stdout == ""  # the revocation closed it


def test_only_the_holder_lists_a_vehicles_grants(sold) -> None:
    _, at, _ = sold
    r = cli("consent", "list", VIN, "--as", "ins-admin", *at, ok=False)
    assert r.returncode == 1 and "[not_your_data]" in r.stderr and r.stdout == ""
    r = cli("consent", "list", VIN, *at, ok=False)
    assert r.returncode == 1 and "[signature_required]" in r.stderr
    assert f"{VIN}: " in cli("consent", "list", VIN, "--as", "reg-admin", *at).stdout  # a regulator reads them


def test_refusals_name_their_code_and_exit_1(sold) -> None:
    _, at, _ = sold
    r = cli("consent", "grant", VIN, "--to", "ins", "--category", "history", "--purpose", "x", "--until", "1d",
            "--key", "oem-admin", *at, ok=False)
    assert r.returncode == 1 and "[not_holder]" in r.stdout + r.stderr
    r = cli("consent", "grant", VIN, "--to", "ins", "--category", "history", "--purpose", "x", "--until", "400d",
            "--key", "alice", *at, ok=False)
    assert r.returncode == 1 and "[consent_too_long]" in r.stdout + r.stderr
    r = cli("consent", "revoke", VIN, 999, "--key", "alice", *at, ok=False)
    assert r.returncode == 1 and "[unknown_grant]" in r.stdout + r.stderr
    r = cli("consent", "grant", VIN, "--to", "ins", "--category", "history", "--purpose", "x", "--until", "soon",
            "--key", "alice", *at, ok=False)
    assert r.returncode == 2 and "--until" in r.stderr


def test_the_sdk_example_of_docs_consent(sold) -> None:
    """docs/consent.md's SDK example: Client.send and Client.query cover consent."""
    from blokauto.client import Client
    from blokauto.modules.consent.messages import GrantConsent, RevokeConsent

    node, _, _ = sold
    carla = KeyStore(node.data / "keys").load("alice")
    with Client(node.url, trust=node.data / "genesis.json", key=carla) as bc:
        head = bc.checkpoint("latest").header
        info = bc.send(GrantConsent(vin=VIN, org="ins", categories=["history", "odometer"],
                                    purpose="quote for a comprehensive policy", until=head.time + 30 * 86_400_000), carla)
        grant = info.events[0]["grant"]
        answer = bc.query("consent", "allowed", vin=VIN, org="ins", category="history",
                          min_height=info.height)  # as of the time of the block the query reads
        assert (answer["allowed"], answer["grant"]) == (True, grant)
        assert answer["at"] >= head.time  # a block after the grant's: never earlier than the head before it
        later = bc.query("consent", "allowed", vin=VIN, org="ins", category="history",
                         at=head.time + 31 * 86_400_000, min_height=info.height)
        assert later["allowed"] is False  # an explicit moment after the grant ran out
        revoked = bc.send(RevokeConsent(vin=VIN, grant=grant), carla)
        assert revoked.ok
        answer = bc.query("consent", "allowed", vin=VIN, org="ins", category="history", at=head.time,
                          min_height=revoked.height)
        assert answer["allowed"] is False
