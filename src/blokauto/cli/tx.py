"""``blokauto tx`` and ``blokauto messages``: build, sign, submit and look up transactions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

import msgspec
import typer
from rich.markup import escape
from rich.table import Column, Table

from ..core.encoding import canonical
from ..core.tx import Tx
from ..keystore import KeyStore
from .common import AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, print_json, say_trust, signing_key
from .common import group
from .errors import cli_errors, fail

TX_ID = re.compile(r"[0-9a-f]{64}")

tx_app = group("Build, sign, submit and look up transactions.")

TypeArg = typer.Argument(..., metavar="TYPE", help="Message type, e.g. governance.add_member (`blokauto messages` lists them).")
DataArg = typer.Argument(None, metavar="FIELDS", help="Message fields as a JSON object, or @file.json.")
SetOpt = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help="One message field (JSON, or text); repeat.")
WaitOpt = typer.Option(30.0, metavar="SECONDS", min=0, help="Seconds to wait for the receipt (0: print the id and return).")


def message_type(type_: str) -> str:
    """A known message type, or a usage error naming where the list is."""
    from ..modules import default_registry

    if type_ not in default_registry().messages:
        fail(f"no message type {type_!r}; `blokauto messages` lists them", 2)
    return type_


def message_fields(data_json: Optional[str], sets: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if data_json:
        text = Path(data_json[1:]).read_text() if data_json.startswith("@") else data_json
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the message fields are not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("the message fields must be a JSON object")
    for item in sets or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r} is not KEY=VALUE")
        try:
            data[k] = json.loads(v)
        except json.JSONDecodeError:
            data[k] = v
    return data


def print_receipt(info: Any, as_json: bool) -> None:
    """The receipt; a transaction that failed at execution exits 1 (it is on the ledger, as a failure)."""
    from .common import when

    if as_json:
        print_json({"id": info.id, "height": info.height, "index": info.index, "time": info.checkpoint.header.time,
                    "receipt": info.receipt})
    elif info.ok:
        console.print(f"[green]committed[/] {info.id} at height {info.height} ({when(info.checkpoint.header.time)})")
        for ev in info.events:
            rest = {k: v for k, v in ev.items() if k != "type"}
            console.print(f"  {ev['type']}  {escape(json.dumps(rest, sort_keys=True))}")
    else:
        err = info.error
        console.print(f"[red]failed[/] {info.id} at height {info.height}: {escape(f'[{err.code}] {err.message}')}")
    if not info.ok:
        raise typer.Exit(1)


def submit_and_report(c: Any, tx: Tx[Any] | bytes, wait: float, as_json: bool) -> None:
    """Submit ``tx``; print its id (``wait`` 0), or wait for its receipt and print that (exit 1 if it failed)."""
    txid = c.submit(tx)
    if wait <= 0:
        console.print(txid)
        return
    info = c.receipt(txid, wait=wait)
    say_trust(c)
    print_receipt(info, as_json)


@tx_app.command("send")
@cli_errors
def tx_send(
    type_: str = TypeArg, data_json: Optional[str] = DataArg,
    key: str = typer.Option(..., "--key", "-k", metavar="NAME", help="Sender key (its name in DATA/keys)."),
    cosign: list[str] = typer.Option(None, "--cosign", "-c", metavar="NAME", help="A co-signer's key name; repeat."),
    sets: list[str] = SetOpt,
    ttl_s: int = typer.Option(600, metavar="SECONDS", min=1,
                              help="Seconds the transaction stays valid (at most the chain's max_tx_ttl_ms)."),
    wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build, sign, submit and wait for the receipt (exit 1 if it failed at execution)."""
    message_type(type_)
    ks = KeyStore(data / "keys")
    sender = ks.load(key)
    cosigners = [ks.load(c) for c in cosign or []]
    with client(node, data, trust, key=sender) as c:
        msg = c.message(type_, message_fields(data_json, sets))
        tx = c.sign(c.build(msg, sender, ttl_ms=ttl_s * 1000), sender, *cosigners)
        submit_and_report(c, tx, wait, as_json)


@tx_app.command("build")
@cli_errors
def tx_build(
    type_: str = TypeArg, data_json: Optional[str] = DataArg,
    sender: str = typer.Option(..., "--sender", metavar="NAME|DID", help="Sender: a key name in DATA/keys, or a did:key."),
    sets: list[str] = SetOpt,
    out: Path = typer.Option(..., "--out", "-o", metavar="FILE", help="Where to write the unsigned transaction."),
    ttl_s: int = typer.Option(3600, metavar="SECONDS", min=1,
                              help="Seconds the transaction stays valid: long enough for every co-signer to sign "
                                   "(at most the chain's max_tx_ttl_ms)."),
    data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
) -> None:
    """Write an unsigned transaction for others to sign (messages that need several parties)."""
    message_type(type_)
    did = sender if sender.startswith("did:key:") else KeyStore(data / "keys").entry(sender).did
    with client(node, data, trust) as c:
        body = c.build(c.message(type_, message_fields(data_json, sets)), did, ttl_ms=ttl_s * 1000)
    out.write_bytes(canonical({"body": body, "sigs": []}) + b"\n")
    console.print(f"wrote {out}; sign it with: blokauto tx sign {out} --key NAME")


def read_tx(path: Path) -> Tx[Any]:
    from ..modules import default_registry

    return default_registry().codec.decode(path.read_bytes().strip())


@tx_app.command("sign")
@cli_errors
def tx_sign(path: Path = typer.Argument(..., metavar="FILE", help="A transaction file (from `tx build`)."),
            key: list[str] = typer.Option(..., "--key", "-k", metavar="NAME", help="A key to sign with; repeat."),
            data: Path = DataOpt()) -> None:
    """Add signatures to a transaction file."""
    from ..client import Client

    ks = KeyStore(data / "keys")
    tx = Client.sign(read_tx(path), *[ks.load(k) for k in key])
    path.write_bytes(canonical(tx) + b"\n")
    console.print(f"{path}: {len(tx.sigs)} signature(s): " + ", ".join(s.signer for s in tx.sigs))


@tx_app.command("submit")
@cli_errors
def tx_submit(path: Path = typer.Argument(..., metavar="FILE", help="A signed transaction file."),
              key: str = typer.Option(..., "--as", "-a", envvar="BLOKAUTO_KEY", metavar="NAME",
                                      help="Sign the request with this key (its name in DATA/keys): one of the "
                                           "transaction's signers, or a member key."),
              wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
              as_json: bool = JsonOpt) -> None:
    """Submit a signed transaction file (exit 1 if it failed at execution)."""
    with client(node, data, trust, key=signing_key(data, key)) as c:
        submit_and_report(c, path.read_bytes().strip(), wait, as_json)


@tx_app.command("get")
@cli_errors
def tx_get(tx_id: str = typer.Argument(..., metavar="ID", help="A transaction id (64 hex digits)."),
           wait: float = typer.Option(0.0, metavar="SECONDS", min=0, help="Seconds to wait for it to be committed."),
           key: Optional[str] = AsOpt, node: str = NodeOpt, data: Path = DataOpt(),
           trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A transaction's receipt, with its inclusion proofs verified (exit 1 if it failed at execution).
    Read by its signers (``--as`` one of them), their organisations, nodes, regulators and police."""
    if not TX_ID.fullmatch(tx_id):
        fail(f"{tx_id!r} is not a transaction id (64 lowercase hex digits, as `tx send` prints)", 2)
    with client(node, data, trust, key=signing_key(data, key)) as c:
        info = c.receipt(tx_id, wait=wait)
        say_trust(c)
        print_receipt(info, as_json)


@cli_errors
def messages(as_json: bool = JsonOpt) -> None:
    """Message types this software knows, who may send them, and their fields."""
    from ..modules import default_registry

    registry = default_registry()
    if as_json:
        print_json([{"type": t, "roles": s.describe_roles(), "doc": s.doc,
                     "schema": msgspec.json.schema(s.struct)} for t, s in sorted(registry.messages.items())])
        return
    table = Table(Column("type", overflow="fold", no_wrap=True), "sender role", "fields", "what it does")
    for t, s in sorted(registry.messages.items()):
        fields = ", ".join(f.name for f in msgspec.structs.fields(s.struct))
        table.add_row(t, s.describe_roles(), fields, s.doc.split("\n")[0])
    console.print(table)
