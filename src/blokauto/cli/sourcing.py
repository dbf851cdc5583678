"""``blokauto sourcing``: material lots from mine to pack, handoffs with place and time, where the
supply chain waits, and battery passports.

Each change is a transaction signed with ``--key NAME`` (a key in DATA/keys), sent as ``tx send``
sends one. Masses take a unit (``1.2t``, ``36kg``, ``500g``; plain digits are grams), a yield a
percentage or ppm (``4%``, ``40000ppm``), a time ``at`` a duration ago (``3h``) or ms since the epoch.
Reads are module queries signed with ``--as NAME``; ``origin --prove`` recomputes the answer from
state values each proven against a quorum checkpoint, and ``passport show`` proves the passport.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..keystore import KeyStore
from .common import AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, group, print_json, say_trust, \
    signing_key, when
from .errors import cli_errors, fail
from .tx import WaitOpt, submit_and_report

sourcing_app = group("Responsible sourcing: material lots from mine to pack (split, merge, transform, recover), "
                     "handoffs with place and time, the supply chain's slow legs, and battery passports.")

KeyOpt = typer.Option(..., "--key", "-k", metavar="NAME", help="The sender's key (its name in DATA/keys).")
LocationOpt = typer.Option("", "--location", "-l", metavar="PLACE",
                           help="Where: a UN/LOCODE (DEHAM, CDKWZ) or coarse coordinates geo:LAT,LON (two decimals).")
AtOpt = typer.Option("0", "--at", metavar="WHEN",
                     help="When it happened: a duration ago (3h, 2d) or ms since the epoch; 0 (the default) is the "
                          "block's time. At most handoff_backdate_ms before the block.")

_MASS_UNITS = {"g": 1, "kg": 1_000, "t": 1_000_000}
_AGO = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def grams(text: str) -> int:
    """``1.2t``, ``36kg``, ``500g`` or ``500`` as whole grams."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(t|kg|g)?\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a mass: give a number and a unit, as 1.2t, 36kg or 500g")
    value = Decimal(m.group(1)) * _MASS_UNITS[m.group(2) or "g"]
    if value != value.to_integral_value() or value < 1:
        raise ValueError(f"{text!r} is not a whole number of grams (at least 1 g)")
    return int(value)


def ppm(text: str) -> int:
    """``4%``, ``0.5%`` or ``40000ppm`` as parts per million."""
    t = text.strip().lower()
    if not t.endswith(("%", "ppm")):
        raise ValueError(f"{text!r}: give the yield with its unit, a percentage (4%) or parts per million (40000ppm)")
    try:
        value = Decimal(t[:-1]) * 10_000 if t.endswith("%") else Decimal(t.removesuffix("ppm"))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a yield: give a percentage (4%) or parts per million (40000ppm)") from None
    if not 1 <= value <= 1_000_000:
        raise ValueError(f"{text!r} is not a yield between 1 ppm and 100%")
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of parts per million (a yield is kept in ppm: 3.3333%)")
    return int(value)


def at_ms(text: str, now: int) -> int:
    m = _AGO.match(text.strip())
    if m:
        return now - int(m.group(1)) * _UNITS_MS[m.group(2)]
    if text.strip().isdigit():
        return int(text.strip())
    raise ValueError(f"--at {text!r} is neither a duration ago (3h, 2d) nor a time in ms since the epoch")


def portion(text: str) -> dict[str, Any]:
    """``LOT=MASS``."""
    lot, sep, mass = text.partition("=")
    if not sep or not lot:
        raise ValueError(f"{text!r}: give LOT=MASS, as ORE-1=12t")
    return {"lot": lot, "mass_g": grams(mass)}


def output(text: str) -> dict[str, Any]:
    """``LOT:MATERIAL=MASS``."""
    head, sep, mass = text.partition("=")
    lot, sep2, material = head.partition(":")
    if not sep or not sep2 or not lot or not material:
        raise ValueError(f"{text!r}: give LOT:MATERIAL=MASS, as CONC-1:cobalt-hydroxide=1.6t")
    return {"lot": lot, "material": material, "mass_g": grams(mass)}


def _send(key: str, data: Path, node: str, trust: Optional[Path], type_: str, fields: dict[str, Any], wait: float,
          as_json: bool) -> None:
    sender = KeyStore(data / "keys").load(key)
    with client(node, data, trust, key=sender) as c:
        tx = c.sign(c.build(c.message(type_, fields), sender), sender)
        submit_and_report(c, tx, wait, as_json)


def _now() -> int:
    from ..client import now_ms

    return now_ms()


# ---------------------------------------------------------------- lots


@sourcing_app.command("register-lot")
@cli_errors
def register_lot(lot: str = typer.Argument(..., metavar="LOT", help="The new lot's id."),
                 material: str = typer.Option(..., "--material", "-m", metavar="MATERIAL", help="The material: cobalt, lithium, nickel ..."),
                 mass: str = typer.Option(..., "--mass", metavar="MASS", help="Its mass: 1.2t, 36kg, 500g."),
                 mine: str = typer.Option(..., "--mine", metavar="NAME", help="The mine it came from."),
                 country: str = typer.Option(..., "--country", metavar="CC", help="The mine's country (ISO 3166, CD)."),
                 location: str = LocationOpt, key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
                 node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A mined lot enters the ledger in your custody (a supplier): its own origin."""
    _send(key, data, node, trust, "parts.register_lot", {"lot": lot, "material": material, "mass_g": grams(mass),
                                                          "mine": mine, "country": country, "location": location},
          wait, as_json)


@sourcing_app.command("attest")
@cli_errors
def attest(lot: str = typer.Argument(..., metavar="LOT", help="The lot audited."),
           standard: str = typer.Option(..., "--standard", metavar="NAME", help="The standard (RMAP, OECD-DDG, IRMA)."),
           result: str = typer.Option(..., "--result", metavar="conformant|non_conformant", help="The finding."),
           report: str = typer.Option(..., "--report", metavar="REF", help="The audit report's reference."),
           valid_for: str = typer.Option("365d", "--valid-for", metavar="DURATION",
                                         help="How long it stands: 365d, 90d (at most attestation_max_ms)."),
           key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
           trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """An auditor attests a lot's responsible sourcing, or finds it non-conformant."""
    if result not in ("conformant", "non_conformant"):
        raise ValueError(f"--result {result!r}: give conformant or non_conformant")
    m = _AGO.match(valid_for.strip())
    if not m:
        raise ValueError(f"--valid-for {valid_for!r} is not a duration (365d, 12h)")
    until = _now() + int(m.group(1)) * _UNITS_MS[m.group(2)]
    _send(key, data, node, trust, "parts.attest_lot", {"lot": lot, "standard": standard, "result": result,
                                                        "report": report, "valid_until": until}, wait, as_json)


@sourcing_app.command("split")
@cli_errors
def split(lot: str = typer.Argument(..., metavar="LOT", help="The lot to split."),
          into: list[str] = typer.Option(..., "--into", metavar="LOT=MASS", help="A new lot and its mass; repeat."),
          location: str = LocationOpt, key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
          node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Split part of a lot you hold into new lots of its material (they keep its origins and attestation)."""
    _send(key, data, node, trust, "parts.split_lot", {"lot": lot, "into": [portion(x) for x in into],
                                                       "location": location}, wait, as_json)


@sourcing_app.command("merge")
@cli_errors
def merge(portions: list[str] = typer.Option(..., "--from", metavar="LOT=MASS", help="A portion of a lot; repeat."),
          into: str = typer.Option(..., "--into", metavar="LOT", help="The new lot."),
          location: str = LocationOpt, key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
          node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Merge portions of lots of one material into a new lot (origins mixed by mass)."""
    _send(key, data, node, trust, "parts.merge_lots", {"lots": [portion(x) for x in portions], "into": into,
                                                        "location": location}, wait, as_json)


@sourcing_app.command("transform")
@cli_errors
def transform(inputs: list[str] = typer.Option(..., "--in", metavar="LOT=MASS", help="An input portion; repeat."),
              outputs: list[str] = typer.Option(..., "--out", metavar="LOT:MATERIAL=MASS", help="An output lot; repeat."),
              process: str = typer.Option(..., "--process", metavar="NAME", help="The process: concentration, smelting, refining ..."),
              yield_: str = typer.Option(..., "--yield", metavar="PERCENT|PPM",
                                         help="The declared yield: outputs weigh at most inputs × yield (4%, 40000ppm)."),
              location: str = LocationOpt, key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
              node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A process step: inputs consumed (conformance checked), outputs made carrying their origins."""
    _send(key, data, node, trust, "parts.transform_lots", {
        "inputs": [portion(x) for x in inputs], "outputs": [output(x) for x in outputs], "process": process,
        "yield_ppm": ppm(yield_), "location": location}, wait, as_json)


@sourcing_app.command("recover")
@cli_errors
def recover(lot: str = typer.Argument(..., metavar="LOT", help="The new lot of recovered material."),
            parts: list[str] = typer.Option(..., "--part", metavar="PART", help="A harvested part it came from; repeat."),
            material: str = typer.Option(..., "--material", "-m", metavar="MATERIAL", help="What was recovered."),
            mass: str = typer.Option(..., "--mass", metavar="MASS", help="How much: 12kg."),
            country: str = typer.Option(..., "--country", metavar="CC", help="The recycling plant's country."),
            location: str = LocationOpt, key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
            node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A recycler recovers material from parts it harvested: a lot of recycled origin; the parts are scrapped."""
    _send(key, data, node, trust, "parts.recover_material", {"parts": parts, "lot": lot, "material": material,
                                                              "mass_g": grams(mass), "country": country,
                                                              "location": location}, wait, as_json)


# ---------------------------------------------------------------- handoffs


@sourcing_app.command("ship")
@cli_errors
def ship(to: str = typer.Option(..., "--to", metavar="ORG|DID", help="The receiver: org:<id> or a did:key."),
         items: list[str] = typer.Option(None, "--item", metavar="ID", help="A part or batch id; repeat."),
         lots: list[str] = typer.Option(None, "--lot", metavar="LOT", help="A material lot; repeat."),
         location: str = LocationOpt, at: str = AtOpt, key: str = KeyOpt, wait: float = WaitOpt,
         data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Hand parts, batches or lots over; they are in transit until the receiver signs for them."""
    if not items and not lots:
        raise ValueError("name what you ship: --item ID or --lot LOT (repeat)")
    _send(key, data, node, trust, "parts.ship", {"to": to, "items": items or [], "lots": lots or [],
                                                  "location": location, "at": at_ms(at, _now()) if at != "0" else 0},
          wait, as_json)


@sourcing_app.command("receive")
@cli_errors
def receive(items: list[str] = typer.Option(None, "--item", metavar="ID", help="A part or batch id; repeat."),
            lots: list[str] = typer.Option(None, "--lot", metavar="LOT", help="A material lot; repeat."),
            location: str = LocationOpt, at: str = AtOpt, key: str = KeyOpt, wait: float = WaitOpt,
            data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
            as_json: bool = JsonOpt) -> None:
    """Take custody of what was shipped to you."""
    if not items and not lots:
        raise ValueError("name what you receive: --item ID or --lot LOT (repeat)")
    _send(key, data, node, trust, "parts.receive", {"items": items or [], "lots": lots or [], "location": location,
                                                     "at": at_ms(at, _now()) if at != "0" else 0}, wait, as_json)


# ---------------------------------------------------------------- reading


def _pct(value: int) -> str:
    return f"{value // 10_000}.{value % 10_000 // 100:02d} %"


def _bar(value: int, width: int = 24) -> str:
    n = value * width // 1_000_000
    return "█" * n + "·" * (width - n)


def _duration(ms: int) -> str:
    h, rest = divmod(ms // 1000, 3600)
    d, h = divmod(h, 24)
    return f"{d}d {h}h" if d else f"{h}h {rest // 60:02d}m" if h else f"{rest // 60}m {rest % 60:02d}s"


@sourcing_app.command("origin")
@cli_errors
def origin(item: str = typer.Argument(..., metavar="ID", help="A part (a battery pack), batch or lot."),
           prove: bool = typer.Option(True, "--prove/--no-prove", metavar="",
                                      help="Recompute the answer from state values each proven against a checkpoint."),
           key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
           trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Where the materials of a part, batch or lot came from: every mine, its share, the recycled share."""
    from ..client.sourcing import Sourcing

    with client(node, data, trust, key=signing_key(data, key)) as c:
        got = Sourcing(c).origin(item, prove=prove)
        say_trust(c)
    if as_json:
        print_json({**got.answer, "verified": got.verified, "unreadable": got.unreadable})
        return
    a = got.answer
    console.print(f"{escape(item)} ({a['kind']}): {len(a['lots'])} lot(s) consumed directly, "
                  f"{a['steps']} processing step(s) from the mine")
    for m in a["materials"]:
        table = Table(f"{escape(m['material'])}: origin lot", "mine", "country", "share", "", "attested")
        for o in m["origins"]:
            att = o["attestations"][-1] if o["attestations"] else None
            table.add_row(escape(o["lot"]), "recycled" if o["recycled"] else escape(o["mine"]), o["country"],
                          _pct(o["ppm"]), _bar(o["ppm"]),
                          f"{att['standard']} {att['result']}" if att else "-")
        console.print(table)
        console.print(f"  recycled content: {_pct(m['recycled_ppm'])}")
    if not prove:
        console.print("[yellow]not proven (--no-prove): the node's answer as it gave it[/]")
    elif got.verified:
        console.print(f"[green]verified[/]: recomputed from {len(got.proven)} state values, each proven")
    else:
        console.print(f"[yellow]not proven[/]: {len(got.unreadable)} state value(s) belong to parties you are not "
                      f"({', '.join(escape(k) for k in list(got.unreadable)[:4])}...); a pack's passport proves its "
                      f"origins to anyone")


@sourcing_app.command("route")
@cli_errors
def route(item: str = typer.Argument(..., metavar="ID", help="A part, batch or lot."),
          key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Every handoff of an item with place and time, how long each custodian held it, each leg's duration."""
    with client(node, data, trust, key=signing_key(data, key)) as c:
        r = c.query("parts", "route", id=item)
    if as_json:
        print_json(r)
        return
    table = Table("custodian", "where", "from", "until", "held")
    for s in r["stays"]:
        table.add_row(escape(s["custodian"]), s["location"] or "-", when(s["from"]),
                      when(s["until"]) if s["until"] else "now", _duration(s["dwell_ms"]))
    console.print(table)
    legs = Table("leg", "from", "to", "shipped", "took")
    for leg in r["legs"]:
        legs.add_row(f"{escape(leg['sender'])} → {escape(leg['receiver'])}", leg["origin"] or "-",
                     leg["destination"] or "-", when(leg["shipped"]), _duration(leg["duration_ms"]))
    if r["legs"]:
        console.print(legs)
    now = r["now"]
    if now and now["in_transit"]:
        console.print(f"in transit to {escape(now['receiver'])} for {_duration(now['for_ms'])}")


def _product_query(query: str, part_number: Optional[str], supplier: Optional[str], limit: int, key: Optional[str],
                   data: Path, node: str, trust: Optional[Path], as_json: bool) -> dict[str, Any] | None:
    """A part number's and/or a supplier's ``legs``, ``lanes`` or ``in_transit`` (neither: everything, for
    regulators); None once printed as JSON."""
    which = {k: v for k, v in (("part_number", part_number), ("supplier", supplier)) if v}
    with client(node, data, trust, key=signing_key(data, key)) as c:
        r = c.query("parts", query, limit=limit, **which)
    if as_json:
        print_json(r)
        return None
    return r


PartNumberOpt = typer.Option(None, "--part-number", "-p", metavar="PN", help="A part number (its supplier reads it).")
SupplierOpt = typer.Option(None, "--supplier", "-s", metavar="ORG", help="A supplier: everything it makes.")
LimitOpt = typer.Option(20, "--limit", "-n", metavar="N", min=1, max=1000, help="How many rows.")


@sourcing_app.command("legs")
@cli_errors
def legs(part_number: Optional[str] = PartNumberOpt, supplier: Optional[str] = SupplierOpt, limit: int = LimitOpt,
         key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
         trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The slowest legs (shipment to receipt), longest first."""
    r = _product_query("legs", part_number, supplier, limit, key, data, node, trust, as_json)
    if r is None:
        return
    table = Table("item", "sender → receiver", "from", "to", "took")
    for leg in r["legs"]:
        table.add_row(escape(leg["item"]), f"{escape(leg['sender'])} → {escape(leg['receiver'])}",
                      leg["origin"] or "-", leg["destination"] or "-", _duration(leg["duration_ms"]))
    console.print(table)


@sourcing_app.command("lanes")
@cli_errors
def lanes(part_number: Optional[str] = PartNumberOpt, supplier: Optional[str] = SupplierOpt, limit: int = LimitOpt,
          key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Where the supply chain waits: lanes (sender to receiver, place to place) by mean duration, with a bar."""
    r = _product_query("lanes", part_number, supplier, limit, key, data, node, trust, as_json)
    if r is None:
        return
    longest = max((x["mean_ms"] for x in r["lanes"]), default=1) or 1
    table = Table("lane", "from → to", "legs", "mean", "", "max")
    for x in r["lanes"]:
        table.add_row(f"{escape(x['sender'])} → {escape(x['receiver'])}", f"{x['origin'] or '-'} → {x['destination'] or '-'}",
                      str(x["legs"]), _duration(x["mean_ms"]), _bar(x["mean_ms"] * 1_000_000 // longest),
                      _duration(x["max_ms"]))
    console.print(table)


@sourcing_app.command("in-transit")
@cli_errors
def in_transit(part_number: Optional[str] = PartNumberOpt, supplier: Optional[str] = SupplierOpt,
               limit: int = LimitOpt, key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
               trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """What is on the way now, longest on the way first."""
    r = _product_query("in_transit", part_number, supplier, limit, key, data, node, trust, as_json)
    if r is None:
        return
    units = ", ".join(f"{q} {'g of lots' if k == 'lot' else k + ' unit(s)'}" for k, q in r["units"].items())
    console.print(f"{r['items']} item(s) in transit" + (f": {units}" if units else ""))
    table = Table("item", "sender → receiver", "from", "on the way")
    for x in r["in_transit"]:
        table.add_row(escape(x["item"]), f"{escape(x['sender'])} → {escape(x['receiver'])}", x["origin"] or "-",
                      _duration(x["for_ms"]))
    if r["in_transit"]:
        console.print(table)


# ---------------------------------------------------------------- passports

passport_app = group("Battery passports: issue, show (proven), export as a signed W3C Verifiable Credential, verify.")
sourcing_app.add_typer(passport_app, name="passport")


@passport_app.command("issue")
@cli_errors
def passport_issue(pack: str = typer.Argument(..., metavar="PACK", help="The pack's part id (PN:SERIAL)."),
                   category: str = typer.Option("ev", "--category", metavar="ev|lmt|industrial|sli", help="Battery category."),
                   chemistry: str = typer.Option(..., "--chemistry", metavar="TEXT", help="NMC811, LFP, ..."),
                   capacity_wh: int = typer.Option(..., "--capacity-wh", metavar="WH", min=1, help="Rated capacity."),
                   voltage_mv: int = typer.Option(..., "--voltage-mv", metavar="MV", min=1, help="Nominal voltage."),
                   mass: str = typer.Option(..., "--mass", metavar="MASS", help="The pack's mass: 480kg."),
                   carbon: int = typer.Option(..., "--carbon-g-per-kwh", metavar="G", min=0,
                                              help="Carbon footprint, g CO2e per kWh of capacity."),
                   carbon_report: str = typer.Option(..., "--carbon-report", metavar="REF", help="Its declaration."),
                   due_diligence: str = typer.Option(..., "--due-diligence", metavar="REF",
                                                     help="The due-diligence report's reference."),
                   key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                   trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The pack's maker issues (or reissues) its passport; origins and recycled content are computed."""
    _send(key, data, node, trust, "parts.issue_passport", {
        "pack": pack, "category": category, "chemistry": chemistry, "capacity_wh": capacity_wh,
        "nominal_voltage_mv": voltage_mv, "mass_g": grams(mass), "carbon_footprint_g_per_kwh": carbon,
        "carbon_footprint_report": carbon_report, "due_diligence_report": due_diligence}, wait, as_json)


@passport_app.command("show")
@cli_errors
def passport_show(pack: str = typer.Argument(..., metavar="PACK", help="The pack's part id."),
                  key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                  trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A pack's passport, proven against a quorum checkpoint."""
    from ..client.sourcing import Sourcing

    with client(node, data, trust, key=signing_key(data, key)) as c:
        try:
            p = Sourcing(c).passport(pack)
        except LookupError as exc:  # proven absent
            fail(str(exc), 1)
        say_trust(c)
    if as_json:
        print_json(p)
        return
    console.print(f"[green]verified[/] battery passport of {escape(p['id'])} v{p['version']} (block {p['height']}, "
                  f"proven at {p['proven_at']})")
    console.print(f"  maker {escape(p['manufacturer'])}, {p['category']}, {escape(p['chemistry'])}, "
                  f"{p['capacity_wh']} Wh, {p['nominal_voltage_mv']} mV, {p['mass_g']} g, "
                  f"carbon {p['carbon_footprint_g_per_kwh']} g CO2e/kWh ({escape(p['carbon_footprint_report'])})")
    for r in p["recycled"]:
        console.print(f"  recycled {escape(r['material'])}: {_pct(r['ppm'])}")
    for m in p["materials"]:
        console.print(f"  {escape(m['material'])} {_pct(m['ppm'])} {_bar(m['ppm'])} "
                      f"{'recycled' if m['recycled'] else escape(m['mine'])} ({m['country']}, lot {escape(m['lot'])})")


@passport_app.command("export")
@cli_errors
def passport_export(pack: str = typer.Argument(..., metavar="PACK", help="The pack's part id."),
                    out: Path = typer.Option(..., "--out", "-o", metavar="FILE", help="Where to write the credential."),
                    key: str = typer.Option(..., "--key", "-k", metavar="NAME|FILE",
                                            help="The key that issued the passport (its name in DATA/keys, or a key "
                                                 "file)."),
                    data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt) -> None:
    """Export the passport as a W3C Verifiable Credential signed with the key that issued it, carrying
    the ledger evidence (state proof and quorum checkpoint) so anyone verifies it offline."""
    from ..client.sourcing import Sourcing
    from ..core.encoding import canonical

    signer = signing_key(data, key)
    with client(node, data, trust, key=signer) as c:
        try:
            vc = Sourcing(c).export_passport(pack, signer)
        except LookupError as exc:  # proven absent
            fail(str(exc), 1)
        say_trust(c)
    out.write_bytes(canonical(vc) + b"\n")
    subject = vc["credentialSubject"]
    console.print(f"wrote {out}: BatteryPassportCredential of {escape(subject['passport']['id'])} "
                  f"v{subject['passport']['version']}, signed by {escape(vc['issuer'][:32])}…, with the ledger's proof "
                  f"at block {subject['ledgerEvidence']['state']['checkpoint']['header']['height']}")


@passport_app.command("verify")
@cli_errors
def passport_verify(credential: Path = typer.Argument(..., metavar="FILE", help="A passport credential (JSON)."),
                    trust: Path = typer.Option(..., "--trust", metavar="FILE",
                                               help="The consortium's genesis.json (the trust anchor)."),
                    as_json: bool = JsonOpt) -> None:
    """Verify a passport credential offline: no node, no network. Exits 0 and says what it proved, 3 and
    says what failed, 2 when a file cannot be read."""
    from ..credentials import CredentialInvalid, CredentialNotAccepted
    from ..verify import TrustAnchor, VerificationError
    from ..verify.passport import verify_passport_credential
    from datetime import datetime, timezone

    for path, what in ((credential, "credential"), (trust, "trust anchor")):
        if not path.is_file():
            fail(f"the {what} file {path} does not exist" if not path.exists() else f"the {what} {path} is not a file", 2)
    try:
        anchor = TrustAnchor.load(trust.read_bytes())
    except (VerificationError, RecursionError, ValueError) as exc:
        fail(f"{trust} is not a genesis.json trust anchor ({exc})", 2)
    try:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # an expired credential is refused
        p = verify_passport_credential(credential.read_bytes(), anchor, at=now)
    except (CredentialInvalid, CredentialNotAccepted) as exc:
        fail(f"{credential}: not a valid passport credential: {exc}", 3)
    except VerificationError as exc:
        fail(f"{credential}: not proven by the ledger: {exc}", 3)
    if as_json:
        print_json(p)
        return
    console.print(f"[green]verified[/]: the battery passport of {escape(p['id'])} v{p['version']}, signed by its maker "
                  f"{escape(p['manufacturer'])}'s key {escape(p['issuer'][:32])}…, proven by chain {escape(p['chain'])} "
                  f"at block {p['proven_at']} ({when(p['checkpoint_time'])})")
    for m in p["materials"]:
        console.print(f"  {escape(m['material'])} {_pct(m['ppm'])} {'recycled' if m['recycled'] else escape(m['mine'])} "
                      f"({m['country']})")
    for r in p["recycled"]:
        console.print(f"  recycled {escape(r['material'])}: {_pct(r['ppm'])}")
