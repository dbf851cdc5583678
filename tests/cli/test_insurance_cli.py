"""``blokauto insurance`` end to end: a chain made with ``init`` (a maker, an e-money issuer, an insurer,
a workshop, a regulator), a node started with ``node start`` in a child process (stopped by its
PID), and a policy's life through the real command line: a product published, a policy bound by
the insurer with the holder's co-signature, trips sent through the node's sample route
(``blokauto telemetry send``), a crash that opens its claim in the same transaction, a statement
issued once its period ended, checked to the cent and paid, the claim assessed, approved and paid;
then the main refusals, each with its stable code and exit code.

The node keeps real time: the period ends because the holder cancels (its last period is billed pro
rata, and the product has no cap, so the premium is the usage: 5 cents a km, 1.00 EUR a harsh brake).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from blokauto.keystore import KeyStore

from helpers.insurance import daytime_offset
from conftest import NodeProcess, run_cli

pytestmark = pytest.mark.e2e  # starts a real node process

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
VIN = "WVWZZZ1JZ00000077"
PAYD = ("--base", 2_000, "--per-km", 5, "--night-factor-bps", 5_000, "--per-harsh-brake", 100,
        "--per-over-limit-minute", 20, "--min", 1_000, "--max", 1_000_000, "--max-coverage", 1_000_000)


def cli(*args: Any, ok: bool = True):
    r = run_cli(*[str(a) for a in args], env=ENV)
    if ok:
        assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def refused(code: str, *args: Any, exit_code: int = 1) -> str:
    """Run a command that must be refused with ``code`` (exit 1); returns what it printed."""
    r = cli(*args, ok=False)
    out = r.stdout + r.stderr
    assert r.returncode == exit_code and f"[{code}]" in out, f"{args}: exit {r.returncode}, expected [{code}]\n{out}"
    return out


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def wait_past(t: int) -> None:
    while now_ms() <= t:
        time.sleep(max(0.0, (t - now_ms() + 5) / 1000))


def samples(path: Path, start: int, n: int, *, step_m: int, odo_m: int = 0, brake_at: tuple[int, ...] = ()) -> Path:
    """``n`` samples 5 ms apart from ``start`` (a trip compressed in time: the summary counts the
    odometer), ``step_m`` metres apart, braking hard at ``brake_at``."""
    rows = [[start + 5 * i, 80, -5_000 if i in brake_at else 200, 481_370, 115_750, odo_m + i * step_m, 100, 0]
            for i in range(n)]
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    """A node where oem made VIN (device key ``car``) and sold it to alice; alice holds 1,000.00 EUR,
    org:ins 10,000.00 EUR; ins publishes "payd" (30-day periods, no cap)."""
    data: Path = tmp_path_factory.mktemp("insurance") / "chain"
    cli("init", "--data", data, "--org", "oem:manufacturer", "--org", "reg:regulator,police", "--org", "emi:issuer",
        "--org", "ins:insurer", "--org", "shop:workshop")
    keys = KeyStore(data / "keys")
    alice, car = keys.create("alice", kind="owner").did, keys.create("car", kind="device").did
    keys.create("bob", kind="owner")
    node = NodeProcess(data)
    try:
        at = ("--data", data, "--node", node.url)
        cli("tx", "send", "vehicles.assign_wmi", "--key", "reg-admin", "--set", "wmi=WVW", "--set", "org=oem", *at)
        birth = {"vin": VIN, "make": "Test", "model": "T", "model_year": 2027, "body": "sedan", "powertrain": "bev",
                 "plant": "P1", "build_date": "2027-01-15", "country": "DE", "device_keys": [car]}
        cli("tx", "send", "vehicles.register", json.dumps(birth), "--key", "oem-admin", *at)
        cli("tx", "send", "vehicles.transfer_title", "--key", "oem-admin", "--cosign", "alice", "--set", f"vin={VIN}",
            "--set", f"to={alice}", *at)
        cli("payments", "currency", "register", "EUR", "--key", "emi-admin", *at)
        (data / "audit.pdf").write_bytes(b"reserves: 10,000,000.00 EUR")
        cli("payments", "currency", "attest", "EUR", 1_000_000_000, "--evidence", data / "audit.pdf",
            "--key", "emi-admin", *at)
        cli("payments", "issue", 100_000, "EUR", "--to", "alice", "--key", "emi-admin", *at)
        cli("payments", "issue", 1_000_000, "EUR", "--to", "org:ins", "--key", "emi-admin", *at)
        r = cli("insurance", "product", "publish", "payd", "--currency", "EUR", "--period-days", 30, *PAYD,
                "--key", "ins-admin", *at)
        assert "product payd version 1 published: base 20.00 EUR, 0.05 EUR/km, night km +50 %" in r.stdout
        yield node, at, data
    finally:
        node.stop()
        if node.proc.poll() is None:
            node.kill()


def balance(at: tuple, who: str, as_: str | None = None) -> int:
    return json.loads(cli("payments", "balance", "EUR", "--of", who, "--as", as_ or who, "--json", *at).stdout)["balance"]


def event(r: Any, type_: str) -> dict[str, Any]:
    return next(e for e in json.loads(r.stdout)["receipt"]["events"] if e["type"] == type_)


def test_a_policy_from_binding_to_a_paid_claim_and_a_checked_statement(chain, tmp_path: Path) -> None:
    _, at, _ = chain
    shown = cli("insurance", "product", "show", "ins", "payd", "--as", "alice", *at).stdout
    assert "payd version 1 by ins: EUR, 30-day periods" in shown and "covers up to 10,000.00 EUR a claim" in shown
    assert "ins payd (EUR)" in cli("insurance", "product", "list", "--as", "alice", *at).stdout

    # consent counts for a period only if granted by its start (and runs to its end)
    cli("consent", "grant", VIN, "--to", "ins", "--category", "driving", "--purpose", "pay as you drive",
        "--until", "120d", "--key", "alice", *at)
    r = cli("insurance", "policy", "bind", VIN, "--product", "payd", "--start", "2s", "--periods", 3,
            "--deductible", 10_000, "--coverage", 500_000, "--cosign", "alice", "--key", "ins-admin", "--json", *at)
    policy = event(r, "insurance.policy_changed")["policy"]
    assert event(r, "insurance.policy_changed")["change"] == "bound"
    p = json.loads(cli("insurance", "policy", "show", policy, "--as", "alice", "--json", *at).stdout)
    start = p["start"]
    text = cli("insurance", "policy", "show", policy, "--as", "ins-admin", *at).stdout
    assert f"policy {policy} on {VIN} by ins (payd version 1)" in text and "3 period(s) of 30 d, 0 billed" in text

    # Two trips through the node's sample route: 12 km with a harsh brake, then 6 km.
    r = cli("telemetry", "send", "--vin", VIN, "--samples", samples(tmp_path / "t1.json", start + 10, 31, step_m=400,
                                                                    brake_at=(7,)),
            "--utc-offset", str(daytime_offset(start)), "--key", "car", *at)
    assert "batch 1 of" in r.stdout
    cli("telemetry", "send", "--vin", VIN, "--samples", samples(tmp_path / "t2.json", start + 200, 31, step_m=200,
                                                                odo_m=12_000),
        "--utc-offset", str(daytime_offset(start)), "--key", "car", *at)
    wait_past(start + 400)
    r = cli("telemetry", "crash", VIN, "--decel", 52_000, "--airbag", "--odometer-m", 18_000, "--key", "car",
            "--json", *at)
    claim = event(r, "insurance.claim_changed")["claim"]  # opened in the crash report's own transaction
    assert event(r, "insurance.claim_changed")["status"] == "opened"

    out = refused("period_not_ended", "insurance", "statements", "issue", policy, "--key", "ins-admin", *at)
    assert f"Period 0 of policy {policy} ends at" in out
    assert "no statement of ins is due" in cli("insurance", "statements", "issue", "--key", "ins-admin", *at).stdout
    assert "cancelled; its last period can be billed now" in cli("insurance", "policy", "cancel", policy,
                                                                  "--key", "alice", *at).stdout
    r = cli("insurance", "statements", "issue", "--key", "ins-admin", *at)
    assert f"issued: policy {policy} period 0" in r.stdout

    listed = cli("insurance", "statements", "list", policy, "--as", "alice", *at).stdout
    assert "18 km (0 at night), 1 harsh brake(s), 0 min over the limit, 2 batch(es)" in listed and "1.90 EUR" in listed
    r = cli("insurance", "statements", "check", policy, 0, "--as", "alice", *at)
    assert f"valid: statement 0 of policy {policy}, 1.90 EUR, is what the pricing gives" in r.stdout
    assert "pro rata" in r.stdout and "the vehicle's trip totals" in r.stdout
    checked = json.loads(cli("insurance", "statements", "check", policy, 0, "--as", "alice", "--json", *at).stdout)
    assert (checked["premium"], checked["expected"], checked["totals"]["distance_m"]) == (190, 190, 18_000)
    quoted = json.dumps({"base": 2_000, "per_km": 4, "per_harsh_brake": 100, "min_premium": 1_000,
                         "max_premium": 1_000_000})  # 4 cents a km
    r = cli("insurance", "statements", "check", policy, 0, "--pricing", quoted, "--as", "alice", *at, ok=False)
    assert r.returncode == 1 and "statement check failed" in r.stderr and "says premium = 190" in r.stderr
    assert "gives 172" in r.stderr  # 4 x 18 + 100

    before = balance(at, "alice")
    r = cli("insurance", "statements", "pay", policy, 0, "--key", "alice", *at)
    assert f"paid the statement of policy {policy} period 0: 190 (minor units) to ins" in r.stdout
    assert balance(at, "alice") == before - 190
    refused("statement_paid", "insurance", "statements", "pay", policy, 0, "--key", "alice", *at)

    opened = json.loads(cli("insurance", "claim", "list", "--insurer", "ins", "--as", "ins-admin", "--json",
                            *at).stdout)
    assert [c["id"] for c in opened["claims"]] == [claim]
    text = cli("insurance", "claim", "show", claim, "--as", "alice", *at).stdout
    assert f"claim {claim} on policy {policy} ({VIN}): opened; opened by the vehicle's crash 1" in text
    refused("not_claim_workshop", "insurance", "claim", "assess", claim, 1, "--key", "shop-admin", *at)
    cli("insurance", "claim", "workshop", claim, "shop", "--key", "alice", *at)
    cli("insurance", "claim", "assess", claim, 180_000, "--reference", "EST-2291", "--key", "shop-admin", *at)
    as_shop = cli("insurance", "claim", "show", claim, "--as", "shop-admin", *at).stdout  # it reads the claim only
    assert "estimate 1,800.00 EUR by shop (EST-2291)" in as_shop
    r = cli("insurance", "claim", "decide", claim, "--approve", 175_000, "--key", "ins-admin", *at)
    assert f"claim {claim} on policy {policy}: approved" in r.stdout
    assert f"claim {claim} on policy {policy}: paid" in cli("insurance", "claim", "pay", claim, "--key", "ins-admin",
                                                            *at).stdout
    text = cli("insurance", "claim", "show", claim, "--as", "alice", *at).stdout
    assert "decided: covered, approved 1,750.00 EUR, payout 1,650.00 EUR" in text
    assert balance(at, "alice") == before - 190 + 165_000
    assert balance(at, "org:ins", "ins-admin") == 1_000_000 + 190 - 165_000


def test_refusals_carry_their_codes_and_exit_codes(chain) -> None:
    _, at, data = chain
    bob = KeyStore(data / "keys").entry("bob").did
    refused("role_not_allowed", "insurance", "product", "publish", "cheap", *PAYD, "--key", "oem-admin", *at)
    out = refused("invalid_product", "insurance", "product", "publish", "bad", "--base", 5_000, "--max", 4_000,
                  "--max-coverage", 1, "--key", "ins-admin", *at)
    assert "base 5000 is above max_premium 4000" in out
    bind = ("insurance", "policy", "bind", VIN, "--start", "1m", "--periods", 1, "--coverage", 100_000,
            "--key", "ins-admin", *at)
    refused("unknown_product", *bind, "--product", "nope", "--cosign", "alice")
    refused("missing_cosigner", *bind, "--product", "payd", "--cosign", "bob")  # bob does not hold the car
    out = refused("invalid_policy", "insurance", "policy", "bind", VIN, "--product", "payd", "--start", "1m",
                  "--periods", 1, "--coverage", 2_000_000, "--cosign", "alice", "--key", "ins-admin", *at)
    assert "coverage 2000000 is above the product's 1000000" in out
    out = refused("invalid_policy", *bind, "--product", "payd", "--cosign", "alice", "--start", "1")
    assert "no cover backdated" in out

    r = cli("insurance", "policy", "bind", VIN, "--product", "payd", "--start", "1h", "--periods", 1,
            "--deductible", 5_000, "--coverage", 100_000, "--cosign", "alice", "--key", "ins-admin", "--json", *at)
    policy = event(r, "insurance.policy_changed")["policy"]
    refused("policy_overlaps", *bind, "--product", "payd", "--cosign", "alice", "--start", "2h")
    refused("not_a_party", "insurance", "policy", "show", policy, "--as", "oem-admin", *at)  # a member, no party
    refused("unknown_caller", "insurance", "policy", "show", policy, "--as", "bob", *at)  # a key nobody knows
    r = cli("insurance", "policy", "show", policy, *at, ok=False)
    assert r.returncode == 1 and "[signature_required]" in r.stderr
    refused("not_policy_holder", "insurance", "policy", "cancel", policy, "--key", "bob", *at)
    refused("unknown_statement", "insurance", "statements", "pay", policy, 0, "--key", "alice", *at)
    refused("not_a_party", "insurance", "statements", "check", 999, 0, "--as", "alice", *at)  # no party: existence untold
    refused("unknown_policy", "insurance", "policy", "show", 999, "--as", "reg-admin", *at)  # a regulator reads all
    out = refused("no_active_policy", "insurance", "claim", "file", policy, "--incident", "now", "--odometer-km", 20,
                  "--key", "alice", *at)  # it starts in an hour
    assert f"Policy {policy} was not in force at" in out
    refused("unknown_crash", "insurance", "claim", "file", policy, "--crash", 9, "--key", "alice", *at)
    refused("role_not_allowed", "insurance", "claim", "assess", 1, 100, "--key", "ins-admin", *at)
    refused("unknown_claim", "insurance", "claim", "decide", 999, "--approve", 1, "--key", "ins-admin", *at)
    refused("claim_decided", "insurance", "claim", "decide", 1, "--deny", "other", "--key", "ins-admin", *at)
    refused("claim_not_approved", "insurance", "claim", "pay", 1, "--key", "ins-admin", *at)

    r = cli("insurance", "claim", "decide", 1, "--deny", "because", "--key", "ins-admin", *at, ok=False)
    assert r.returncode == 2 and "reason" in r.stderr  # not a reason code: a usage error, nothing sent
    r = cli("insurance", "claim", "decide", 1, "--key", "ins-admin", *at, ok=False)
    assert r.returncode == 2 and "give either --approve AMOUNT or --deny REASON" in r.stderr
    r = cli("insurance", "statements", "check", policy, 0, "--pricing", "{not json", "--as", "alice", *at, ok=False)
    assert r.returncode == 2 and "--pricing is not JSON" in r.stderr
    assert bob.startswith("did:key:")
