"""``blokauto consent``: the title holder grants, revokes and lists consent to a vehicle's data.

Each grant and revocation is a transaction signed with the holder's key (``--key NAME`` in
DATA/keys), sent as ``tx send`` sends one; ``list`` reads the module's ``grants_of`` query as of
the newest block's time (its checkpoint verified against the trust anchor).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..keystore import KeyStore
from .common import (AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, group, print_json, say_trust,
                     signing_key, when)
from .errors import cli_errors
from .tx import WaitOpt, submit_and_report

consent_app = group("Grant, revoke and list the holder's consent to a vehicle's data.")

VinArg = typer.Argument(..., metavar="VIN", help="The vehicle's VIN.")
KeyOpt = typer.Option(..., "--key", "-k", metavar="NAME",
                      help="The title holder's key (its name in DATA/keys; for a title held by org:ID, a key of "
                           "that organisation).")

_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")


def until_ms(text: str, now: int) -> int:
    """``30d``, ``12h``, ``90m``, ``600s`` from ``now``; or an absolute block time in ms (digits only)."""
    m = _DURATION.match(text.strip())
    if m:
        return now + int(m.group(1)) * _UNITS_MS[m.group(2)]
    if text.strip().isdigit():
        return int(text.strip())
    raise ValueError(f"--until {text!r} is neither a duration (30d, 12h, 90m, 600s) nor a time in ms since the epoch")


def _send(key: str, data: Path, node: str, trust: Optional[Path], type_: str, fields: dict[str, Any], wait: float,
          as_json: bool) -> None:
    sender = KeyStore(data / "keys").load(key)
    with client(node, data, trust, key=sender) as c:
        tx = c.sign(c.build(c.message(type_, fields), sender), sender)
        submit_and_report(c, tx, wait, as_json)  # --wait 0: the id, at once


@consent_app.command("grant")
@cli_errors
def grant(vin: str = VinArg,
          to: str = typer.Option(..., "--to", metavar="ORG", help="The organisation that may read (its id)."),
          category: list[str] = typer.Option(..., "--category", metavar="CATEGORY",
                                             help="A data category: history, odometer, location, driving or "
                                                  "identity; repeat."),
          purpose: str = typer.Option(..., "--purpose", metavar="TEXT", help="What the data is for (up to 200 characters)."),
          until: str = typer.Option(..., "--until", metavar="WHEN",
                                    help="Until when: a duration from now (30d, 12h, 90m) or a block time in ms; at "
                                         "most the chain's max_consent_ms ahead."),
          key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Grant an organisation consent to read some categories of a vehicle's data, until a time."""
    from ..client import now_ms

    fields = {"vin": vin, "org": to, "categories": category, "purpose": purpose, "until": until_ms(until, now_ms())}
    _send(key, data, node, trust, "consent.grant", fields, wait, as_json)


@consent_app.command("revoke")
@cli_errors
def revoke(vin: str = VinArg,
           grant_id: int = typer.Argument(..., metavar="GRANT_ID", min=1, help="The grant's id (`consent list` shows it)."),
           key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
           trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Revoke a grant (only the holder who made it may)."""
    _send(key, data, node, trust, "consent.revoke", {"vin": vin, "grant": grant_id}, wait, as_json)


@consent_app.command("list")
@cli_errors
def list_grants(vin: str = VinArg, key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A vehicle's grants with their status as of the newest block: active, expired, revoked, or
    holder_changed (the title has passed on since). Read by the holder (``--as`` its key), regulators
    and police."""
    with client(node, data, trust, key=signing_key(data, key)) as c:
        head = c.checkpoint("latest").header  # verified against the trust anchor
        result = c.query("consent", "grants_of", vin=vin, at=head.time, min_height=head.height, limit=1000)
        say_trust(c)
    if as_json:
        print_json(result)
        return
    console.print(f"{escape(vin)}: {result['total']} grant(s), status as of block {head.height} ({when(head.time)})")
    if not result["grants"]:
        return
    table = Table("id", "organisation", "categories", "purpose", "until", "status", "granted by")
    for g in result["grants"]:
        table.add_row(str(g["id"]), escape(g["org"]), ", ".join(g["categories"]), escape(g["purpose"]),
                      when(g["until"]), g["status"], escape(g["holder"]))
    console.print(table)
