"""``blokauto insurance``: usage-based insurance, as insurers, holders and workshops use it.

An insurer publishes products (a declared integer pricing formula), binds policies with the title
holder (both sign), issues premium statements once a period has ended (priced on the ledger from
the vehicle's trip totals, or at the product's cap without the holder's consent to driving data)
and decides claims; the holder pays statements, files claims and checks every cent of a statement
(``statements check``); a workshop assesses a claim. A vehicle's own crash report opens a claim by
itself (``blokauto telemetry crash``).

Submissions are signed with the sender's ``--key NAME`` (DATA/keys), reads with ``--as NAME``.
Amounts are integers in minor units (cents for EUR); text output shows them formatted
(``12.50 EUR``), ``--json`` output raw. The rules: docs/insurance.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..keystore import KeyStore
from .common import (AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, group, print_json, say_trust,
                     signing_key, when)
from .errors import cli_errors, fail
from .payments import _from_now, money
from .progress import progress_bar
from .tx import WaitOpt, print_receipt

insurance_app = group("Usage-based insurance: products, policies both sides sign, premium statements priced on the "
                      "ledger from trip totals, and claims.")
product_app = group("Insurers' products: a currency, a period and the integer parameters of the pricing formula.")
policy_app = group("Policies: the insurer binds, the title holder co-signs; renew, cancel, show.")
statements_app = group("Premium statements: issued once a period has ended, checked and paid by the holder.")
claim_app = group("Claims: filed by the holder or opened by the vehicle's crash report; assessed, decided, paid.")
for _sub, _name in ((product_app, "product"), (policy_app, "policy"), (statements_app, "statements"),
                    (claim_app, "claim")):
    insurance_app.add_typer(_sub, name=_name)

KeyOpt = typer.Option(..., "--key", "-k", metavar="NAME", help="The sender's key (its name in DATA/keys).")
InsurerKeyOpt = typer.Option(..., "--key", "-k", metavar="NAME", help="A key of the insurer (DATA/keys).")
HolderKeyOpt = typer.Option(..., "--key", "-k", metavar="NAME",
                            help="The policy holder's key (for a title held by org:ID, a key of that organisation).")
CosignOpt = typer.Option(..., "--cosign", metavar="NAME",
                         help="The title holder's key (DATA/keys): the holder co-signs the policy.")
PolicyArg = typer.Argument(..., metavar="POLICY", min=1, help="The policy's id (`policy bind` prints it).")
PeriodArg = typer.Argument(..., metavar="PERIOD", min=0, help="The period's number (0 is the first).")
ClaimArg = typer.Argument(..., metavar="CLAIM", min=1, help="The claim's id.")
MoneyOpt = lambda name, help, default=0: typer.Option(default, name, metavar="AMOUNT", min=0, help=help)  # noqa: E731

DENY_REASONS = ("not_covered", "policy_exclusion", "fraud_suspected", "under_deductible", "duplicate", "late_notice",
                "no_damage", "other")


def _send(key: str, data: Path, node: str, trust: Optional[Path], type_: str, fields: dict[str, Any], wait: float,
          as_json: bool, summary: Callable[[list[dict[str, Any]]], str] | None = None,
          cosign: tuple[str, ...] = ()) -> Any:
    """Sign ``type_`` with ``key`` (and ``cosign``), submit it and print its receipt (exit 1 if it
    failed at execution) and ``summary``; with ``--wait 0`` print the transaction id and return."""
    store = KeyStore(data / "keys")
    sender = store.load(key)
    with client(node, data, trust, key=sender) as c:
        tx = c.sign(c.build(c.message(type_, fields), sender), sender, *[store.load(n) for n in cosign])
        txid = c.submit(tx)
        if wait <= 0:
            console.print(txid)
            return None
        info = c.receipt(txid, wait=wait, key=sender)
        say_trust(c)
        print_receipt(info, as_json)
    if summary is not None and not as_json:
        console.print(summary(info.events))
    return info


def _event(events: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    return next(e for e in events if e["type"] == type_)


def _read(as_key: Optional[str], data: Path, node: str, trust: Optional[Path], name: str, **params: Any) -> Any:
    """An insurance query as ``--as``, on a state at least as new as the node's head when asked."""
    with client(node, data, trust, key=signing_key(data, as_key)) as c:
        result = c.query("insurance", name, min_height=c.status()["height"], **params)
        say_trust(c)
    return result


def _incident(text: str) -> int:
    """``now``, a time in ms since the epoch, or how long ago (``2h``, ``30m``, ``3d``)."""
    now = time.time_ns() // 1_000_000
    if text.strip() == "now":
        return now
    if text.strip().isdigit():
        return int(text.strip())
    return 2 * now - _from_now(text, now, "--incident")


def duration(ms: int) -> str:
    """``2_592_000_000`` -> ``30 d``; ``93_000`` -> ``1 min 33 s``."""
    if ms % 86_400_000 == 0:
        return f"{ms // 86_400_000} d"
    parts, rest = [], ms // 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size} {unit}")
            rest %= size
    return " ".join(parts)


def pricing_text(p: dict[str, Any], cur: str) -> str:
    """A pricing's parameters as a sentence (amounts per period, per km...)."""
    parts = [f"base {money(p['base'], cur)}"]
    if p["per_km"]:
        parts.append(f"{money(p['per_km'], cur)}/km")
    if p["night_factor_bps"]:
        parts.append(f"night km +{p['night_factor_bps'] / 100:g} %")
    if p["per_harsh_brake"]:
        parts.append(f"{money(p['per_harsh_brake'], cur)} per harsh brake")
    if p["per_over_limit_minute"]:
        parts.append(f"{money(p['per_over_limit_minute'], cur)} per minute over the limit")
    cap = f"at most {money(p['max_premium'], cur)}"
    return ", ".join(parts) + f"; at least {money(p['min_premium'], cur)} a period, {cap}"


# ---------------------------------------------------------------- products


@product_app.command("publish")
@cli_errors
def product_publish(product: str = typer.Argument(..., metavar="ID", help="The product's id (republishing makes a new "
                                                                          "version; bound policies keep theirs)."),
                    currency: str = typer.Option("EUR", "--currency", "-c", metavar="CODE", help="ISO 4217 code."),
                    period_days: int = typer.Option(30, "--period-days", metavar="DAYS", min=1, max=366,
                                                    help="How long one premium period is."),
                    base: int = MoneyOpt("--base", "The fixed part of each period's premium (minor units).", ...),
                    per_km: int = MoneyOpt("--per-km", "Per km driven in the period."),
                    night_factor_bps: int = typer.Option(0, "--night-factor-bps", metavar="BPS", min=0, max=100_000,
                                                         help="Extra on km driven 22:00-06:00 local time, in basis "
                                                              "points of --per-km (5000: half as much again)."),
                    per_harsh_brake: int = MoneyOpt("--per-harsh-brake", "Per harsh brake (0.4 g or more)."),
                    per_over_limit_minute: int = MoneyOpt("--per-over-limit-minute",
                                                          "Per whole minute above the posted speed limit."),
                    min_premium: int = MoneyOpt("--min", "The least a whole period costs."),
                    max_premium: int = MoneyOpt("--max", "The most a whole period costs: the cap, and the price "
                                                         "without the holder's consent to driving data (required: "
                                                         "a product always says it).", ...),
                    max_coverage: int = MoneyOpt("--max-coverage", "The most a policy of it may cover per claim.", ...),
                    key: str = InsurerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                    trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """An insurer publishes a product: its premium per period is base + usage (km, night km, harsh
    brakes, minutes over the limit), kept between --min and --max (docs/insurance.md#the-premium)."""
    pricing = {"base": base, "per_km": per_km, "night_factor_bps": night_factor_bps, "per_harsh_brake": per_harsh_brake,
               "per_over_limit_minute": per_over_limit_minute, "min_premium": min_premium, "max_premium": max_premium}
    _send(key, data, node, trust, "insurance.publish_product",
          {"product": product, "currency": currency, "period_days": period_days, "pricing": pricing,
           "max_coverage": max_coverage}, wait, as_json,
          lambda ev: f"product {product} version {_event(ev, 'insurance.product_published')['version']} published: "
                     f"{pricing_text(pricing, currency)}")


@product_app.command("show")
@cli_errors
def product_show(insurer: str = typer.Argument(..., metavar="INSURER", help="The insurer organisation's id."),
                 product: str = typer.Argument(..., metavar="ID", help="The product's id."),
                 as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                 trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A product: currency, period, pricing, version (any known key reads offers)."""
    p = _read(as_key, data, node, trust, "product", insurer=insurer, product=product)
    if as_json:
        print_json(p)
        return
    cur = p["currency"]
    console.print(f"{escape(p['product'])} version {p['version']} by {escape(p['insurer'])}: {cur}, "
                  f"{p['period_days']}-day periods; {pricing_text(p['pricing'], cur)}; covers up to "
                  f"{money(p['max_coverage'], cur)} a claim")


@product_app.command("list")
@cli_errors
def product_list(as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                 trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Every published product (any known key reads them)."""
    r = _read(as_key, data, node, trust, "products", limit=1000)
    if as_json:
        print_json(r)
        return
    for p in r["products"]:
        console.print(f"{escape(p['insurer'])} {escape(p['product'])} ({p['currency']})")


# ---------------------------------------------------------------- policies


@policy_app.command("bind")
@cli_errors
def policy_bind(vin: str = typer.Argument(..., metavar="VIN", help="The vehicle's VIN."),
                product: str = typer.Option(..., "--product", metavar="ID", help="One of the insurer's products."),
                start: str = typer.Option("1m", "--start", metavar="WHEN",
                                          help="When cover starts: a duration from now (1m, 2h, 7d) or a time in ms; "
                                               "not before the block that binds it (no cover is backdated)."),
                periods: int = typer.Option(..., "--periods", metavar="N", min=1, max=60,
                                            help="How many of the product's periods it runs."),
                deductible: int = MoneyOpt("--deductible", "What the holder bears of each claim."),
                coverage: int = MoneyOpt("--coverage", "The most paid for one claim (at most the product's).", ...),
                cosign: str = CosignOpt, key: str = InsurerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
                node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The insurer binds a policy on a vehicle with its title holder; both sign, in one transaction."""
    fields = {"product": product, "vin": vin, "start": _from_now(start, time.time_ns() // 1_000_000, "--start"),
              "periods": periods, "deductible": deductible, "coverage": coverage}
    _send(key, data, node, trust, "insurance.bind_policy", fields, wait, as_json,
          lambda ev: f"policy {_event(ev, 'insurance.policy_changed')['policy']} bound on {vin}, in force from "
                     f"{when(fields['start'])}", cosign=(cosign,))


@policy_app.command("renew")
@cli_errors
def policy_renew(policy: int = PolicyArg,
                 periods: int = typer.Option(..., "--periods", metavar="N", min=1, max=60, help="Periods to add."),
                 cosign: str = CosignOpt, key: str = InsurerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
                 node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The insurer adds whole periods before the policy ends, at the pricing it was bound with; the holder co-signs."""
    _send(key, data, node, trust, "insurance.renew_policy", {"policy": policy, "periods": periods}, wait, as_json,
          lambda ev: f"policy {policy} renewed by {periods} period(s)", cosign=(cosign,))


@policy_app.command("cancel")
@cli_errors
def policy_cancel(policy: int = PolicyArg,
                  key: str = typer.Option(..., "--key", "-k", metavar="NAME",
                                          help="The holder's key, or a key of the insurer."),
                  wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                  as_json: bool = JsonOpt) -> None:
    """The holder or the insurer ends the policy now; its last period is billed pro rata."""
    _send(key, data, node, trust, "insurance.cancel_policy", {"policy": policy}, wait, as_json,
          lambda ev: f"policy {policy} cancelled; its last period can be billed now, pro rata")


@policy_app.command("show")
@cli_errors
def policy_show(policy: int = PolicyArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A policy as bound, renewed or cancelled; read by its insurer and its holder."""
    p = _read(as_key, data, node, trust, "policy", policy=policy)
    if as_json:
        print_json(p)
        return
    cur = p["currency"]
    periods = (p["end"] - p["start"]) // p["period_ms"]
    state = (f"cancelled at {when(p['cancelled'])}" if p["cancelled"] else
             f"ended by the vehicle's sale at {when(p['sold'])}" if p.get("sold") else f"until {when(p['end'])}")
    console.print(f"policy {p['id']} on {p['vin']} by {escape(p['insurer'])} ({escape(p['product'])} version "
                  f"{p['version']}): from {when(p['start'])} {state}, {periods} period(s) of "
                  f"{duration(p['period_ms'])}, {p['billed']} billed")
    console.print(f"  holder {escape(p['holder'])}; deductible {money(p['deductible'], cur)}, coverage "
                  f"{money(p['coverage'], cur)} a claim")
    console.print(f"  pricing: {pricing_text(p['pricing'], cur)}")


# ---------------------------------------------------------------- premium statements


@statements_app.command("issue")
@cli_errors
def statements_issue(policies: Optional[list[int]] = typer.Argument(None, metavar="[POLICY]...",
                                                                    help="Policies to bill (default: every policy "
                                                                         "of the insurer whose period has ended)."),
                     insurer: Optional[str] = typer.Option(None, "--insurer", metavar="ORG",
                                                           help="Without POLICY: the insurer whose due statements "
                                                                "are issued (default: the --key's organisation)."),
                     key: str = InsurerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                     trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Issue the next statement of each policy whose period has ended at block time: priced on the
    ledger from the vehicle's trip totals (or at the cap without the holder's consent)."""
    if policies:
        _send(key, data, node, trust, "insurance.issue_statements", {"policies": policies}, wait, as_json,
              _issued_summary)
        return
    from ..client.insurance import Insurance

    store = KeyStore(data / "keys")
    sender, org = store.load(key), insurer or store.entry(key).org
    if not org:
        raise ValueError(f"key {key!r} belongs to no organisation: name the insurer with --insurer ORG")
    with client(node, data, trust, key=sender) as c, progress_bar("reading the insurer's policies") as advance:
        sent, issued = Insurance(c).issue_due(sender, org, wait=wait or 30.0, progress=advance)
        say_trust(c)
    if as_json:
        print_json({"issued": [{"policy": d.policy, "period": d.period} for d in issued],
                    "txs": [{"id": i.id, "height": i.height, "ok": i.ok} for i in sent]})
        return
    for info in sent:
        if not info.ok:
            err = info.error
            console.print(f"[yellow]failed[/] {info.id} at height {info.height}: {escape(f'[{err.code}] {err.message}')}"
                          f" (sent again without that policy)")
    if not issued:
        console.print(f"no statement of {escape(org)} is due")
    for d in issued:
        console.print(f"issued: policy {d.policy} period {d.period} ({when(d.start)} to {when(d.end)})")


def _issued_summary(events: list[dict[str, Any]]) -> str:
    return "\n".join(f"statement of policy {e['policy']} period {e['period']}: premium {e['premium']} (minor units)"
                     for e in events if e["type"] == "insurance.statement_issued")


def _usage(s: dict[str, Any]) -> str:
    if not s["consented"]:
        return "no consent to driving data: priced at the cap"
    return (f"{s['distance_m'] // 1000} km ({s['night_distance_m'] // 1000} at night), {s['harsh_brakes']} harsh "
            f"brake(s), {s['over_limit_s'] // 60} min over the limit, {s['batches']} batch(es)")


@statements_app.command("list")
@cli_errors
def statements_list(policy: int = PolicyArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(),
                    node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A policy's statements, oldest first; read by its insurer and its holder."""
    from ..client.insurance import Insurance

    with client(node, data, trust, key=signing_key(data, as_key)) as c:
        head = c.status()["height"]
        ins = Insurance(c)
        p = ins.policy(policy, min_height=head)
        rows = ins.statements(policy, min_height=head)
        say_trust(c)
    if as_json:
        print_json({"policy": policy, "billed": p["billed"], "statements": rows})
        return
    console.print(f"policy {policy}: {p['billed']} statement(s)")
    if not rows:
        return
    table = Table("period", "from", "to", "usage", "premium", "status")
    for s in rows:
        table.add_row(str(s["period"]), when(s["start"]), when(s["end"]), _usage(s), money(s["premium"], p["currency"]),
                      s["status"])
    console.print(table)


@statements_app.command("check")
@cli_errors
def statements_check(policy: int = PolicyArg, period: int = PeriodArg,
                     pricing: Optional[str] = typer.Option(None, "--pricing", metavar="FILE|JSON",
                                                           help="The pricing you agreed to (a file, or its JSON) "
                                                                "instead of the policy's as the ledger holds it."),
                     as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                     trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Check a statement cent by cent against the vehicle's trip totals for its period and the
    pricing formula; exit 1 if the premium is not what they give. Read by the holder (or the
    insurer with the holder's consent to driving data)."""
    import msgspec

    from ..client.insurance import Insurance, PremiumMismatch, Pricing

    terms = None
    if pricing is not None:
        text = pricing if pricing.lstrip().startswith("{") else Path(pricing).read_text()
        try:
            terms = msgspec.convert(json.loads(text), Pricing)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--pricing is not JSON: {exc}") from None
    with client(node, data, trust, key=signing_key(data, as_key)) as c:
        try:
            checked = Insurance(c).check_statement(policy, period, pricing=terms, min_height=c.status()["height"])
        except PremiumMismatch as exc:
            fail(f"statement check failed: {exc}", 1)
        say_trust(c)
    s, cur = checked.statement, checked.policy["currency"]
    if as_json:
        print_json({"valid": True, "policy": policy, "period": period, "premium": s["premium"],
                    "expected": checked.expected, "totals": checked.totals, "elapsed_ms": s["end"] - s["start"],
                    "period_ms": checked.policy["period_ms"]})
        return
    part = "" if s["end"] - s["start"] == checked.policy["period_ms"] else (
        f", pro rata {duration(s['end'] - s['start'])} of {duration(checked.policy['period_ms'])}")
    console.print(f"[green]valid[/]: statement {period} of policy {policy}, {money(s['premium'], cur)}, is what the "
                  f"pricing gives for {_usage(s)}{part}"
                  + (" (the usage is the vehicle's trip totals for the period)" if s["consented"] else ""))


@statements_app.command("pay")
@cli_errors
def statements_pay(policy: int = PolicyArg, period: int = PeriodArg, key: str = HolderKeyOpt, wait: float = WaitOpt,
                   data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                   as_json: bool = JsonOpt) -> None:
    """The holder pays a due statement from its account to the insurer's."""
    def said(ev: list[dict[str, Any]]) -> str:
        e = _event(ev, "insurance.premium_paid")
        return f"paid the statement of policy {policy} period {period}: {e['premium']} (minor units) to {e['insurer']}"

    _send(key, data, node, trust, "insurance.pay_premium", {"policy": policy, "period": period}, wait, as_json, said)


# ---------------------------------------------------------------- claims


def _claim_summary(events: list[dict[str, Any]]) -> str:
    e = _event(events, "insurance.claim_changed")
    return f"claim {e['claim']} on policy {e['policy']}: {e['status']}"


@claim_app.command("file")
@cli_errors
def claim_file(policy: int = PolicyArg,
               crash: int = typer.Option(0, "--crash", metavar="SEQ", min=0,
                                         help="A crash the vehicle reported (`blokauto telemetry crashes VIN`): its "
                                              "time and odometer count."),
               incident: str = typer.Option("now", "--incident", metavar="WHEN",
                                            help="Without --crash: when it happened: now, how long ago (2h, 3d) or "
                                                 "a time in ms."),
               odometer_km: int = typer.Option(0, "--odometer-km", metavar="KM", min=0,
                                               help="Without --crash: the odometer at the incident."),
               reference: str = typer.Option("", "--reference", metavar="TEXT",
                                             help="Your reference (no personal data)."),
               key: str = HolderKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
               trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The holder files a claim: on a crash the vehicle reported, or without one (flagged
    no_crash_event for the insurer's review)."""
    fields = {"policy": policy, "incident": _incident(incident), "odometer_km": odometer_km, "crash": crash,
              "reference": reference}
    _send(key, data, node, trust, "insurance.file_claim", fields, wait, as_json, _claim_summary)


@claim_app.command("workshop")
@cli_errors
def claim_workshop(claim: int = ClaimArg,
                   workshop: str = typer.Argument(..., metavar="WORKSHOP",
                                                  help="The workshop organisation that assesses the claim."),
                   key: str = typer.Option(..., "--key", "-k", metavar="NAME",
                                           help="The claim's holder, or a key of its insurer."),
                   wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                   as_json: bool = JsonOpt) -> None:
    """Choose the workshop that assesses a claim (the holder or the insurer; again until the decision:
    the former workshop's estimate is dropped). Only that workshop's estimate counts."""
    _send(key, data, node, trust, "insurance.choose_workshop", {"claim": claim, "workshop": workshop}, wait, as_json,
          _claim_summary)


@claim_app.command("assess")
@cli_errors
def claim_assess(claim: int = ClaimArg,
                 estimate: int = typer.Argument(..., metavar="ESTIMATE", min=0,
                                                help="The repair estimate (minor units of the policy's currency)."),
                 reference: str = typer.Option("", "--reference", metavar="TEXT",
                                               help="The estimate's reference (no personal data)."),
                 key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="A key of the workshop."),
                 wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                 as_json: bool = JsonOpt) -> None:
    """The chosen workshop's repair estimate for a claim (a later one replaces it until the insurer decides)."""
    _send(key, data, node, trust, "insurance.assess_claim", {"claim": claim, "estimate": estimate,
                                                              "reference": reference}, wait, as_json, _claim_summary)


@claim_app.command("decide")
@cli_errors
def claim_decide(claim: int = ClaimArg,
                 approve: Optional[int] = typer.Option(None, "--approve", metavar="AMOUNT", min=0,
                                                       help="Approve this amount (within the coverage); the payout "
                                                            "is it less the deductible."),
                 deny: Optional[str] = typer.Option(None, "--deny", metavar="REASON",
                                                    help=f"Deny, with a reason: {', '.join(DENY_REASONS)}."),
                 key: str = InsurerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                 trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The policy's insurer approves an amount (after a workshop's estimate) or denies the claim."""
    if (approve is None) == (deny is None):
        raise ValueError("give either --approve AMOUNT or --deny REASON")
    fields = ({"claim": claim, "approve": True, "reason": "covered", "amount": approve} if approve is not None
              else {"claim": claim, "approve": False, "reason": deny})

    def said(ev: list[dict[str, Any]]) -> str:
        return _claim_summary(ev)

    _send(key, data, node, trust, "insurance.decide_claim", fields, wait, as_json, said)


@claim_app.command("pay")
@cli_errors
def claim_pay(claim: int = ClaimArg, key: str = InsurerKeyOpt, wait: float = WaitOpt, data: Path = DataOpt(),
              node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The insurer pays an approved claim's payout to the holder's account."""
    _send(key, data, node, trust, "insurance.pay_claim", {"claim": claim}, wait, as_json, _claim_summary)


def _claim_text(c: dict[str, Any], cur: str | None) -> str:
    opened = (f"opened by the vehicle's crash {c['crash']}" if c["source"] == "crash"
              else "filed by the holder" + (f" on crash {c['crash']}" if c["crash"] else ""))
    out = (f"claim {c['id']} on policy {c['policy']} ({c['vin']}): {c['status']}; {opened}, incident "
           f"{when(c['incident'])} at {c['odometer_km']:,} km; flags: {', '.join(c['flags']) or '-'}")
    if c["workshop"]:
        out += f"\n  estimate {money(c['estimate'], cur)} by {escape(c['workshop'])}" + (
            f" ({escape(c['estimate_ref'])})" if c["estimate_ref"] else "")
    if c["reason"]:
        out += f"\n  decided: {c['reason']}" + (
            f", approved {money(c['approved'], cur)}, payout {money(c['payout'], cur)}" if c["reason"] == "covered" else "")
    return out


@claim_app.command("show")
@cli_errors
def claim_show(claim: int = ClaimArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
               trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A claim: how it opened, flags, estimate, decision, payout; read by its insurer, holder and
    assessing workshop."""
    r = _read(as_key, data, node, trust, "claim", claim=claim)
    if as_json:
        print_json(r)
    else:
        console.print(_claim_text(r, r["currency"]))


@claim_app.command("list")
@cli_errors
def claim_list(insurer: str = typer.Option(..., "--insurer", metavar="ORG", help="The insurer organisation's id."),
               status: str = typer.Option("opened", "--status", metavar="STATUS",
                                          help="The status listed: opened, assessed, approved, denied or paid."),
               as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
               trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """An insurer's claims in one status, by id; read by a key of the insurer."""
    from ..client.insurance import Insurance

    with client(node, data, trust, key=signing_key(data, as_key)) as c:
        rows = Insurance(c).insurer_claims(insurer, status, min_height=c.status()["height"])
        say_trust(c)
    if as_json:
        print_json({"insurer": insurer, "status": status, "claims": rows})
        return
    console.print(f"{escape(insurer)}: {len(rows)} {status} claim(s)")
    for r in rows:
        console.print(f"  claim {r['id']} on policy {r['policy']} ({r['vin']})")
