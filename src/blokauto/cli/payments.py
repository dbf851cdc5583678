"""``blokauto payments``: money on the ledger, as people and vehicles use it.

Issuers register a currency, attest its reserves and issue; holders transfer, redeem and read
their balance; a vehicle's holder sets its spending limits and its device keys pay merchants;
merchants publish tariffs; payment channels are opened on the ledger and paid with vouchers signed
off it (``voucher make`` / ``voucher check``); journeys are split between operators; a sale locks
the price in escrow and settles it in the transaction that moves the title.

Submissions are signed with the sender's ``--key NAME`` (DATA/keys), reads with ``--as NAME``.
Amounts are integers in minor units (cents for EUR) followed by the currency code; text output
shows them formatted (``12.50 EUR``), ``--json`` output raw. Wherever an account owner is asked
for, give a ``did:key``, ``org:<id>``, or the name of a key in DATA/keys.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable, Optional

import msgspec
import typer
from rich.markup import escape
from rich.table import Table

from ..core.encoding import to_builtins
from ..keystore import KeyStore
from .common import (AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, group, print_json, say_trust,
                     signing_key, when)
from .errors import cli_errors
from .tx import WaitOpt, print_receipt

payments_app = group("Money on the ledger: accounts, vehicles' spending limits, tariffs, payment channels and "
                     "vouchers, journeys, and sales paid in the transaction that moves the title.")
currency_app = group("Register a currency, attest its reserves, list the currencies (issuers).")
limit_app = group("A vehicle's spending limits: what its device keys may spend from the holder's account.")
tariff_app = group("Merchants' published prices.")
channel_app = group("Payment channels: a deposit on the ledger, paid with vouchers off it.")
voucher_app = group("Vouchers, off the ledger: the payer makes them, the merchant checks them.")
journey_app = group("Journeys whose fare is split between operators.")
sale_app = group("Delivery versus payment: the price in escrow, paid out as the title moves.")
for _sub, _name in ((currency_app, "currency"), (limit_app, "limit"), (tariff_app, "tariff"),
                    (channel_app, "channel"), (voucher_app, "voucher"), (journey_app, "journey"), (sale_app, "sale")):
    payments_app.add_typer(_sub, name=_name)

KeyOpt = typer.Option(..., "--key", "-k", metavar="NAME", help="The sender's key (its name in DATA/keys).")
AmountArg = typer.Argument(..., metavar="AMOUNT", min=1, help="Minor units (cents for EUR), an integer.")
CurrencyArg = typer.Argument(..., metavar="CURRENCY", help="ISO 4217 code, e.g. EUR.")
VinArg = typer.Argument(..., metavar="VIN", help="The vehicle's VIN.")
CurrencyOpt = typer.Option("EUR", "--currency", "-c", metavar="CODE", help="ISO 4217 currency code.")
PayerOpt = typer.Option("", "--payer", metavar="OWNER",
                        help="Spend from this account instead of the sender's key: org:<id> of the sender's organisation.")
ChannelArg = typer.Argument(..., metavar="CHANNEL", min=1, help="The channel's id (`channel open` prints it).")
EscrowArg = typer.Argument(..., metavar="ESCROW", min=1, help="The escrow's id (`sale lock` prints it).")

# ISO 4217 minor units where they are not 2; the ledger's currency record (read by its issuer) has
# the exponent its issuer declared, which ``supply`` shows.
_EXPONENTS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                               "VUV", "XAF", "XOF", "XPF"), 0),
              **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3), "CLF": 4, "UYW": 4}

_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def money(amount: int | None, currency: str | None, exponent: int | None = None) -> str:
    """``1250, "EUR"`` -> ``12.50 EUR``; ``1200000`` -> ``12,000.00 EUR`` (minor units shown in the
    currency's major unit)."""
    if amount is None:
        return "-"
    code = currency or ""
    exp = _EXPONENTS.get(code, 2) if exponent is None else exponent
    sign, whole = ("-" if amount < 0 else ""), abs(amount)
    text = f"{whole:,}" if exp == 0 else f"{whole // 10 ** exp:,}.{whole % 10 ** exp:0{exp}d}"
    return f"{sign}{text} {code}".strip()


def owner_of(data: Path, given: str) -> str:
    """An account owner: a did:key or org:<id> as given, or the did of a key named in DATA/keys."""
    if given.startswith(("did:key:", "org:")):
        return given
    return KeyStore(data / "keys").entry(given).did


def _from_now(text: str, now: int, option: str) -> int:
    """``7d``, ``12h``, ``90m``, ``600s`` from ``now``; or a block time in ms (digits only)."""
    m = _DURATION.match(text.strip())
    if m:
        return now + int(m.group(1)) * _UNITS_MS[m.group(2)]
    if text.strip().isdigit():
        return int(text.strip())
    raise ValueError(f"{option} {text!r} is neither a duration (7d, 12h, 90m, 600s) nor a time in ms since the epoch")


def _minute(text: str) -> int:
    m = _CLOCK.match(text)
    if m:
        return int(m.group(1)) * 60 + int(m.group(2))
    if text.isdigit():
        return int(text)
    raise ValueError(f"{text!r} is not a time of day (HH:MM) or a minute of the day")


def parse_band(text: str) -> dict[str, int]:
    """``06:00-22:00=10`` (or minutes of the UTC day, ``360-1320=10``) -> a tariff band."""
    span, sep, price = text.partition("=")
    start, dash, end = span.partition("-")
    if not (sep and dash and price.strip().isdigit()):
        raise ValueError(f"--band {text!r} is not START-END=PRICE, e.g. 06:00-22:00=10 (UTC; 24:00 ends the day)")
    return {"start": _minute(start.strip()), "end": _minute(end.strip()), "price": int(price)}


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def read_voucher(given: str) -> dict[str, Any]:
    """A voucher: its JSON text, or the path of a file holding it (as `voucher make` prints it)."""
    text = given if given.lstrip().startswith("{") else Path(given).read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the voucher is not JSON: {exc}") from None
    from ..modules.payments.doors import Voucher

    return to_builtins(msgspec.convert(doc, Voucher))  # a usage error (exit 2) if it is not a voucher


def _send(key: str, data: Path, node: str, trust: Optional[Path], type_: str, fields: dict[str, Any], wait: float,
          as_json: bool, summary: Callable[[list[dict[str, Any]]], str] | None = None,
          cosign: tuple[str, ...] = ()) -> Any:
    """Sign ``type_`` with ``key`` (and ``cosign``), submit it, print the receipt (exit 1 if it failed)."""
    store = KeyStore(data / "keys")
    sender = store.load(key)
    with client(node, data, trust, key=sender) as c:
        info = c.send(c.message(type_, fields), sender, *[store.load(n) for n in cosign], wait=wait)
        say_trust(c)
        print_receipt(info, as_json)
    if summary is not None and not as_json:
        console.print(summary(info.events))
    return info


def _event(events: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    return next(e for e in events if e["type"] == type_)


def _read(as_key: Optional[str], data: Path, node: str, trust: Optional[Path], name: str, **params: Any) -> Any:
    """A payments query as ``--as``, on a state at least as new as the node's head when asked."""
    with client(node, data, trust, key=signing_key(data, as_key)) as c:
        head = c.status()["height"]
        result = c.query("payments", name, min_height=head, **params)
        say_trust(c)
    return result


# ---------------------------------------------------------------- currencies and accounts


@currency_app.command("register")
@cli_errors
def currency_register(currency: str = CurrencyArg,
                      exponent: int = typer.Option(2, metavar="DIGITS", min=0, max=4,
                                                   help="Digits of the minor unit (2 for EUR, 0 for JPY)."),
                      key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                      trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """An issuer (an organisation with the `issuer` role) starts issuing a currency; one issuer per code."""
    _send(key, data, node, trust, "payments.register_currency", {"currency": currency, "exponent": exponent}, wait,
          as_json)


@currency_app.command("attest")
@cli_errors
def currency_attest(currency: str = CurrencyArg,
                    reserves: int = typer.Argument(..., metavar="RESERVES", min=0,
                                                   help="The reserves backing the currency, in minor units."),
                    evidence: Path = typer.Option(..., "--evidence", metavar="FILE",
                                                  help="The attestation document (an auditor's report); only its "
                                                       "SHA-256 goes on the ledger."),
                    key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                    trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The issuer attests its reserves; it issues only while the supply stays within them."""
    digest = hashlib.sha256(evidence.read_bytes()).hexdigest()
    _send(key, data, node, trust, "payments.attest_reserves",
          {"currency": currency, "reserves": reserves, "evidence": digest}, wait, as_json,
          lambda ev: f"reserves of {money(reserves, currency)} attested (evidence sha256 {digest[:16]}…)")


@currency_app.command("list")
@cli_errors
def currency_list(as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                  trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The currencies the ledger carries and their issuers (any known key reads them)."""
    result = _read(as_key, data, node, trust, "currencies", limit=1000)
    if as_json:
        print_json(result)
        return
    for c in result["currencies"]:
        console.print(f"{c['currency']}  issued by {escape(c['issuer'])}")


@payments_app.command("issue")
@cli_errors
def issue(amount: int = AmountArg, currency: str = CurrencyArg,
          to: str = typer.Option(..., "--to", metavar="OWNER", help="The account credited: a key name, did:key or org:<id>."),
          key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The issuer credits an account with new units, within its attested reserves."""
    owner = owner_of(data, to)
    _send(key, data, node, trust, "payments.issue", {"currency": currency, "to": owner, "amount": amount}, wait,
          as_json, lambda ev: f"issued {money(amount, currency)} to {escape(owner)}")


@payments_app.command("redeem")
@cli_errors
def redeem(amount: int = AmountArg, currency: str = CurrencyArg, payer: str = PayerOpt, key: str = KeyOpt,
           wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
           as_json: bool = JsonOpt) -> None:
    """Hand units back to their issuer (it pays them out off the ledger); they leave the supply."""
    _send(key, data, node, trust, "payments.redeem", {"currency": currency, "amount": amount, "payer": payer}, wait,
          as_json, lambda ev: f"redeemed {money(amount, currency)}")


@payments_app.command("transfer")
@cli_errors
def transfer(amount: int = AmountArg, currency: str = CurrencyArg,
             to: str = typer.Option(..., "--to", metavar="OWNER", help="The account paid: a key name, did:key or org:<id>."),
             memo: str = typer.Option("", "--memo", metavar="TEXT", help="A reference for the payee (no personal data)."),
             payer: str = PayerOpt, key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
             node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Move units from your account (or --payer) to another."""
    owner = owner_of(data, to)
    _send(key, data, node, trust, "payments.transfer",
          {"currency": currency, "to": owner, "amount": amount, "payer": payer, "memo": memo}, wait, as_json,
          lambda ev: f"paid {money(amount, currency)} to {escape(owner)}")


@payments_app.command("balance")
@cli_errors
def balance(currency: str = CurrencyArg,
            of: Optional[str] = typer.Option(None, "--of", metavar="OWNER",
                                             help="Whose account: a key name, did:key or org:<id> (default: the --as key's)."),
            as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
            trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """An account's balance, read by its owner (the key, or a key of the organisation), regulators and police."""
    if of is None and as_key is None:
        raise ValueError("name the account with --of OWNER, or sign with --as NAME to read your own")
    owner = owner_of(data, of) if of is not None else owner_of(data, as_key or "")
    result = _read(as_key, data, node, trust, "balance", owner=owner, currency=currency)
    if as_json:
        print_json(result)
    else:
        console.print(f"{escape(owner)}: {money(result['balance'], currency)}")


@payments_app.command("supply")
@cli_errors
def supply(currency: str = CurrencyArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
           trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A currency's supply and attested reserves, read by its issuer, regulators and police."""
    r = _read(as_key, data, node, trust, "supply", currency=currency)
    if as_json:
        print_json(r)
    elif not r["found"]:
        console.print(f"{currency}: no issuer issues it on this chain")
    else:
        exp = r["exponent"]
        console.print(f"{currency} issued by {escape(r['issuer'])}: supply {money(r['supply'], currency, exp)}, "
                      f"reserves {money(r['reserves'], currency, exp)} attested {when(r['attested'] or None)} "
                      f"(evidence {r['evidence'][:16] or '-'}…)")


# ---------------------------------------------------------------- a vehicle's wallet


@limit_app.command("set")
@cli_errors
def limit_set(vin: str = VinArg, currency: str = CurrencyOpt,
              per_payment: int = typer.Option(..., "--per-payment", metavar="AMOUNT", min=1,
                                              help="Most one payment may be (minor units)."),
              per_day: int = typer.Option(..., "--per-day", metavar="AMOUNT", min=1,
                                          help="Most spent per UTC day (minor units)."),
              category: list[str] = typer.Option(..., "--category", metavar="CATEGORY",
                                                 help="A merchant category allowed: toll, parking, charging, fuel, "
                                                      "ride or insurance; repeat."),
              key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
              trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The title holder lets the vehicle's device keys spend from the holder's account, within limits
    (replaces the limit in force)."""
    _send(key, data, node, trust, "payments.set_limit",
          {"vin": vin, "currency": currency, "per_payment": per_payment, "per_day": per_day, "categories": category},
          wait, as_json, lambda ev: f"{vin} may spend {money(per_payment, currency)} per payment, "
                                    f"{money(per_day, currency)} per day on {', '.join(category)}")


@limit_app.command("revoke")
@cli_errors
def limit_revoke(vin: str = VinArg, currency: str = CurrencyOpt, key: str = KeyOpt, wait: float = WaitOpt,
                 data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                 as_json: bool = JsonOpt) -> None:
    """The title holder revokes the limit: the vehicle's devices spend nothing more, from the next block."""
    _send(key, data, node, trust, "payments.revoke_limit", {"vin": vin, "currency": currency}, wait, as_json)


@limit_app.command("show")
@cli_errors
def limit_show(vin: str = VinArg, currency: str = CurrencyOpt, as_key: Optional[str] = AsOpt, data: Path = DataOpt(),
               node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The vehicle's limit and what it spent today (UTC), read by its holder and its device keys."""
    r = _read(as_key, data, node, trust, "limit", vin=vin, currency=currency)
    if as_json:
        print_json(r)
        return
    lim = r["limit"]
    if lim is None:
        console.print(f"{vin}: no {currency} spending limit (its devices may spend nothing)")
        return
    console.print(f"{vin}: {r['status']} — {money(lim['per_payment'], currency)} per payment, "
                  f"{money(lim['per_day'], currency)} per day, spent today {money(r['spent_today'], currency)}; "
                  f"categories {', '.join(lim['categories'])}; set by {escape(lim['set_by'])} at height {lim['height']}")


@payments_app.command("pay")
@cli_errors
def pay(merchant: str = typer.Argument(..., metavar="MERCHANT", help="The merchant organisation's id."),
        amount: Optional[int] = typer.Argument(None, metavar="AMOUNT", min=1,
                                               help="Minor units; leave it out with --tariff: the tariff's price now."),
        vin: str = typer.Option(..., "--vin", metavar="VIN", help="The vehicle whose wallet pays."),
        category: str = typer.Option(..., "--category", metavar="CATEGORY",
                                     help="The merchant category: toll, parking, charging, fuel, ride or insurance."),
        currency: Optional[str] = typer.Option(None, "--currency", "-c", metavar="CODE",
                                               help="ISO 4217 code (default with --tariff: the tariff's)."),
        tariff: str = typer.Option("", "--tariff", metavar="ID", help="A tariff of the merchant: the ledger checks the amount."),
        quantity: int = typer.Option(0, "--quantity", metavar="N", min=0, help="Units used under --tariff (km, minutes, kWh...)."),
        memo: str = typer.Option("", "--memo", metavar="TEXT", help="A reference for the merchant (no personal data)."),
        key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="One of the vehicle's device keys (DATA/keys)."),
        wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
        as_json: bool = JsonOpt) -> None:
    """A vehicle's device key pays a merchant from the vehicle's wallet, within the holder's limit."""
    if tariff and (amount is None or currency is None):
        price = _read(key, data, node, trust, "price", merchant=merchant, tariff=tariff, quantity=quantity)
        if price["amount"] is None:
            raise ValueError(f"tariff {tariff!r} of {merchant!r} has no price now (unknown, or no band is open)")
        amount = price["amount"] if amount is None else amount
        currency = currency or price["currency"]
    if amount is None or currency is None:
        raise ValueError("give AMOUNT and --currency, or --tariff (and --quantity) for the tariff's price")
    fields = {"vin": vin, "merchant": merchant, "category": category, "currency": currency, "amount": amount,
              "tariff": tariff, "quantity": quantity, "memo": memo}
    _send(key, data, node, trust, "payments.vehicle_pay", fields, wait, as_json,
          lambda ev: f"{vin} paid {money(amount, currency)} to {escape(merchant)} ({category})")


# ---------------------------------------------------------------- tariffs


@tariff_app.command("publish")
@cli_errors
def tariff_publish(tariff: str = typer.Argument(..., metavar="ID", help="The tariff's id (republishing replaces it)."),
                   category: str = typer.Option(..., "--category", metavar="CATEGORY",
                                                help="The merchant category: toll, parking, charging, fuel, ride or insurance."),
                   currency: str = CurrencyOpt,
                   unit: str = typer.Option(..., "--unit", metavar="UNIT", help="The unit priced: km, minute, kwh, wh or entry."),
                   zone: str = typer.Option(..., "--zone", metavar="ZONE", help="The zone it applies to (your name for it)."),
                   band: list[str] = typer.Option(..., "--band", metavar="START-END=PRICE",
                                                  help="A time band of the UTC day and its price per --per units, "
                                                       "e.g. 06:00-22:00=10; repeat."),
                   per: int = typer.Option(1, "--per", metavar="N", min=1, help="Units the band's price is for."),
                   base: int = typer.Option(0, "--base", metavar="AMOUNT", min=0, help="A fixed price per use (minor units)."),
                   key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                   trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A merchant publishes (or replaces) a tariff: base + quantity x price / per, rounded down."""
    fields = {"tariff": tariff, "category": category, "currency": currency, "unit": unit, "zone": zone,
              "bands": [parse_band(b) for b in band], "per": per, "base": base}
    _send(key, data, node, trust, "payments.publish_tariff", fields, wait, as_json,
          lambda ev: f"tariff {tariff} version {_event(ev, 'payments.tariff_published')['version']} published")


@tariff_app.command("list")
@cli_errors
def tariff_list(merchant: str = typer.Argument(..., metavar="MERCHANT", help="The merchant organisation's id."),
                as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A merchant's tariffs (any signed request reads them: a vehicle's device key too)."""
    r = _read(as_key, data, node, trust, "tariffs", merchant=merchant, limit=1000)
    if as_json:
        print_json(r)
        return
    console.print(f"{escape(merchant)}: {r['total']} tariff(s)")
    if not r["tariffs"]:
        return
    table = Table("id", "category", "zone", "price", "bands (UTC)", "version")
    for t in r["tariffs"]:
        unit = f"{t['per']} {t['unit']}" if t["per"] != 1 else t["unit"]
        bands = ", ".join(f"{_clock(b['start'])}-{_clock(b['end'])} {money(b['price'], t['currency'])}"
                          for b in t["bands"])
        table.add_row(escape(t["id"]), t["category"], escape(t["zone"]),
                      f"{money(t['base'], t['currency'])} + per {unit}", bands, str(t["version"]))
    console.print(table)


@tariff_app.command("price")
@cli_errors
def tariff_price(merchant: str = typer.Argument(..., metavar="MERCHANT", help="The merchant organisation's id."),
                 tariff: str = typer.Argument(..., metavar="ID", help="The tariff's id."),
                 quantity: int = typer.Argument(..., metavar="QUANTITY", min=0, help="Units used (km, minutes, kWh...)."),
                 at: Optional[int] = typer.Option(None, "--at", metavar="MS",
                                                  help="A block time in ms (default: the newest block's)."),
                 as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                 trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """What a quantity costs under a tariff at a block time: the amount a vehicle signs naming it."""
    params: dict[str, Any] = {"merchant": merchant, "tariff": tariff, "quantity": quantity}
    if at is not None:
        params["at"] = at
    r = _read(as_key, data, node, trust, "price", **params)
    if as_json:
        print_json(r)
    elif r["currency"] is None:
        console.print(f"{escape(merchant)} has published no tariff {escape(tariff)!r}")
    elif r["amount"] is None:
        console.print(f"tariff {escape(tariff)} of {escape(merchant)} has no band open at {when(r['at'])}")
    else:
        console.print(f"{quantity} on {escape(tariff)} of {escape(merchant)} at {when(r['at'])}: "
                      f"{money(r['amount'], r['currency'])}")


# ---------------------------------------------------------------- payment channels and vouchers


@channel_app.command("open")
@cli_errors
def channel_open(merchant: str = typer.Argument(..., metavar="MERCHANT", help="The merchant organisation's id."),
                 deposit: int = typer.Argument(..., metavar="DEPOSIT", min=1, help="Minor units put in the channel."),
                 currency: str = CurrencyArg,
                 category: str = typer.Option(..., "--category", metavar="CATEGORY",
                                              help="The merchant category: toll, parking, charging, fuel, ride or insurance."),
                 vin: str = typer.Option("", "--vin", metavar="VIN",
                                         help="Fund it from this vehicle's wallet (the sender is its device key)."),
                 payer: str = PayerOpt, key: str = typer.Option(..., "--key", "-k", metavar="NAME",
                                                                help="The key that will sign the vouchers (DATA/keys)."),
                 wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                 as_json: bool = JsonOpt) -> None:
    """Open a payment channel to a merchant with a deposit; the sender's key signs its vouchers."""
    fields = {"merchant": merchant, "category": category, "currency": currency, "deposit": deposit, "vin": vin,
              "payer": payer}
    _send(key, data, node, trust, "payments.open_channel", fields, wait, as_json,
          lambda ev: f"channel {_event(ev, 'payments.channel_opened')['channel']} open to {escape(merchant)} with "
                     f"{money(deposit, currency)}; pay with `blokauto payments voucher make CHANNEL TOTAL --key {key}`")


@channel_app.command("claim")
@cli_errors
def channel_claim(channel: int = ChannelArg,
                  voucher: str = typer.Option(..., "--voucher", metavar="FILE|JSON",
                                              help="The payer's latest voucher (a file, or its JSON)."),
                  key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="A key of the merchant (DATA/keys)."),
                  wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                  as_json: bool = JsonOpt) -> None:
    """The merchant closes the channel with the payer's latest voucher: paid at once, the rest refunded."""
    _send(key, data, node, trust, "payments.claim_channel", {"channel": channel, "voucher": read_voucher(voucher)},
          wait, as_json, _closed_summary)


@channel_app.command("close")
@cli_errors
def channel_close(channel: int = ChannelArg,
                  voucher: Optional[str] = typer.Option(None, "--voucher", metavar="FILE|JSON",
                                                        help="The latest voucher you signed (a file, or its JSON)."),
                  key: str = typer.Option(..., "--key", "-k", metavar="NAME",
                                          help="The payer's key, or a key of the account that funded it."),
                  wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                  as_json: bool = JsonOpt) -> None:
    """The payer starts closing the channel; the merchant may present a higher voucher until the
    challenge period ends, then anyone settles it."""
    fields: dict[str, Any] = {"channel": channel}
    if voucher is not None:
        fields["voucher"] = read_voucher(voucher)

    def said(ev: list[dict[str, Any]]) -> str:
        e = _event(ev, "payments.channel_closing")
        return f"channel {channel} closing at {e['best']} (minor units); settle after {when(e['until'])}"

    _send(key, data, node, trust, "payments.close_channel", fields, wait, as_json, said)


@channel_app.command("settle")
@cli_errors
def channel_settle(channel: int = ChannelArg, key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
                   node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """After the challenge period, anyone settles a closing channel at the highest voucher presented."""
    _send(key, data, node, trust, "payments.settle_channel", {"channel": channel}, wait, as_json, _closed_summary)


def _closed_summary(events: list[dict[str, Any]]) -> str:
    e = _event(events, "payments.channel_closed")
    return f"channel {e['channel']} closed: {e['paid']} to {escape(e['merchant'])}, {e['refunded']} refunded (minor units)"


@channel_app.command("show")
@cli_errors
def channel_show(channel: int = ChannelArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(),
                 node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A channel: deposit, best voucher presented, status; read by its payer, funder and merchant."""
    r = _read(as_key, data, node, trust, "channel", channel=channel)
    if as_json:
        print_json(r)
        return
    if not r["found"]:
        console.print(f"no channel {channel}")
        return
    cur = r["currency"]
    line = (f"channel {channel} ({r['category']}) to {escape(r['merchant'])}: {r['status']}, deposit "
            f"{money(r['deposit'], cur)}, best voucher presented {money(r['best'], cur)}")
    if r["status"] == "closing":
        line += f", challenge period until {when(r['challenge_until'])}"
    if r["status"] == "closed":
        line += f", paid {money(r['paid'], cur)}"
    console.print(line)
    console.print(f"  payer {escape(r['payer'])}, funded by {escape(r['funder'])}" + (f", vehicle {r['vin']}" if r["vin"] else ""))


@voucher_app.command("make")
@cli_errors
def voucher_make(channel: int = ChannelArg,
                 total: int = typer.Argument(..., metavar="TOTAL", min=0,
                                             help="What the channel owes in all, so far (cumulative, minor units)."),
                 key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="The payer's key (DATA/keys)."),
                 out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE", help="Write it here too."),
                 data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt) -> None:
    """Sign a voucher, off the ledger: "channel CHANNEL owes TOTAL in all". Each new one replaces the
    last; give it to the merchant. The chain id comes from the trust anchor (DATA/genesis.json)."""
    from ..modules.payments.doors import make_voucher

    payer = KeyStore(data / "keys").load(key)
    with client(node, data, trust) as c:
        chain = c.chain
    voucher = to_builtins(make_voucher(payer, chain, channel, total))
    if out is not None:
        out.write_text(json.dumps(voucher, sort_keys=True) + "\n")
    print_json(voucher)


@voucher_app.command("check")
@cli_errors
def voucher_check(voucher: str = typer.Argument(..., metavar="FILE|JSON", help="The voucher (a file, or its JSON)."),
                  as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                  trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Check a voucher against its channel on the ledger, as the merchant does before serving more:
    this chain, the payer's signature, within the deposit, not below the best presented. Exit 1 if
    it is worthless."""
    from ..client.payments import MerchantChannel
    from ..modules.payments.doors import Voucher

    v = msgspec.convert(read_voucher(voucher), Voucher)
    with client(node, data, trust, key=signing_key(data, as_key)) as c:
        ch = c.query("payments", "channel", channel=v.channel, min_height=c.status()["height"])
        say_trust(c)
        worth = MerchantChannel.from_answer(c.chain, ch).check(v)
    result = {"valid": True, "channel": v.channel, "amount": worth, "deposit": ch["deposit"], "best": ch["best"],
              "new": worth - ch["best"], "currency": ch["currency"]}
    if as_json:
        print_json(result)
    else:
        cur = ch["currency"]
        console.print(f"[green]valid[/]: channel {v.channel} owes {money(worth, cur)} in all (deposit "
                      f"{money(ch['deposit'], cur)}; {money(worth - ch['best'], cur)} more than presented on the ledger)")


# ---------------------------------------------------------------- journeys


@journey_app.command("agree")
@cli_errors
def journey_agree(name: str = typer.Argument(..., metavar="NAME", help="The fare's name, e.g. 'scooter + train'."),
                  share: list[str] = typer.Option(..., "--share", metavar="ORG:CATEGORY:BPS",
                                                  help="An operator's share in basis points (adding up to 10000), "
                                                       "e.g. rail:ride:6000; repeat."),
                  currency: str = CurrencyOpt,
                  cosign: list[str] = typer.Option(None, "--cosign", metavar="NAME",
                                                   help="A key of every other operator (DATA/keys); repeat."),
                  key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="A key of the lead operator."),
                  wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                  trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Operators agree how a journey's fare is split; the lead sends it, every other operator co-signs."""
    shares = []
    for s in share:
        parts = s.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"--share {s!r} is not ORG:CATEGORY:BPS, e.g. rail:ride:6000")
        shares.append({"org": parts[0], "category": parts[1], "bps": int(parts[2])})
    _send(key, data, node, trust, "payments.agree_fare", {"name": name, "currency": currency, "shares": shares}, wait,
          as_json, lambda ev: f"fare {_event(ev, 'payments.fare_agreed')['fare']} agreed", cosign=tuple(cosign or ()))


@journey_app.command("pay")
@cli_errors
def journey_pay(fare: int = typer.Argument(..., metavar="FARE", min=1, help="The fare's id (`journey agree` prints it)."),
                amount: int = AmountArg,
                vin: str = typer.Option("", "--vin", metavar="VIN",
                                        help="Pay from this vehicle's wallet (the sender is its device key)."),
                payer: str = PayerOpt, memo: str = typer.Option("", "--memo", metavar="TEXT", help="A reference (no personal data)."),
                key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Pay a journey: the amount is split between the fare's operators in one transaction, all or nothing."""
    def said(ev: list[dict[str, Any]]) -> str:
        e = _event(ev, "payments.journey_paid")
        return (f"paid {money(e['amount'], e['currency'])}: "
                + ", ".join(f"{escape(org)} {money(part, e['currency'])}" for org, part in e["parts"].items()))

    _send(key, data, node, trust, "payments.pay_journey",
          {"fare": fare, "amount": amount, "vin": vin, "payer": payer, "memo": memo}, wait, as_json, said)


@journey_app.command("show")
@cli_errors
def journey_show(fare: int = typer.Argument(..., metavar="FARE", min=1, help="The fare's id."),
                 as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                 trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A fare: its operators and their shares (any signed request reads it)."""
    r = _read(as_key, data, node, trust, "fare", fare=fare)
    if as_json:
        print_json(r)
    elif not r["found"]:
        console.print(f"no fare {fare}")
    else:
        console.print(f"fare {fare} {escape(r['name'])!r} in {r['currency']}, led by {escape(r['lead'])}: "
                      + ", ".join(f"{escape(s['org'])} ({s['category']}) {s['bps'] / 100:g} %" for s in r["shares"]))


# ---------------------------------------------------------------- sales


@sale_app.command("lock")
@cli_errors
def sale_lock(vin: str = VinArg, price: int = typer.Argument(..., metavar="PRICE", min=1, help="Minor units."),
              currency: str = CurrencyArg,
              seller: str = typer.Option(..., "--seller", metavar="OWNER",
                                         help="The title holder: a key name, did:key or org:<id>."),
              deadline: str = typer.Option("7d", "--deadline", metavar="WHEN",
                                           help="Settle before: a duration from now (7d, 12h) or a block time in ms; at "
                                                "most the chain's max_escrow_ms ahead."),
              payer: str = PayerOpt, key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="The buyer's key."),
              wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
              as_json: bool = JsonOpt) -> None:
    """The buyer locks the price in escrow; the seller is paid (each lender first) in the transaction
    that moves the title, or the buyer takes it back after the deadline."""
    from ..client import now_ms

    fields = {"vin": vin, "seller": owner_of(data, seller), "currency": currency, "price": price,
              "deadline": _from_now(deadline, now_ms(), "--deadline"), "payer": payer}
    _send(key, data, node, trust, "payments.lock_sale", fields, wait, as_json,
          lambda ev: f"escrow {_event(ev, 'payments.sale_locked')['escrow']}: {money(price, currency)} locked for {vin} "
                     f"until {when(fields['deadline'])}")


@sale_app.command("settle")
@cli_errors
def sale_settle(escrow: int = EscrowArg, key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="The seller's key."),
                wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                as_json: bool = JsonOpt) -> None:
    """The seller delivers: each lien paid off and released, the title to the buyer, the rest of the
    price to the seller, in one transaction."""
    def said(ev: list[dict[str, Any]]) -> str:
        e = _event(ev, "payments.sale_settled")
        paid = f"; liens paid off to {', '.join(e['lenders'])}" if e["lenders"] else ""
        return f"{e['vin']} now belongs to {escape(e['buyer'])}, paid{paid}"

    _send(key, data, node, trust, "payments.settle_sale", {"escrow": escrow}, wait, as_json, said)


@sale_app.command("reclaim")
@cli_errors
def sale_reclaim(escrow: int = EscrowArg, key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="The buyer's key."),
                 wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                 as_json: bool = JsonOpt) -> None:
    """The buyer takes the price back: after the deadline, or once the seller no longer holds the title."""
    _send(key, data, node, trust, "payments.reclaim_sale", {"escrow": escrow}, wait, as_json)


@sale_app.command("show")
@cli_errors
def sale_show(escrow: int = EscrowArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
              trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """An escrow: vehicle, buyer, seller, price, deadline, status; read by the buyer and the seller."""
    r = _read(as_key, data, node, trust, "escrow", escrow=escrow)
    if as_json:
        print_json(r)
    elif not r["found"]:
        console.print(f"no escrow {escrow}")
    else:
        console.print(f"escrow {escrow} for {r['vin']}: {r['status']}, {money(r['price'], r['currency'])}, deadline "
                      f"{when(r['deadline'])}\n  buyer {escape(r['buyer'])}\n  seller {escape(r['seller'])}")
