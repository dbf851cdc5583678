"""``blokauto energy``: peer-to-peer energy trading, as grid operators, meter operators, owners and
meters use it (the rules: ``blokauto.modules.energy``).

    energy open-zone ZONE --currency EUR [--interval 15m --gate-closure 5m --reading-window 1h] [TERMS] --key GRID
    energy set-terms ZONE START [TERMS] --key GRID          only what you name changes
    energy register-meter METER --zone ZONE --kind home|charge_point|v2g_charger --device-key KEY
                          --owner OWNER --max-power 11kW [--vin VIN] --key OPERATOR
    energy rotate-meter-key METER --device-key KEY --key OPERATOR
    energy revoke-meter METER [--reason TEXT] --key OPERATOR
    energy bid|ask METER START --price P --energy 3kWh --key OWNER
    energy cancel ZONE START SEQ --key OWNER
    energy reading METER START --imported 0 --exported 3kWh --key DEVICE
    energy clear|settle ZONE START --key ANYONE
    energy zone ZONE | zones | next-interval ZONE | book ZONE START | order ZONE START SEQ
    energy orders [--owner OWNER] | meter METER | meters [--owner OWNER] | position METER START | positions METER

Units: START (an interval's start) is block time in ms since the epoch or an ISO-8601 time with its
zone (``2026-12-07T14:15Z``); text output shows both. Prices are minor units of the zone's currency
per kWh (``25`` in EUR is 0.25 EUR/kWh); energy is Wh, or with a unit (``3kWh``, ``2.5kWh``,
``1MWh``) as long as it is a whole number of Wh. Durations are ms, or with a unit (``500ms``,
``5s``, ``15m``, ``1h``, ``1d``).

Submissions are signed with ``--key`` (a name in DATA/keys, or a key file), reads with ``--as``.
Listings show one page (``--limit``, ``--offset``; ``--all`` for every page). A refusal prints its
stable code and sentence and exits 1; a value the command cannot read exits 2 before anything is sent.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.markup import escape

from ..core.errors import BlokautoError, NotFound
from .common import AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, flag, group, print_json, \
    say_trust, signing_key
from .errors import cli_errors
from .payments import money, owner_of
from .tx import WaitOpt, print_receipt

energy_app = group("Peer-to-peer energy trading: grid zones and their terms, meters with device keys, bids and asks "
                   "per interval, one uniform-price auction at gate closure, settlement against signed readings.")

MAX_START = 2**53 - 1
DAY_MS = 86_400_000
MAX_WH = 1_000_000_000
PAGE_MAX = 1000
KINDS = ("home", "charge_point", "v2g_charger")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_QUANTITY = re.compile(r"^(\d{1,13})(?:\.(\d{1,9}))?\s*(wh|kwh|mwh)?$", re.IGNORECASE)
_ENERGY_UNITS = {"wh": 1, "kwh": 1_000, "mwh": 1_000_000}
_POWER = re.compile(r"^(\d{1,13})(?:\.(\d{1,9}))?\s*(w|kw|mw)?$", re.IGNORECASE)
_POWER_UNITS = {"w": 1, "kw": 1_000, "mw": 1_000_000}
_DURATION = re.compile(r"^(\d{1,12})\s*(ms|s|m|min|h|d)?$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}

KeyOpt = typer.Option(..., "--key", "-k", metavar="NAME|FILE",
                      help="The sender's key: its name in DATA/keys, or a key file.")
ZoneArg = typer.Argument(..., metavar="ZONE", help="The zone's id, e.g. DE-MUC-1.")
MeterArg = typer.Argument(..., metavar="METER", help="The meter's id.")
StartArg = typer.Argument(..., metavar="START",
                          help="The interval's start: ms since the epoch, or an ISO-8601 time with its zone "
                               "(2026-12-07T14:15Z).")
SeqArg = typer.Argument(..., metavar="SEQ", min=1, help="The order's number in its interval (`bid`/`ask` print it).")
PriceOpt = typer.Option(..., "--price", "-p", metavar="PRICE", min=0, max=1_000_000,
                        help="Minor units of the zone's currency per kWh (25 in EUR: 0.25 EUR/kWh).")
EnergyOpt = typer.Option(..., "--energy", "-e", metavar="QUANTITY",
                         help="Wh, or with a unit: 3000, 3kWh, 2.5kWh (a whole number of Wh, 1 Wh to 1 GWh).")
LimitOpt = typer.Option(100, "--limit", metavar="N", min=1, max=PAGE_MAX, help="Rows on this page (at most 1000).")
OffsetOpt = typer.Option(0, "--offset", metavar="N", min=0, help="Rows to skip (the previous page printed the next "
                                                                 "offset).")
AllOpt = flag("--all", "Every page, not just one.")


# ---------------------------------------------------------------- reading what people type


def parse_start(text: str, what: str = "START") -> int:
    """An interval's start: ms since the epoch (digits), or an ISO-8601 time that names its zone
    (``2026-12-07T14:15Z``, ``2026-12-07T15:15+01:00``)."""
    t = text.strip()
    if t.isdigit():
        ms = int(t) if len(t) <= 16 else MAX_START + 1
    else:
        try:
            dt = datetime.fromisoformat(t)
        except ValueError:
            raise ValueError(f"{what} {text[:80]!r} is neither a time in ms since the epoch nor an ISO-8601 time "
                             f"such as 2026-12-07T14:15Z") from None
        if dt.tzinfo is None:
            raise ValueError(f"{what} {text[:80]!r} names no time zone; add Z for UTC (e.g. {t[:16]}Z)")
        ms = (dt - _EPOCH) // timedelta(milliseconds=1)
    if not 0 <= ms <= MAX_START:
        raise ValueError(f"{what} {text[:80]!r} is outside block time (0 to 2^53 - 1 ms since the epoch)")
    return ms


def _whole(text: str, pattern: re.Pattern[str], units: dict[str, int], default: str, what: str, hint: str) -> int:
    m = pattern.match(text.strip())
    if m is None:
        raise ValueError(f"{what} {text[:80]!r} is not {hint}")
    whole, frac, unit = m.group(1), m.group(2), (m.group(3) or default).lower()
    try:
        value = Decimal(f"{whole}.{frac or 0}") * units[unit]
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise ValueError(f"{what} {text[:80]!r} is not {hint}") from None
    if value != value.to_integral_value():
        raise ValueError(f"{what} {text[:80]!r} is not a whole number of {default.upper() if default == 'w' else 'Wh'}")
    return int(value)


def parse_energy(text: str, what: str = "--energy", *, least: int = 1) -> int:
    """Wh from ``3000``, ``3000Wh``, ``3kWh``, ``2.5kWh``, ``1MWh`` (no sign, a whole number of Wh)."""
    wh = _whole(text, _QUANTITY, _ENERGY_UNITS, "wh", what, "an amount of energy: Wh, or 3kWh, 2.5kWh, 1MWh "
                                                            "(no sign)")
    if not least <= wh <= MAX_WH:
        raise ValueError(f"{what} {text[:80]!r} is {wh:,} Wh; it must be from {least} Wh to 1 GWh "
                         f"({MAX_WH:,} Wh)")
    return wh


def parse_power(text: str, what: str = "--max-power") -> int:
    """Watts from ``11000``, ``11000W``, ``11kW``, ``7.4kW``."""
    w = _whole(text, _POWER, _POWER_UNITS, "w", what, "a power: W, or 11kW, 7.4kW (no sign)")
    if not 1 <= w <= 1_000_000_000:
        raise ValueError(f"{what} {text[:80]!r} is {w:,} W; it must be from 1 W to 1 GW")
    return w


def parse_duration(text: str, what: str) -> int:
    """ms from ``900000``, ``500ms``, ``5s``, ``15m``, ``1h``, ``1d``."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise ValueError(f"{what} {text[:80]!r} is not a duration: ms, or 500ms, 5s, 15m, 1h, 1d")
    return int(m.group(1)) * _DURATION_UNITS[(m.group(2) or "ms").lower()]


def did_of(data: Path, given: str) -> str:
    """A device key's did:key: given as one, a key file, or a key's name in DATA/keys."""
    if given.startswith("did:key:"):
        return given
    return signing_key(data, given).did


# ---------------------------------------------------------------- what people read


def at(ms: int | None) -> str:
    """A block time both ways: ``2026-12-07 14:15:00 UTC (1796652900000)``."""
    if ms is None:
        return "-"
    return f"{utc(ms).replace('T', ' ').replace('Z', ' UTC')} ({ms})"


def utc(ms: int) -> str:
    """ISO-8601 UTC: ``2026-12-07T14:15:00Z`` (with .mmm when not a whole second)."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ms % 1000:03d}" if ms % 1000 else "") + "Z"


def duration(ms: int) -> str:
    """``900000`` -> ``15 min``; ``5000`` -> ``5 s``; ``1500`` -> ``1500 ms``."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if ms and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def wh(n: int) -> str:
    return f"{n:,} Wh"


def per_kwh(price: int, currency: str | None) -> str:
    return f"{money(price, currency)}/kWh" if currency else f"{price} (minor units)/kWh"


def terms_text(t: dict[str, Any], cur: str | None) -> str:
    sells = (f"grid sells up to {wh(t['import_wh'])} at {per_kwh(t['import_price'], cur)}" if t["import_wh"]
             else "grid sells nothing")
    buys = (f"buys up to {wh(t['export_wh'])} at {per_kwh(t['export_price'], cur)}" if t["export_wh"]
            else "buys nothing")
    return (f"{sells}, {buys}; short {per_kwh(t['short_price'], cur)}, long {per_kwh(t['long_price'], cur)}")


# ---------------------------------------------------------------- talking to the node


def _session(node: str, data: Path, trust: Optional[Path], key: Optional[str]) -> tuple[Any, Any]:
    """(the SDK's Energy over a client signing with ``key``, the key)."""
    from ..client.energy import Energy

    signer = signing_key(data, key)
    return Energy(client(node, data, trust, key=signer)), signer


def _send(en: Any, sender: Any, type_: str, fields: dict[str, Any], wait: float, as_json: bool,
          summary: Callable[[Any], str] | None = None) -> Any:
    """Sign ``type_`` with ``sender``, submit it, print its receipt (exit 1 if refused) and ``summary``;
    with ``--wait 0`` print the transaction id and return."""
    c = en.client
    tx = c.sign(c.build(c.message(type_, fields), sender), sender)
    txid = c.submit(tx, key=sender)
    if wait <= 0:
        console.print(txid)
        return None
    info = c.receipt(txid, wait=wait, key=sender)
    say_trust(c)
    print_receipt(info, as_json)
    if summary is not None and not as_json:
        console.print(summary(info))
    return info


def _event(info: Any, type_: str) -> dict[str, Any]:
    return next(e for e in info.events if e["type"] == type_)


def _head(en: Any) -> int:
    return int(en.client.status()["height"])


def _currency(en: Any, zone: str) -> str | None:
    """The zone's currency, for text output (None if it cannot be read)."""
    try:
        return str(en.zone(zone)["currency"])
    except BlokautoError:
        return None


def _aligned(z: dict[str, Any], start: int) -> int:
    """``start`` if an interval of zone ``z`` starts there; a usage error naming the nearest starts."""
    step = int(z["interval_ms"])
    if start % step:
        before = start - start % step
        raise ValueError(f"{at(start)} is not the start of an interval of zone {z['id']}: intervals start every "
                         f"{duration(step)} (the nearest start at {at(before)} and {at(before + step)})")
    return start


def _zone_start(en: Any, zone: str, start: str) -> tuple[dict[str, Any], int]:
    """The zone (any signed key reads it) and START, checked against its clock before anything is sent."""
    ms = parse_start(start)
    z = en.zone(zone)
    return z, _aligned(z, ms)


def _meter_start(en: Any, meter: str, start: str, key: Any) -> tuple[str | None, int]:
    """The meter's zone and START checked against its clock, when ``key`` may read the meter (its owner
    may); otherwise the ledger judges both (a refused read is no reason to refuse here)."""
    ms = parse_start(start)
    try:
        zone = en.meter(meter, key=key)["zone"]
        z = en.zone(zone, key=key)
    except BlokautoError as err:
        if err.code == "unknown_meter":
            raise
        return None, ms
    return zone, _aligned(z, ms)


def _page(en: Any, query: str, field: str, limit: int, offset: int, every: bool, **params: Any) -> tuple[list[Any], int | None]:
    """One page of a listing (or every page with ``every``) and the offset of the next (None: no more)."""
    c = en.client
    head = _head(en)
    rows: list[Any] = []
    while True:
        size = PAGE_MAX if every else limit
        got = c.query("energy", query, min_height=head, limit=size, offset=offset, **params)[field]
        rows += got
        offset += len(got)
        if len(got) < size:
            return rows, None
        if not every:
            return rows, offset


def _more(next_offset: int | None, what: str) -> None:
    if next_offset is not None:
        console.print(f"[dim]more {what}: --offset {next_offset} (or --all)[/]")


# ---------------------------------------------------------------- the grid operator


ImportOpt = typer.Option(None, "--import-capacity", metavar="QUANTITY",
                         help="Energy the grid can bring into the zone per interval (Wh, or 50kWh); it sells it at "
                              "--import-price.")
ExportOpt = typer.Option(None, "--export-capacity", metavar="QUANTITY",
                         help="Energy the grid can take out of the zone per interval (Wh, or 20kWh); it buys it at "
                              "--export-price.")
ImportPriceOpt = typer.Option(None, "--import-price", metavar="PRICE", min=0, max=1_000_000,
                              help="What the grid sells at (minor units per kWh).")
ExportPriceOpt = typer.Option(None, "--export-price", metavar="PRICE", min=0, max=1_000_000,
                              help="What the grid buys at (minor units per kWh; below --import-price).")
ShortPriceOpt = typer.Option(None, "--short-price", metavar="PRICE", min=0, max=1_000_000,
                             help="What a meter pays per kWh it delivered or took less than it traded.")
LongPriceOpt = typer.Option(None, "--long-price", metavar="PRICE", min=0, max=1_000_000,
                            help="What a meter is paid per kWh it delivered or took more than it traded (at most "
                                 "--short-price).")


def _terms(base: dict[str, int], import_wh: Optional[str], export_wh: Optional[str], import_price: Optional[int],
           export_price: Optional[int], short_price: Optional[int], long_price: Optional[int]) -> dict[str, int]:
    """``base`` with what the options name changed."""
    t = dict(base)
    if import_wh is not None:
        t["import_wh"] = parse_energy(import_wh, "--import-capacity", least=0)
    if export_wh is not None:
        t["export_wh"] = parse_energy(export_wh, "--export-capacity", least=0)
    for name, value in (("import_price", import_price), ("export_price", export_price),
                        ("short_price", short_price), ("long_price", long_price)):
        if value is not None:
            t[name] = value
    return t


NO_TERMS = {"import_wh": 0, "export_wh": 0, "import_price": 0, "export_price": 0, "short_price": 0, "long_price": 0}


@energy_app.command("open-zone")
@cli_errors
def open_zone(zone: str = ZoneArg,
              currency: str = typer.Option(..., "--currency", "-c", metavar="CODE",
                                           help="ISO 4217 code of a currency payments carries, e.g. EUR."),
              interval: str = typer.Option("15m", "--interval", metavar="DURATION",
                                           help="Length of an interval (it divides a day): 15m, 5s, 900000 (ms)."),
              gate_closure: str = typer.Option("5m", "--gate-closure", metavar="DURATION",
                                               help="Orders for an interval close this long before it starts."),
              reading_window: str = typer.Option("1h", "--reading-window", metavar="DURATION",
                                                 help="Meters read an interval until this long after it ends; then it "
                                                      "settles without the missing readings."),
              import_wh: Optional[str] = ImportOpt, export_wh: Optional[str] = ExportOpt,
              import_price: Optional[int] = ImportPriceOpt, export_price: Optional[int] = ExportPriceOpt,
              short_price: Optional[int] = ShortPriceOpt, long_price: Optional[int] = LongPriceOpt,
              key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
              trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A grid operator (role `grid`) opens a zone: its currency and clock for good, and its first terms
    (what the options do not name is 0) from the first interval whose gate is still open."""
    interval_ms = parse_duration(interval, "--interval")
    if not 1_000 <= interval_ms <= DAY_MS or DAY_MS % interval_ms:
        raise ValueError(f"--interval {interval!r} is {interval_ms:,} ms; an interval is 1 s to 1 d and divides a day "
                         f"(intervals line up with UTC days): e.g. 5s, 1m, 15m, 1h")
    fields = {"zone": zone, "currency": currency, "interval_ms": interval_ms,
              "gate_closure_ms": parse_duration(gate_closure, "--gate-closure"),
              "reading_window_ms": parse_duration(reading_window, "--reading-window"),
              "terms": _terms(NO_TERMS, import_wh, export_wh, import_price, export_price, short_price, long_price)}
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        def said(info: Any) -> str:
            start = _event(info, "energy.terms_set")["start"]
            return (f"zone {escape(zone)} opened: {currency}, intervals of {duration(fields['interval_ms'])}, the gate "
                    f"closes {duration(fields['gate_closure_ms'])} before each, readings until "
                    f"{duration(fields['reading_window_ms'])} after; its terms apply from {at(start)}")

        _send(en, sender, "energy.open_zone", fields, wait, as_json, said)


@energy_app.command("set-terms")
@cli_errors
def set_terms(zone: str = ZoneArg, start: str = StartArg,
              import_wh: Optional[str] = ImportOpt, export_wh: Optional[str] = ExportOpt,
              import_price: Optional[int] = ImportPriceOpt, export_price: Optional[int] = ExportPriceOpt,
              short_price: Optional[int] = ShortPriceOpt, long_price: Optional[int] = LongPriceOpt,
              key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
              trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The zone's operator sets its capacities and prices from the interval at START (its gate still
    open) on; what the options do not name stays as in the terms in force at START."""
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        z, ms = _zone_start(en, zone, start)
        in_force = [t for t in z["terms"] if t["start"] <= ms] or z["terms"][:1]
        base = in_force[-1]["terms"] if in_force else NO_TERMS
        terms = _terms(base, import_wh, export_wh, import_price, export_price, short_price, long_price)
        _send(en, sender, "energy.set_terms", {"zone": zone, "start": ms, "terms": terms}, wait, as_json,
              lambda info: f"terms of zone {escape(zone)} from {at(ms)}: {terms_text(terms, z['currency'])}")


# ---------------------------------------------------------------- meter operators


@energy_app.command("register-meter")
@cli_errors
def register_meter(meter: str = MeterArg,
                   zone: str = typer.Option(..., "--zone", "-z", metavar="ZONE", help="The zone it trades in."),
                   kind: str = typer.Option(..., "--kind", metavar="home|charge_point|v2g_charger",
                                            help="A home meter, a charge point, or a vehicle's bidirectional charger."),
                   device_key: str = typer.Option(..., "--device-key", metavar="DID|NAME|FILE",
                                                  help="The key that signs its readings: a did:key, a key name in "
                                                       "DATA/keys, or a key file."),
                   owner: str = typer.Option(..., "--owner", metavar="OWNER",
                                             help="The account it trades for: a key name, did:key or org:<id>."),
                   max_power: str = typer.Option(..., "--max-power", metavar="POWER",
                                                 help="Its most power (W, or 11kW): readings above power x interval "
                                                      "are refused."),
                   vin: str = typer.Option("", "--vin", metavar="VIN",
                                           help="For a V2G charger: the vehicle it serves (on the ledger)."),
                   key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                   trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A meter operator (role `energy`, `charging` or `grid`) registers a meter with its device key and
    the account it trades for."""
    if kind not in KINDS:
        raise ValueError(f"--kind {kind[:40]!r} is not one of {', '.join(KINDS)}")
    fields = {"meter": meter, "zone": zone, "kind": kind, "key": did_of(data, device_key),
              "owner": owner_of(data, owner), "max_power_w": parse_power(max_power), "vin": vin}
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        _send(en, sender, "energy.register_meter", fields, wait, as_json,
              lambda info: f"meter {escape(meter)} ({kind}, {fields['max_power_w']:,} W) registered in zone "
                           f"{escape(zone)}, trading for {escape(fields['owner'])}; readings signed by "
                           f"{fields['key']}")


@energy_app.command("rotate-meter-key")
@cli_errors
def rotate_meter_key(meter: str = MeterArg,
                     device_key: str = typer.Option(..., "--device-key", metavar="DID|NAME|FILE",
                                                    help="The new key (a did:key, a key name in DATA/keys, or a key "
                                                         "file); the old one signs nothing from this block on."),
                     key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                     trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The meter's operator gives it a new device key."""
    did = did_of(data, device_key)
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        _send(en, sender, "energy.rotate_meter_key", {"meter": meter, "key": did}, wait, as_json,
              lambda info: f"meter {escape(meter)}'s readings are signed by {did} from block {info.height} on")


@energy_app.command("revoke-meter")
@cli_errors
def revoke_meter(meter: str = MeterArg,
                 reason: str = typer.Option("", "--reason", metavar="TEXT", help="Why (no personal data)."),
                 key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                 trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The meter's operator takes it out of service: no orders, no readings from this block on (its
    open orders still clear and settle)."""
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        _send(en, sender, "energy.revoke_meter", {"meter": meter, "reason": reason}, wait, as_json,
              lambda info: f"meter {escape(meter)} out of service from block {info.height}")


# ---------------------------------------------------------------- owners


def _order(side: str, meter: str, start: str, price: int, energy: str, key: str, wait: float, data: Path, node: str,
           trust: Optional[Path], as_json: bool) -> None:
    quantity = parse_energy(energy)
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        _, ms = _meter_start(en, meter, start, sender)

        def said(info: Any) -> str:
            e = _event(info, "energy.order_placed")
            cur = _currency(en, e["zone"])
            from ..modules.energy import value

            held = (f"; {money(value(quantity, price, up=True), cur)} held until it settles" if side == "buy" and cur
                    else "")
            verb = "buy" if side == "buy" else "sell"
            return (f"{'bid' if side == 'buy' else 'ask'} {e['seq']} in zone {escape(e['zone'])} for the interval at "
                    f"{at(ms)}: {verb} up to {wh(quantity)} at {'no more' if side == 'buy' else 'no less'} than "
                    f"{per_kwh(price, cur)}{held}\n  cancel it before the gate closes: blokauto energy cancel "
                    f"{escape(e['zone'])} {ms} {e['seq']}")

        _send(en, sender, "energy.place_order", {"meter": meter, "start": ms, "side": side, "price": price,
                                                 "wh": quantity}, wait, as_json, said)


@energy_app.command("bid")
@cli_errors
def bid(meter: str = MeterArg, start: str = StartArg, price: int = PriceOpt, energy: str = EnergyOpt,
        key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
        trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Buy up to --energy for the meter in the interval at START, at no more than --price; its most cost
    is held from the owner's account until the interval settles."""
    _order("buy", meter, start, price, energy, key, wait, data, node, trust, as_json)


@energy_app.command("ask")
@cli_errors
def ask(meter: str = MeterArg, start: str = StartArg, price: int = PriceOpt, energy: str = EnergyOpt,
        key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
        trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Sell up to --energy from the meter in the interval at START, at no less than --price."""
    _order("sell", meter, start, price, energy, key, wait, data, node, trust, as_json)


@energy_app.command("cancel")
@cli_errors
def cancel(zone: str = ZoneArg, start: str = StartArg, seq: int = SeqArg, key: str = KeyOpt, wait: float = WaitOpt,
           data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
           as_json: bool = JsonOpt) -> None:
    """Cancel an open order before its interval's gate closes (a bid's money comes back at once)."""
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        _, ms = _zone_start(en, zone, start)
        _send(en, sender, "energy.cancel_order", {"zone": zone, "start": ms, "seq": seq}, wait, as_json,
              lambda info: f"order {seq} of zone {escape(zone)} for the interval at {at(ms)} cancelled")


# ---------------------------------------------------------------- meters and anyone


@energy_app.command("reading")
@cli_errors
def reading(meter: str = MeterArg, start: str = StartArg,
            imported: str = typer.Option(..., "--imported", metavar="QUANTITY",
                                         help="Energy taken from the grid over the interval (Wh, or 1.5kWh; 0 for "
                                              "none)."),
            exported: str = typer.Option(..., "--exported", metavar="QUANTITY",
                                         help="Energy given to the grid over the interval (Wh, or 3kWh; 0 for none)."),
            key: str = typer.Option(..., "--key", "-k", metavar="NAME|FILE",
                                    help="The meter's device key (DATA/keys, or a key file): only it signs readings."),
            wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
            as_json: bool = JsonOpt) -> None:
    """The meter signs what it measured over an interval that has ended (once; before it settles and
    before its reading window closes)."""
    fields = {"meter": meter, "start": parse_start(start), "imported_wh": parse_energy(imported, "--imported", least=0),
              "exported_wh": parse_energy(exported, "--exported", least=0)}
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        _send(en, sender, "energy.submit_reading", fields, wait, as_json,
              lambda info: f"meter {escape(meter)} read the interval at {at(fields['start'])}: imported "
                           f"{wh(fields['imported_wh'])}, exported {wh(fields['exported_wh'])}")


@energy_app.command("clear")
@cli_errors
def clear(zone: str = ZoneArg, start: str = StartArg, key: str = KeyOpt, wait: float = WaitOpt,
          data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
          as_json: bool = JsonOpt) -> None:
    """Clear an interval once its gate has closed (anyone): one uniform-price auction over its open
    orders and the grid's offers."""
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        z, ms = _zone_start(en, zone, start)

        def said(info: Any) -> str:
            e = _event(info, "energy.cleared")
            if not e["matched_wh"]:
                return f"zone {escape(zone)}, interval at {at(ms)}: cleared, nothing matched"
            return (f"zone {escape(zone)}, interval at {at(ms)}: cleared at {per_kwh(e['price'], z['currency'])}, "
                    f"{wh(e['matched_wh'])} matched")

        _send(en, sender, "energy.clear", {"zone": zone, "start": ms}, wait, as_json, said)


@energy_app.command("settle")
@cli_errors
def settle(zone: str = ZoneArg, start: str = StartArg, key: str = KeyOpt, wait: float = WaitOpt,
           data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
           as_json: bool = JsonOpt) -> None:
    """Settle an interval after it ends (anyone), once every meter with a position has read it or its
    reading window has passed; clears it first if nobody did."""
    en, sender = _session(node, data, trust, key)
    with en.client, en:
        _, ms = _zone_start(en, zone, start)

        def said(info: Any) -> str:
            e = _event(info, "energy.settled")
            return (f"zone {escape(zone)}, interval at {at(ms)}: settled, {e['positions']} position(s), "
                    f"{e['missing_readings']} without a reading; totals: blokauto energy book {escape(zone)} {ms}")

        _send(en, sender, "energy.settle", {"zone": zone, "start": ms}, wait, as_json, said)


# ---------------------------------------------------------------- reads


@energy_app.command("zone")
@cli_errors
def zone_show(zone: str = ZoneArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
              trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A zone: its grid operator, currency, clock and every terms it has had (any signed request)."""
    from ..client import now_ms

    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        z = en.zone(zone, min_height=_head(en))
        say_trust(en.client)
        nxt = en.next_interval(zone)
    if as_json:
        print_json({**z, "next_interval": nxt, "next_interval_utc": utc(nxt)})
        return
    cur = z["currency"]
    console.print(f"zone {escape(z['id'])} operated by {escape(z['operator'])}: {cur}, intervals of "
                  f"{duration(z['interval_ms'])}, the gate closes {duration(z['gate_closure_ms'])} before each, "
                  f"readings until {duration(z['reading_window_ms'])} after; opened at block {z['created']}")
    console.print(f"  next interval open for orders: {at(nxt)} (now {at(now_ms())})")
    for t in z["terms"]:
        console.print(f"  terms from {at(t['start'])} (block {t['height']}): {terms_text(t['terms'], cur)}")


@energy_app.command("zones")
@cli_errors
def zones(limit: int = LimitOpt, offset: int = OffsetOpt, every: bool = AllOpt, as_key: Optional[str] = AsOpt,
          data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
          as_json: bool = JsonOpt) -> None:
    """The zones on the ledger, by id (any signed request)."""
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        rows, nxt = _page(en, "zones", "zones", limit, offset, every)
        say_trust(en.client)
    if as_json:
        print_json({"zones": rows, "next_offset": nxt})
        return
    for r in rows:
        console.print(f"{escape(r['zone'])}  {r['currency']}  operated by {escape(r['operator'])}")
    if not rows:
        console.print("no zones" + (" on this page" if offset else ""))
    _more(nxt, "zones")


@energy_app.command("next-interval")
@cli_errors
def next_interval(zone: str = ZoneArg,
                  after: str = typer.Option("0", "--after", metavar="DURATION",
                                            help="Time you need to get an order into a block (e.g. 2s): the first "
                                                 "interval whose gate is still open that long from now."),
                  as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                  trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The first interval of the zone whose gate is open now (or --after from now): when it starts, when
    its gate closes, when it ends."""
    after_ms = parse_duration(after, "--after")
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        z = en.zone(zone)
        start = en.next_interval(zone, after_ms=after_ms)
        say_trust(en.client)
    gate, end = start - z["gate_closure_ms"], start + z["interval_ms"]
    if as_json:
        print_json({"zone": zone, "start": start, "start_utc": utc(start), "gate_closes": gate,
                    "gate_closes_utc": utc(gate), "end": end, "end_utc": utc(end)})
        return
    console.print(f"{at(start)}")
    console.print(f"  zone {escape(zone)}: orders until {at(gate)}, the interval ends at {at(end)}")


@energy_app.command("book")
@cli_errors
def book(zone: str = ZoneArg, start: str = StartArg,
         proof: bool = flag("--proof", "Also read the book from state with its proof, checked against a checkpoint."),
         as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
         as_json: bool = JsonOpt) -> None:
    """An interval's book (any signed request): its times, its open orders' totals, the clearing price
    and energy matched, and what settlement moved. Individual orders are their owners'."""
    from ..client.energy import book_key

    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        head = _head(en)
        _, ms = _zone_start(en, zone, start)
        b = en.book(zone, ms, min_height=head)
        proven = en.client.state(book_key(zone, ms), min_height=head) if proof else None
        say_trust(en.client)
    if proven is not None and (proven.value or {}).get("status") != b["status"]:
        raise ValueError(f"the proven book says {(proven.value or {}).get('status')!r}, the query {b['status']!r}: "
                         f"ask again (a block may have come in between)")
    if as_json:
        out = {**b, "start_utc": utc(b["start"])}
        if proven is not None:
            out["proof"] = {"key": proven.key, "height": proven.checkpoint.header.height}
        print_json(out)
        return
    cur = b["currency"]
    console.print(f"book of zone {escape(zone)}, interval at {at(b['start'])}: {b['status']}")
    console.print(f"  gate closes   {at(b['gate_closes'])}")
    console.print(f"  ends          {at(b['end'])}")
    console.print(f"  settles from  {at(b['settles_from'])} even with readings missing")
    console.print(f"  orders        {b['orders']} placed; open: {b['open_bids']} bid(s) for {wh(b['bid_wh'])}, "
                  f"{b['open_asks']} ask(s) for {wh(b['ask_wh'])}")
    c = b.get("clearing")
    if c is None:
        console.print("  cleared       not yet (anyone clears it once its gate has closed)")
    else:
        r = c["result"]
        console.print(f"  cleared       at block {c['height']} ({at(c['time'])}): "
                      + (f"{per_kwh(r['price'], cur)}, {wh(r['matched_wh'])} matched" if r["matched_wh"]
                         else "nothing matched")
                      + f"; the grid sold {wh(c['grid_import_wh'])} into the zone and bought "
                        f"{wh(c['grid_export_wh'])} (terms from {at(c['terms_start'])})")
    s = b.get("settlement")
    if s is None:
        console.print("  settled       not yet")
    else:
        console.print(f"  settled       at block {s['height']} ({at(s['time'])}): {s['positions']} position(s), "
                      f"{s['missing_readings']} without a reading")
        console.print(f"                buyers paid {money(s['bought_paid'], cur)}, sellers were paid "
                      f"{money(s['sold_paid'], cur)}; short imbalance paid {money(s['short_paid'], cur)} (unpaid "
                      f"{money(s['short_unpaid'], cur)}), long imbalance paid {money(s['long_paid'], cur)}")
    if proven is not None:
        console.print(f"  proven        {proven.key} against the checkpoint at height {proven.checkpoint.header.height}")


def _order_line(o: dict[str, Any], cur: str | None) -> str:
    verb = "buy" if o["side"] == "buy" else "sell"
    line = (f"{escape(o['zone'])} {at(o['start'])} #{o['seq']}: {verb} {wh(o['wh'])} at "
            f"{per_kwh(o['price'], cur)} for meter {escape(o['meter'])}")
    if "filled_wh" in o:  # its interval cleared (the order itself stays "open" on the ledger)
        return line + f"; cleared: {wh(o['filled_wh'])} at {per_kwh(o['price_cleared'], cur)}"
    line += f", {o['status']}"
    if o["side"] == "buy" and o.get("held") and o["status"] == "open":
        line += f", holds {money(o['held'], cur)}" if cur else f", holds {o['held']} (minor units)"
    return line


@energy_app.command("order")
@cli_errors
def order(zone: str = ZoneArg, start: str = StartArg, seq: int = SeqArg, as_key: Optional[str] = AsOpt,
          data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
          as_json: bool = JsonOpt) -> None:
    """One order, and once its interval cleared what it got (its owner and the zone's operator read it)."""
    ms = parse_start(start)
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        o = en.order(zone, ms, seq, min_height=_head(en))
        cur = _currency(en, zone)
        say_trust(en.client)
    if as_json:
        print_json(o)
        return
    console.print(_order_line(o, cur))
    console.print(f"  owner {escape(o['owner'])}, placed at block {o['height']} (transaction {o['key']})")


def _owner_or_self(data: Path, owner: Optional[str], as_key: Optional[str]) -> str:
    if owner is None and as_key is None:
        raise ValueError("name the account with --owner OWNER, or sign with --as NAME to read your own")
    return owner_of(data, owner) if owner is not None else signing_key(data, as_key).did


@energy_app.command("orders")
@cli_errors
def orders(owner: Optional[str] = typer.Option(None, "--owner", metavar="OWNER",
                                               help="Whose orders: a key name, did:key or org:<id> (default: the "
                                                    "--as key's)."),
           start: Optional[str] = typer.Option(None, "--start", metavar="START",
                                               help="Only this interval's (ms, or 2026-12-07T14:15Z)."),
           limit: int = LimitOpt, offset: int = OffsetOpt, every: bool = AllOpt, as_key: Optional[str] = AsOpt,
           data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
           as_json: bool = JsonOpt) -> None:
    """An account's open orders, newest interval first (read by the account's keys)."""
    who = _owner_or_self(data, owner, as_key)
    params: dict[str, Any] = {"owner": who} if start is None else {"owner": who, "start": parse_start(start, "--start")}
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        rows, nxt = _page(en, "orders", "orders", limit, offset, every, **params)
        currencies = {z: _currency(en, z) for z in {o["zone"] for o in rows}} if not as_json else {}
        say_trust(en.client)
    if as_json:
        print_json({"owner": who, "orders": rows, "next_offset": nxt})
        return
    for o in rows:
        console.print(_order_line(o, currencies.get(o["zone"])))
    if not rows:
        console.print(f"no open orders of {escape(who)}" + (" on this page" if offset else ""))
    _more(nxt, "orders")


@energy_app.command("meter")
@cli_errors
def meter_show(meter: str = MeterArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
               trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A meter (its owner, its operator and its zone's operator read it)."""
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        m = en.meter(meter, min_height=_head(en))
        say_trust(en.client)
    if as_json:
        print_json(m)
        return
    state = (f"out of service since block {m['revoked']}" + (f" ({escape(m['reason'])})" if m["reason"] else "")
             if m["revoked"] else "in service")
    console.print(f"meter {escape(m['id'])} ({m['kind']}, {m['max_power_w']:,} W) in zone {escape(m['zone'])}, "
                  f"operated by {escape(m['operator'])}: {state}")
    console.print(f"  trades for {escape(m['owner'])}; readings signed by {m['key']}"
                  + (f"; vehicle {escape(m['vin'])}" if m["vin"] else "") + f"; registered at block {m['registered']}")


@energy_app.command("meters")
@cli_errors
def meters(owner: Optional[str] = typer.Option(None, "--owner", metavar="OWNER",
                                               help="Whose meters: a key name, did:key or org:<id> (default: the "
                                                    "--as key's)."),
           limit: int = LimitOpt, offset: int = OffsetOpt, every: bool = AllOpt, as_key: Optional[str] = AsOpt,
           data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
           as_json: bool = JsonOpt) -> None:
    """The meters an account trades for (read by the account's keys)."""
    who = _owner_or_self(data, owner, as_key)
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        rows, nxt = _page(en, "meters", "meters", limit, offset, every, owner=who)
        say_trust(en.client)
    if as_json:
        print_json({"owner": who, "meters": rows, "next_offset": nxt})
        return
    for m in rows:
        console.print(f"{escape(m['meter'])}  {m['kind']}  zone {escape(m['zone'])}, operated by "
                      f"{escape(m['operator'])}" + (f", vehicle {escape(m['vin'])}" if m["vin"] else ""))
    if not rows:
        console.print(f"no meters trade for {escape(who)}" + (" on this page" if offset else ""))
    _more(nxt, "meters")


@energy_app.command("position")
@cli_errors
def position(meter: str = MeterArg, start: str = StartArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(),
             node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """How the meter's trades of an interval settled, read from state with its proof checked against a
    checkpoint (its owner, its operator and its zone's operator read it)."""
    ms = parse_start(start)
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        sv = en.proven_position(meter, ms, min_height=_head(en))
        p = sv.value
        cur = _currency(en, p["zone"]) if p is not None else None
        say_trust(en.client)
    if p is None:
        raise NotFound(what=f"A settled position (proven absent) of meter {meter!r} in the interval at", key=ms)
    net = p["received"] + p["long_credit"] - p["paid"] - p["short_charge"] + p["unpaid"]  # what moved
    if as_json:
        print_json({"position": p, "net": net, "start_utc": utc(ms),
                    "proof": {"key": sv.key, "height": sv.checkpoint.header.height}})
        return
    reading = (f"it read {p['net_export_wh']:+,} Wh net export" if p["read"]
               else "no reading: the whole position counted short")
    console.print(f"position of meter {escape(meter)} in zone {escape(p['zone'])}, interval at {at(ms)}: settled at "
                  f"block {p['height']}")
    console.print(f"  energy   bought {wh(p['bought_wh'])}, sold {wh(p['sold_wh'])}; {reading}")
    console.print(f"  money    paid {money(p['paid'], cur)}, received {money(p['received'], cur)}, refunded "
                  f"{money(p['refunded'], cur)} of what its bids held")
    console.print(f"  imbalance short {wh(p['short_wh'])} ({money(p['short_charge'], cur)}"
                  + (f", {money(p['unpaid'], cur)} unpaid" if p["unpaid"] else "")
                  + f"), long {wh(p['long_wh'])} ({money(p['long_credit'], cur)})")
    console.print(f"  net      {'+' if net >= 0 else ''}{money(net, cur)}")
    console.print(f"  proven   {sv.key} against the checkpoint at height {sv.checkpoint.header.height}")


@energy_app.command("positions")
@cli_errors
def positions(meter: str = MeterArg, limit: int = LimitOpt, offset: int = OffsetOpt, every: bool = AllOpt,
              as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
              trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A meter's settled intervals, newest first: energy bought and sold, and the money it netted."""
    en, _ = _session(node, data, trust, as_key)
    with en.client, en:
        rows, nxt = _page(en, "positions", "positions", limit, offset, every, meter=meter)
        currencies = {z: _currency(en, z) for z in {p["zone"] for p in rows}} if not as_json else {}
        say_trust(en.client)
    if as_json:
        print_json({"meter": meter, "positions": rows, "next_offset": nxt})
        return
    for p in rows:
        cur = currencies.get(p["zone"])
        console.print(f"{at(p['start'])}  zone {escape(p['zone'])}: bought {wh(p['bought_wh'])}, sold "
                      f"{wh(p['sold_wh'])}, net {'+' if p['net'] >= 0 else ''}{money(p['net'], cur)} "
                      f"(block {p['height']})")
    if not rows:
        console.print(f"no settled positions of meter {escape(meter)}" + (" on this page" if offset else ""))
    _more(nxt, "positions")
