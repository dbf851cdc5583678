"""The demo's sunny afternoon: Ben's roof and Ben's car (discharging through a bidirectional
charger) sell to Dan's wallbox and the grid in one interval's auction; the meters sign what they
measured; the interval settles through the grid operator's account.

The demo's zone clears every 10 seconds so a whole interval fits in the demo (real zones clear
every 15 minutes, the default): the energies are a few Wh and the sums a few cents, and the rules
are the very ones a 15-minute interval runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..client import Client
from ..client.energy import Energy, Terms, order_of
from ..core.crypto import KeyPair
from ..keystore import KeyStore
from ..modules.governance import messages as gov
from ..modules.governance import state as gov_state
from ..modules.payments import messages as pay
from .payments import money

if TYPE_CHECKING:
    from .demo import Story

ZONE = "muc-schwabing"
INTERVAL_MS, GATE_MS, WINDOW_MS = 10_000, 2_000, 20_000
#: Isarnetz sells into the zone up to 40 Wh an interval at 0.60 EUR/kWh (the afternoon peak) and buys
#: up to 20 Wh at 0.09; a meter short pays 0.80 EUR/kWh, a meter long is paid 0.04.
TERMS = Terms(import_wh=40, export_wh=20, import_price=60, export_price=9, short_price=80, long_price=4)
METERS = [  # meter, kind, owner's key name, most power (W), vehicle
    ("ben-roof", "home", "ben", 10_000, ""),
    ("ben-v2g", "v2g_charger", "ben", 11_000, "WZZ3E5C22NM400117"),
    ("dan-wallbox", "charge_point", "dan", 22_000, ""),
]
#: What each meter measures over the interval: (imported Wh, exported Wh).
MEASURED = {"ben-roof": (0, 27), "ben-v2g": (0, 26), "dan-wallbox": (58, 0)}


@dataclass
class Market:
    """What the first half of the afternoon leaves for the second: the interval traded."""

    energy: Energy
    grid: KeyPair
    start: int


def eur(amount: int) -> str:
    return money(amount, "EUR")


def _clock(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms // 1000)) + " UTC"


def _wait_past(t: int) -> None:
    while time.time_ns() // 1_000_000 <= t:
        time.sleep(0.02)


def market_opens(bc: Client, keys: KeyStore, story: Story, voters: list[tuple[str, KeyPair]]) -> Market:
    """Isarnetz joins as the grid operator, opens the zone, registers three meters; Ben and Dan trade
    the next interval."""
    from .demo import vote_until_decided

    story.say("\n[bold]A sunny afternoon: energy traded between neighbours[/] (the demo's zone clears every 10 "
              "seconds so a whole interval fits in the demo — real zones clear every 15 minutes — so a few Wh and "
              "cents here)")
    grid = keys.create("isarnetz-admin", org="isarnetz")
    info = bc.send(gov.Propose(action=gov_state.AdmitOrganisation(
        id="isarnetz", name="Isarnetz Verteilnetz GmbH", roles=["grid", "energy"], admins=[grid.did])),
        keys.load("kba-admin")).raise_for_status()
    vote_until_decided(bc, story, info, voters, "Isarnetz, the distribution grid operator, joins (grid, energy)")
    en = Energy(bc)
    story.committed(f"EuroMoney issues {eur(5_000)} to Isarnetz (the market's counterparty: it pays sellers with what "
                    f"buyers pay, and meters long from its own)",
                    bc.send(pay.Issue(currency="EUR", to="org:isarnetz", amount=5_000), keys.load("euromoney-admin")))
    story.committed(f"Isarnetz opens zone {ZONE}: 10-second intervals, gate closure 2 s before; the grid sells up to "
                    f"{TERMS.import_wh} Wh an interval at {TERMS.import_price} c/kWh and buys up to {TERMS.export_wh} Wh "
                    f"at {TERMS.export_price} c; short {TERMS.short_price} c, long {TERMS.long_price} c",
                    en.open_zone(grid, ZONE, currency="EUR", terms=TERMS, interval_ms=INTERVAL_MS,
                                 gate_closure_ms=GATE_MS, reading_window_ms=WINDOW_MS))
    infos = []
    for meter, kind, owner, power, vin in METERS:
        device = keys.create(f"{meter}-meter", kind="device")
        infos.append(en.register_meter(grid, meter, zone=ZONE, kind=kind, key=device.did,
                                       owner=keys.load(owner).did, max_power_w=power, vin=vin))
    from .demo import _all
    story.committed("Isarnetz registers the meters, each with its own device key: Ben's roof (10 kW of solar), the "
                    "bidirectional charger of Ben's E5 (11 kW) and Dan's wallbox (22 kW)", _all(*infos))
    ben, dan, carla = keys.load("ben"), keys.load("dan"), keys.load("carla")
    start = en.next_interval(ZONE, key=ben, after_ms=1_500)
    story.say(f"  the interval from {_clock(start)} takes orders until {_clock(start - GATE_MS)}")
    story.committed("Ben's roof asks: 27 Wh at no less than 12 c/kWh",
                    en.ask(ben, "ben-roof", start, price=12, wh=27))
    story.committed("Ben's E5 discharges to the grid: it asks 30 Wh at no less than 35 c/kWh",
                    en.ask(ben, "ben-v2g", start, price=35, wh=30))
    bid = story.committed(f"Dan needs his car by six: he bids 61 Wh at up to 65 c/kWh ({eur(4)} held from his account "
                          f"until the interval settles)", en.bid(dan, "dan-wallbox", start, price=65, wh=61))
    order_of(bid)
    story.committed("Carla bids on Dan's wallbox", en.bid(carla, "dan-wallbox", start, price=90, wh=10))
    return Market(en, grid, start)


def interval_settles(bc: Client, keys: KeyStore, story: Story, market: Market) -> None:
    """The gate closes, the interval clears, the meters read, the interval settles."""
    en, start = market.energy, market.start
    ben, dan = keys.load("ben"), keys.load("dan")
    story.say(f"\n[bold]The interval from {_clock(start)}[/]")
    _wait_past(start - GATE_MS)
    story.committed("Dan raises his bid after the gate closed", en.bid(dan, "dan-wallbox", start, price=70, wh=61))
    cleared = story.committed("anyone clears the interval (here VoltPoint): one uniform-price auction over every order "
                              "and the grid's offers", en.clear(keys.load("voltpoint-admin"), ZONE, start))
    book = en.book(ZONE, start, key=ben, min_height=cleared.height)
    c = book["clearing"]
    story.say(f"  → price {c['result']['price']} c/kWh for all, {c['result']['matched_wh']} Wh matched: Ben's roof 27, "
              f"his car 30, and {c['grid_import_wh']} Wh from the grid (its 60 c offer was the last one Dan's 65 c "
              f"bid reached: the price is the midpoint)")
    _wait_past(start + INTERVAL_MS)
    for meter, (imported, exported) in MEASURED.items():
        story.committed(f"{meter}'s meter signs what it measured: {imported} Wh in, {exported} Wh out",
                        en.submit_reading(keys.load(f"{meter}-meter"), meter, start, imported_wh=imported,
                                          exported_wh=exported))
    story.committed("Dan signs a reading for his own wallbox", en.submit_reading(
        dan, "dan-wallbox", start, imported_wh=0, exported_wh=0))
    settled = story.committed("Isarnetz settles the interval against the readings",
                              en.settle(market.grid, ZONE, start))
    for meter, _, owner, _, _ in METERS:
        p = en.position(meter, start, key=keys.load(owner), min_height=settled.height)
        imbalance = (f"short {p['short_wh']} Wh, pays {eur(p['short_charge'])}" if p["short_wh"] else
                     f"long {p['long_wh']} Wh, paid {eur(p['long_credit'])}" if p["long_wh"] else "delivered as traded")
        trade = f"bought {p['bought_wh']} Wh for {eur(p['paid'])}" if p["bought_wh"] else \
            f"sold {p['sold_wh']} Wh for {eur(p['received'])}"
        story.say(f"  [green]✓[/] {meter}: {trade}; measured {p['net_export_wh']:+} Wh net out: {imbalance}"
                  + (f"; {eur(p['refunded'])} of the bid's hold back" if p["refunded"] else "")
                  + " [dim](proven against the checkpoint)[/]")
    story.say("  (sums round per meter: buyers up, sellers down, to the cent; Isarnetz keeps the rounding)")
    story.committed("someone settles the interval again", en.settle(dan, ZONE, start))
