"""``blokauto energy`` end to end: a chain made with ``init`` (a regulator, an e-money issuer, a grid
operator, a meter operator), a node started with ``node start`` in a child process (stopped by its
PID), and one market round through the real command line on a zone with 5-second intervals: the
zone opened, two meters registered, an ask and a bid (and a bid cancelled) before the gate, the
interval cleared after it, both meters' readings after the interval ends, the interval settled,
the book summarised and each position read with its proof. The refusals met on the way print
their stable codes and exit 1; input the command cannot read exits 2 with nothing sent; and over
HTTP, a stranger's signed request reads neither the query nor the state key of another's position.

The round waits for the node's clock to pass the gate and the interval's end (a few seconds):
block time is the node's clock, and those are the rules under test, not timings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from blokauto.client import Client, signed_http
from blokauto.keystore import KeyStore
from blokauto.modules.payments import messages as pay

from conftest import NodeProcess, run_cli

pytestmark = pytest.mark.e2e  # starts a real node process

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
INTERVAL, GATE = 5_000, 1_000
FUNDS = 100_000  # 1,000.00 EUR each


def cli(*args: Any, ok: bool = True) -> Any:
    r = run_cli(*[str(a) for a in args], env=ENV)
    if ok:
        assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def refused(code: str, *args: Any) -> str:
    """Run a command that must be refused with ``code`` (exit 1); returns what it printed."""
    r = cli(*args, ok=False)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and f"[{code}]" in out, f"{args}: exit {r.returncode}, expected [{code}]\n{out}"
    return out


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def wait_past(t: int) -> None:
    """Until this machine's clock (the node's block time) is past ``t``."""
    while now_ms() <= t:
        time.sleep(max(0.0, (t - now_ms() + 5) / 1000))


def receipt_event(r: Any, type_: str) -> dict[str, Any]:
    return next(e for e in json.loads(r.stdout)["receipt"]["events"] if e["type"] == type_)


class Market:
    """The chain, its node, and what the round printed (``out``: name -> CompletedProcess or text)."""

    node: NodeProcess
    data: Path
    at: tuple[Any, ...]
    keys: KeyStore
    start: int
    out: dict[str, Any]

    def client(self, key: str) -> Client:
        return Client(self.node.url, trust=self.data / "genesis.json", key=self.keys.load(key))

    def balance(self, owner: str) -> int:
        with self.client("reg-admin") as c:
            return c.query("payments", "balance", owner=owner, currency="EUR")["balance"]

    def height(self) -> int:
        with self.client("reg-admin") as c:
            return int(c.status()["height"])


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """One market round of zone Z1 through the CLI (see the module's docstring); alice's house sells,
    bob's charge point buys."""
    m = Market()
    m.data = data = tmp_path_factory.mktemp("energy") / "chain"
    cli("init", "--data", data, "--org", "reg:regulator,police", "--org", "emi:issuer", "--org", "grid:grid",
        "--org", "meterco:energy")
    m.keys = keys = KeyStore(data / "keys")
    for name in ("alice", "bob"):
        keys.create(name, kind="owner")
    for name in ("dev-a", "dev-b"):
        keys.create(name, kind="device")
    m.node = NodeProcess(data)
    try:
        m.at = at = ("--data", data, "--node", m.node.url)
        emi = keys.load("emi-admin")
        with m.client("emi-admin") as c:  # money first, through the SDK (payments has its own CLI tests)
            c.send(pay.RegisterCurrency(currency="EUR", exponent=2), emi).raise_for_status()
            c.send(pay.AttestReserves(currency="EUR", reserves=10**9, evidence="cd" * 32), emi).raise_for_status()
            for owner in (keys.entry("alice").did, keys.entry("bob").did, "org:grid"):
                c.send(pay.Issue(currency="EUR", to=owner, amount=FUNDS), emi).raise_for_status()
        m.out = out = {}
        out["open"] = cli("energy", "open-zone", "Z1", "--currency", "EUR", "--interval", "5s", "--gate-closure", "1s",
                          "--reading-window", "30s", "--import-capacity", "10kWh", "--export-capacity", "10kWh",
                          "--import-price", 30, "--export-price", 8, "--short-price", 40, "--long-price", 5,
                          "--key", "grid-admin", *at)
        for meter, owner, device, kind in (("house-a", "alice", "dev-a", "home"), ("cp-b", "bob", "dev-b",
                                                                                  "charge_point")):
            out[f"register {meter}"] = cli("energy", "register-meter", meter, "--zone", "Z1", "--kind", kind,
                                           "--device-key", device, "--owner", owner, "--max-power", "10MW",
                                           "--key", "meterco-admin", *at)
        nxt = json.loads(cli("energy", "next-interval", "Z1", "--after", "20s", "--as", "alice", "--json", *at).stdout)
        m.start = s = nxt["start"]
        assert nxt["gate_closes"] == s - GATE and nxt["end"] == s + INTERVAL

        # Before the gate: alice asks, bob bids (and cancels a second bid), bob cannot trade alice's meter.
        out["ask"] = cli("energy", "ask", "house-a", s, "--price", 10, "--energy", "3kWh", "--key", "alice", *at)
        out["bid"] = cli("energy", "bid", "cp-b", nxt["start_utc"], "--price", 25, "--energy", 2_500, "--key", "bob",
                         "--json", *at)
        seq = receipt_event(cli("energy", "bid", "cp-b", s, "--price", 40, "--energy", "1kWh", "--key", "bob",
                                "--json", *at), "energy.order_placed")["seq"]
        out["cancel"] = cli("energy", "cancel", "Z1", s, seq, "--key", "bob", *at)
        out["not_meter_owner"] = refused("not_meter_owner", "energy", "bid", "house-a", s, "--price", 99, "--energy",
                                         1, "--key", "bob", *at)
        out["book open"] = cli("energy", "book", "Z1", s, "--as", "alice", *at)
        assert now_ms() < s - GATE, "the steps before the gate took longer than --after: raise it"

        wait_past(s - GATE)
        out["gate_closed"] = refused("gate_closed", "energy", "ask", "house-a", s, "--price", 5, "--energy", "1kWh",
                                     "--key", "alice", *at)
        out["clear"] = cli("energy", "clear", "Z1", s, "--key", "bob", *at)
        out["order"] = json.loads(cli("energy", "order", "Z1", s, 2, "--as", "bob", "--json", *at).stdout)

        wait_past(s + INTERVAL)
        out["reading a"] = cli("energy", "reading", "house-a", s, "--imported", 0, "--exported", "2kWh",
                               "--key", "dev-a", *at)
        out["reading b"] = cli("energy", "reading", "cp-b", s, "--imported", "2.5kWh", "--exported", 0,
                               "--key", "dev-b", *at)
        out["reading_exists"] = refused("reading_exists", "energy", "reading", "house-a", s, "--imported", 0,
                                        "--exported", "3kWh", "--key", "dev-a", *at)
        out["settle"] = cli("energy", "settle", "Z1", s, "--key", "grid-admin", *at)
        out["already_settled"] = refused("already_settled", "energy", "settle", "Z1", s, "--key", "bob", *at)
        yield m
    finally:
        m.node.stop()
        if m.node.proc.poll() is None:
            m.node.kill()


def test_a_market_round_clears_at_one_price_and_settles_against_the_readings(market: Market) -> None:
    s, at, out = market.start, market.at, market.out
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(s // 1000)) + f" ({s})"
    assert "zone Z1 opened: EUR, intervals of 5 s, the gate closes 1 s before each" in out["open"].stdout
    assert "meter cp-b (charge_point, 10,000,000 W) registered in zone Z1" in out["register cp-b"].stdout
    assert f"ask 1 in zone Z1 for the interval at {when}: sell up to 3,000 Wh at no less than 0.10 EUR/kWh" \
        in out["ask"].stdout
    assert receipt_event(out["bid"], "energy.order_placed")["seq"] == 2  # placed with the ISO time: the same start
    assert f"order 3 of zone Z1 for the interval at {when} cancelled" in out["cancel"].stdout
    assert "orders        3 placed; open: 1 bid(s) for 2,500 Wh, 1 ask(s) for 3,000 Wh" in out["book open"].stdout
    assert "cleared       not yet" in out["book open"].stdout

    # One price for all: the midpoint of the last bid (25) and ask (10) matched, rounded down.
    assert f"interval at {when}: cleared at 0.17 EUR/kWh, 2,500 Wh matched" in out["clear"].stdout
    assert (out["order"]["filled_wh"], out["order"]["price_cleared"], out["order"]["held"]) == (2_500, 17, 63)
    assert "exported 2,000 Wh" in out["reading a"].stdout
    assert "settled, 2 position(s), 0 without a reading" in out["settle"].stdout

    book = cli("energy", "book", "Z1", s, "--proof", "--as", "bob", *at).stdout
    assert f"book of zone Z1, interval at {when}: settled" in book
    assert "0.17 EUR/kWh, 2,500 Wh matched; the grid sold 0 Wh into the zone and bought 0 Wh" in book
    # bob pays 2.5 kWh x 0.17 rounded up, alice is paid it rounded down; she delivered 500 Wh short (0.40/kWh)
    assert "buyers paid 0.43 EUR, sellers were paid 0.42 EUR; short imbalance paid 0.20 EUR" in book
    assert f"proven        en/book/Z1/{s:016d}" in book

    text = cli("energy", "position", "house-a", s, "--as", "alice", *at).stdout
    assert "bought 0 Wh, sold 2,500 Wh; it read +2,000 Wh net export" in text
    assert "imbalance short 500 Wh (0.20 EUR), long 0 Wh (0.00 EUR)" in text and "net      +0.22 EUR" in text
    assert f"proven   en/pos/Z1/{s:016d}/house-a against the checkpoint at height" in text
    bob = json.loads(cli("energy", "position", "cp-b", s, "--as", "bob", "--json", *at).stdout)
    assert (bob["position"]["paid"], bob["position"]["refunded"], bob["net"]) == (43, 20, -43)
    assert bob["proof"]["key"] == f"en/pos/Z1/{s:016d}/cp-b" and bob["start_utc"].endswith("Z")
    assert (market.balance(market.keys.entry("alice").did), market.balance(market.keys.entry("bob").did)) == \
        (FUNDS + 42 - 20, FUNDS - 43)

    # The meter's operator and the zone's operator read positions too; listings page.
    assert f"{when}  zone Z1: bought 0 Wh, sold 2,500 Wh, net +0.22 EUR" in \
        cli("energy", "positions", "house-a", "--as", "meterco-admin", *at).stdout
    listed = cli("energy", "orders", "--as", "bob", "--limit", 1, *at).stdout
    assert f"Z1 {when} #2: buy 2,500 Wh at 0.25 EUR/kWh for meter cp-b; cleared: 2,500 Wh at 0.17 EUR/kWh" in listed
    assert "more orders: --offset 1" in listed
    assert "#3" not in listed  # cancelled orders leave the list
    assert "no open orders" in cli("energy", "orders", "--as", "bob", "--offset", 1, *at).stdout
    assert "house-a  home  zone Z1, operated by meterco" in cli("energy", "meters", "--as", "alice", *at).stdout


REFUSALS = [
    ("not_meter_owner", "Meter 'house-a' trades for did:key:"),  # bob bid on alice's meter
    ("gate_closed", "orders and cancellations are taken until 1000 ms before an interval starts"),
    ("reading_exists", "already read interval"),
    ("already_settled", "an interval settles once"),
]


@pytest.mark.parametrize("code,sentence", REFUSALS, ids=[c for c, _ in REFUSALS])
def test_a_refused_transaction_prints_its_code_and_sentence_and_exits_1(market: Market, code: str,
                                                                        sentence: str) -> None:
    printed = market.out[code]
    assert f"[{code}]" in printed and sentence in printed and "failed " in printed


BAD_INPUT = [
    ("unaligned start", ("bid", "cp-b", "{start_plus_1}", "--price", 1, "--energy", 1, "--key", "bob"),
     "is not the start of an interval of zone Z1: intervals start every 5 s"),
    ("negative quantity", ("bid", "cp-b", "{start}", "--price", 1, "--energy", "-3", "--key", "bob"),
     "--energy '-3' is not an amount of energy"),
    ("part of a Wh", ("ask", "house-a", "{start}", "--price", 1, "--energy", "1.0005kWh", "--key", "alice"),
     "--energy '1.0005kWh' is not a whole number of Wh"),
    ("negative reading", ("reading", "house-a", "{start}", "--imported", "-1", "--exported", 0, "--key", "dev-a"),
     "--imported '-1' is not an amount of energy"),
    ("garbage time", ("clear", "Z1", "yesterday", "--key", "bob"),
     "START 'yesterday' is neither a time in ms since the epoch nor an ISO-8601 time"),
    ("time without a zone", ("settle", "Z1", "2026-12-07T14:15", "--key", "bob"), "names no time zone; add Z for UTC"),
    ("time past block time", ("book", "Z1", "9" * 20, "--as", "bob"), "is outside block time"),
    ("negative price", ("bid", "cp-b", "{start}", "--price", "-1", "--energy", 1, "--key", "bob"), "--price"),
    ("unknown meter kind", ("register-meter", "m9", "--zone", "Z1", "--kind", "fridge", "--device-key", "dev-a",
                            "--owner", "alice", "--max-power", "1kW", "--key", "meterco-admin"),
     "--kind 'fridge' is not one of home, charge_point, v2g_charger"),
    ("bad duration", ("open-zone", "Z9", "--currency", "EUR", "--interval", "7q", "--key", "grid-admin"),
     "--interval '7q' is not a duration"),
]


@pytest.mark.parametrize("args,says", [(a, s) for _, a, s in BAD_INPUT], ids=[n for n, _, _ in BAD_INPUT])
def test_input_the_command_cannot_read_exits_2_with_nothing_sent(market: Market, args: tuple, says: str) -> None:
    before = market.height()
    filled = [str(a).format(start=market.start, start_plus_1=market.start + 1) for a in args]
    r = cli("energy", *filled, *market.at, ok=False)
    assert r.returncode == 2 and says in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert market.height() == before, "nothing goes on the ledger"


def test_a_stranger_reads_neither_the_query_nor_the_state_key_of_anothers_position(market: Market) -> None:
    s = market.start
    paths = (f"/v1/q/energy/position?meter=house-a&start={s}", f"/v1/state/en/pos/Z1/{s:016d}/house-a",
             f"/v1/q/energy/reading?meter=house-a&start={s}", f"/v1/state/en/reading/house-a/{s:016d}")

    def answer(who: str, path: str) -> str:
        with signed_http(market.node.url, market.keys.load(who), timeout=30) as h:
            r = h.get(path)
        return str(r.status_code) if r.status_code < 400 else f"{r.status_code} {r.json()['error']['code']}"

    for path in paths:
        got = {who: answer(who, path) for who in ("alice", "meterco-admin", "grid-admin", "reg-admin", "emi-admin",
                                                  "bob")}
        assert got == {"alice": "200", "meterco-admin": "200", "grid-admin": "200", "reg-admin": "200",
                       # a member of an organisation with no part in the meter; a key the consortium does not know
                       "emi-admin": "403 not_a_party", "bob": "401 unknown_caller"}, path
    out = refused("not_a_party", "energy", "position", "house-a", s, "--as", "emi-admin", *market.at)
    assert "is read by the organisations that took part in it" in out


def test_operators_change_terms_device_keys_and_service_through_the_cli(market: Market) -> None:
    at, keys = market.at, market.keys
    # terms take energy_terms_notice_ms (an hour) before the gate closes: for the interval two hours from now
    nxt = json.loads(cli("energy", "next-interval", "Z1", "--after", "2h", "--as", "grid-admin", "--json", *at).stdout)
    r = cli("energy", "set-terms", "Z1", nxt["start_utc"], "--import-price", 35, "--key", "grid-admin", *at)
    assert "grid sells up to 10,000 Wh at 0.35 EUR/kWh, buys up to 10,000 Wh at 0.08 EUR/kWh" in r.stdout  # the rest kept
    zone = cli("energy", "zone", "Z1", "--as", "bob", *at).stdout
    assert zone.count("terms from ") == 2 and "at 0.30 EUR/kWh" in zone and "at 0.35 EUR/kWh" in zone

    spare = keys.create("dev-spare", kind="device").did
    cli("energy", "register-meter", "spare", "--zone", "Z1", "--kind", "home", "--device-key", spare, "--owner", "bob",
        "--max-power", "7.4kW", "--key", "meterco-admin", *at)
    new = keys.create("dev-spare-2", kind="device").did
    assert f"readings are signed by {new}" in cli("energy", "rotate-meter-key", "spare", "--device-key", "dev-spare-2",
                                                   "--key", "meterco-admin", *at).stdout
    cli("energy", "revoke-meter", "spare", "--reason", "replaced", "--key", "meterco-admin", *at)
    shown = cli("energy", "meter", "spare", "--as", "bob", *at).stdout
    assert "(home, 7,400 W)" in shown and "out of service since block" in shown and "(replaced)" in shown
    assert new in shown
    refused("meter_revoked", "energy", "ask", "spare", nxt["start"], "--price", 1, "--energy", 1, "--key", "bob", *at)
    refused("role_not_allowed", "energy", "revoke-meter", "house-a", "--key", "emi-admin", *at)
    refused("unknown_signer", "energy", "revoke-meter", "house-a", "--key", "alice", *at)  # an owner, no member
