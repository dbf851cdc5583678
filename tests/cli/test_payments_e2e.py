"""``blokauto payments`` end to end: a chain made with ``init`` (an e-money issuer, a toll and a
parking operator, a bank), a node started with ``node start`` in a child process (stopped by its
PID), and money moved through the real command line: issued, transferred, overdrawn, spent by a
car within its holder's limits, paid through a channel with vouchers made and checked off the
ledger, and a car sold against escrow with its lien paid off in the same transaction."""

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


def refused(code: str, *args: Any) -> str:
    """Run a command that must be refused with ``code`` (exit 1); returns what it printed."""
    r = cli(*args, ok=False)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and f"[{code}]" in out, f"{args}: exit {r.returncode}, expected [{code}]\n{out}"
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    """A node where oem made VIN (device key ``car``) and sold it to alice; emi issues EUR; alice
    holds 1,000.00 EUR and bob 400.00 EUR."""
    data: Path = tmp_path_factory.mktemp("payments") / "chain"
    cli("init", "--data", data, "--org", "oem:manufacturer", "--org", "reg:regulator", "--org", "emi:issuer",
        "--org", "toll:toll", "--org", "park:parking", "--org", "bank:lender")
    keys = KeyStore(data / "keys")
    alice, car = keys.create("alice").did, keys.create("car", kind="device").did
    keys.create("bob")
    node = NodeProcess(data)
    try:
        at = ("--data", data, "--node", node.url)
        cli("tx", "send", "vehicles.assign_wmi", "--key", "reg-admin", "--set", "wmi=WVW", "--set", "org=oem", *at)
        birth = {"vin": VIN, "make": "Test", "model": "T", "model_year": 2027, "body": "sedan", "powertrain": "bev",
                 "plant": "P1", "build_date": "2027-01-15", "country": "DE", "device_keys": [car]}
        cli("tx", "send", "vehicles.register", json.dumps(birth), "--key", "oem-admin", *at)
        cli("tx", "send", "vehicles.transfer_title", "--key", "oem-admin", "--cosign", "alice", "--set", f"vin={VIN}",
            "--set", f"to={alice}", *at)
        cli("payments", "currency", "register", "EUR", "--exponent", "2", "--key", "emi-admin", *at)
        (data / "audit.pdf").write_bytes(b"reserves held at the central bank: 10,000,000.00 EUR")
        r = cli("payments", "currency", "attest", "EUR", 1_000_000_000, "--evidence", data / "audit.pdf",
                "--key", "emi-admin", *at)
        assert "reserves of 10,000,000.00 EUR attested" in r.stdout
        r = cli("payments", "issue", 100_000, "EUR", "--to", "alice", "--key", "emi-admin", *at)
        assert f"issued 1,000.00 EUR to {alice}" in r.stdout
        cli("payments", "issue", 40_000, "EUR", "--to", "bob", "--key", "emi-admin", *at)
        yield node, at
    finally:
        node.stop()
        if node.proc.poll() is None:
            node.kill()


def balance(at: tuple, who: str, as_: str | None = None) -> int:
    return json.loads(cli("payments", "balance", "EUR", "--of", who, "--as", as_ or who, "--json", *at).stdout)["balance"]


def test_issue_transfer_and_an_overdraft(chain) -> None:
    _, at = chain
    assert cli("payments", "balance", "EUR", "--as", "alice", *at).stdout.strip().endswith(": 1,000.00 EUR")
    r = cli("payments", "transfer", 1_250, "EUR", "--to", "bob", "--memo", "lunch", "--key", "alice", *at)
    assert "payments.transferred" in r.stdout and "paid 12.50 EUR to did:key:" in r.stdout
    assert (balance(at, "alice"), balance(at, "bob")) == (98_750, 41_250)
    out = refused("insufficient_funds", "payments", "transfer", 1_000_000, "EUR", "--to", "alice", "--key", "bob", *at)
    assert "holds 41250" in out  # the refusal names the balance
    assert balance(at, "bob") == 41_250  # the failed transfer moved nothing
    cli("payments", "redeem", 250, "EUR", "--key", "bob", *at)
    supply = json.loads(cli("payments", "supply", "EUR", "--as", "emi-admin", "--json", *at).stdout)
    assert (supply["supply"], supply["issuer"], supply["exponent"]) == (140_000 - 250, "emi", 2)
    assert "supply 1,397.50 EUR" in cli("payments", "supply", "EUR", "--as", "emi-admin", *at).stdout


def test_the_car_pays_within_its_holders_limits(chain) -> None:
    _, at = chain
    cli("payments", "limit", "set", VIN, "--per-payment", 500, "--per-day", 800, "--category", "toll",
        "--category", "parking", "--key", "alice", *at)
    refused("not_wallet_holder", "payments", "limit", "set", VIN, "--per-payment", 9_999, "--per-day", 9_999,
            "--category", "toll", "--key", "bob", *at)
    r = cli("payments", "tariff", "publish", "a8", "--category", "toll", "--unit", "km", "--zone", "A8",
            "--band", "00:00-24:00=10", "--base", 50, "--key", "toll-admin", *at)
    assert "tariff a8 version 1 published" in r.stdout
    assert "20 on a8 of toll at " in cli("payments", "tariff", "price", "toll", "a8", 20, "--as", "car", *at).stdout
    assert "00:00-24:00 0.10 EUR" in cli("payments", "tariff", "list", "toll", "--as", "car", *at).stdout

    r = cli("payments", "pay", "toll", "--vin", VIN, "--category", "toll", "--tariff", "a8", "--quantity", 20,
            "--key", "car", *at)  # the tariff's price: 50 + 20 x 10
    assert f"{VIN} paid 2.50 EUR to toll (toll)" in r.stdout
    shown = json.loads(cli("payments", "limit", "show", VIN, "--as", "car", "--json", *at).stdout)
    assert (shown["status"], shown["spent_today"]) == ("active", 250)
    assert "spent today 2.50 EUR" in cli("payments", "limit", "show", VIN, "--as", "alice", *at).stdout

    out = refused("over_payment_limit", "payments", "pay", "toll", 600, "--vin", VIN, "--category", "toll",
                  "--currency", "EUR", "--key", "car", *at)
    assert "per-payment limit" in out
    cli("payments", "pay", "toll", 450, "--vin", VIN, "--category", "toll", "--currency", "EUR", "--key", "car", *at)
    out = refused("over_daily_limit", "payments", "pay", "toll", 101, "--vin", VIN, "--category", "toll",
                  "--currency", "EUR", "--key", "car", *at)
    assert "daily limit" in out and "700 already spent" in out
    refused("not_a_device_of_vehicle", "payments", "pay", "toll", 100, "--vin", VIN, "--category", "toll",
            "--currency", "EUR", "--key", "bob", *at)
    cli("payments", "limit", "revoke", VIN, "--key", "alice", *at)
    refused("spending_limit_revoked", "payments", "pay", "toll", 100, "--vin", VIN, "--category", "toll",
            "--currency", "EUR", "--key", "car", *at)
    assert balance(at, "org:toll", "toll-admin") == 700


def test_a_channel_paid_with_vouchers_made_and_checked_off_the_ledger(chain, tmp_path: Path) -> None:
    node, at = chain
    r = cli("payments", "channel", "open", "park", 2_000, "EUR", "--category", "parking", "--key", "alice", "--json",
            *at)
    channel = json.loads(r.stdout)["receipt"]["events"][0]["channel"]
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    cli("payments", "voucher", "make", channel, 300, "--key", "alice", "--out", v1, *at)
    made = json.loads(cli("payments", "voucher", "make", channel, 700, "--key", "alice", "--out", v2, *at).stdout)
    assert (made["channel"], made["amount"], made["chain"]) == (channel, 700, "blokauto-local")
    r = cli("payments", "voucher", "check", v2, "--as", "park-admin", *at)
    assert f"valid: channel {channel} owes 7.00 EUR in all (deposit 20.00 EUR" in r.stdout
    forged = json.dumps({**made, "amount": 1_900})  # the payer's signature on a higher amount
    refused("voucher_forged", "payments", "voucher", "check", forged, "--as", "park-admin", *at)
    over = cli("payments", "voucher", "make", channel, 2_001, "--key", "alice", *at).stdout
    refused("voucher_over_deposit", "payments", "voucher", "check", over, "--as", "park-admin", *at)
    refused("not_a_party", "payments", "channel", "show", channel, "--as", "toll-admin", *at)  # not a party

    r = cli("payments", "channel", "claim", channel, "--voucher", v2, "--key", "park-admin", *at)
    assert f"channel {channel} closed: 700 to park, 1300 refunded" in r.stdout
    refused("channel_closed", "payments", "channel", "claim", channel, "--voucher", v2, "--key", "park-admin", *at)
    refused("channel_closed", "payments", "channel", "close", channel, "--key", "alice", *at)
    refused("channel_closed", "payments", "voucher", "check", v1, "--as", "park-admin", *at)
    assert "closed, deposit 20.00 EUR" in cli("payments", "channel", "show", channel, "--as", "alice", *at).stdout
    assert balance(at, "org:park", "park-admin") == 700

    # A payer's close with an old voucher; the merchant answers with the newer one in the challenge period.
    second = json.loads(cli("payments", "channel", "open", "park", 1_000, "EUR", "--category", "parking",
                            "--key", "alice", "--json", *at).stdout)["receipt"]["events"][0]["channel"]
    low = cli("payments", "voucher", "make", second, 100, "--key", "alice", *at).stdout
    high = cli("payments", "voucher", "make", second, 400, "--key", "alice", *at).stdout
    assert f"channel {second} closing at 100" in cli("payments", "channel", "close", second, "--voucher", low,
                                                     "--key", "alice", *at).stdout
    refused("channel_closing", "payments", "channel", "close", second, "--key", "alice", *at)  # closing twice
    refused("challenge_period_running", "payments", "channel", "settle", second, "--key", "bob", *at)
    r = cli("payments", "channel", "claim", second, "--voucher", high, "--key", "park-admin", *at)
    assert f"channel {second} closed: 400 to park, 600 refunded" in r.stdout
    assert balance(at, "org:park", "park-admin") == 1_100


def test_a_sale_paid_in_the_transaction_that_moves_the_title(chain) -> None:
    _, at = chain
    alice = KeyStore(Path(at[1]) / "keys").entry("alice").did
    bob = KeyStore(Path(at[1]) / "keys").entry("bob").did
    cli("tx", "send", "vehicles.record_lien", "--key", "bank-admin", "--cosign", "alice", "--set", f"vin={VIN}",
        "--set", "amount=5000", "--set", "currency=EUR", *at)
    before = balance(at, "alice")
    r = cli("payments", "sale", "lock", VIN, 30_000, "EUR", "--seller", "alice", "--deadline", "2d", "--key", "bob",
            "--json", *at)
    escrow = json.loads(r.stdout)["receipt"]["events"][0]["escrow"]
    assert balance(at, "bob") == 41_000 - 30_000  # locked
    shown = cli("payments", "sale", "show", escrow, "--as", "alice", *at).stdout
    assert f"escrow {escrow} for {VIN}: locked, 300.00 EUR" in shown
    refused("not_a_party", "payments", "sale", "show", escrow, "--as", "toll-admin", *at)
    refused("not_escrow_seller", "payments", "sale", "settle", escrow, "--key", "bob", *at)
    refused("escrow_deadline_not_reached", "payments", "sale", "reclaim", escrow, "--key", "bob", *at)

    r = cli("payments", "sale", "settle", escrow, "--key", "alice", *at)
    assert f"{VIN} now belongs to {bob}, paid; liens paid off to bank" in r.stdout
    vehicle = json.loads(cli("query", "vehicles", "vehicle", f"vin={VIN}", "--as", "bob", *at).stdout)
    assert vehicle["holder"] == bob and not vehicle.get("liens")
    assert balance(at, "alice") == before + 30_000 - 5_000
    assert balance(at, "org:bank", "bank-admin") == 5_000
    assert "settled" in cli("payments", "sale", "show", escrow, "--as", "bob", *at).stdout
    refused("escrow_closed", "payments", "sale", "reclaim", escrow, "--key", "bob", *at)
    assert alice != bob


def test_reads_of_someone_elses_money_are_refused(chain) -> None:
    _, at = chain
    refused("not_your_data", "payments", "balance", "EUR", "--of", "alice", "--as", "bob", *at)
    refused("not_a_party", "payments", "supply", "EUR", "--as", "toll-admin", *at)
    r = cli("payments", "balance", "EUR", "--of", "alice", *at, ok=False)
    assert r.returncode == 1 and "[signature_required]" in r.stderr
    assert balance(at, "alice", "reg-admin") > 0  # a regulator reads every account
    r = cli("payments", "balance", "EUR", *at, ok=False)
    assert r.returncode == 2 and "--of OWNER" in r.stderr
