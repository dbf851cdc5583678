"""``blokauto init`` and ``blokauto keys``: a new chain's trust anchor, and signing keys in DATA/keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from rich.table import Column, Table

from ..keystore import KeyStore
from .common import DataOpt, JsonOpt, console, flag, group, print_json
from .errors import cli_errors, fail

keys_app = group("Signing keys kept in DATA/keys (mode 0600).")


@cli_errors
def init(
    data: Path = DataOpt("Folder for the new chain (must not hold one)."),
    chain_id: str = typer.Option("blokauto-local", "--chain-id", metavar="ID",
                                 help="Chain id: every transaction names it, so none can be replayed on another chain."),
    org: list[str] = typer.Option(None, "--org", metavar="ID:ROLE[,ROLE...][:NAME]",
                                  help="A founding organisation; repeat (default: one regulator, 'operator')."),
    quorum: int = typer.Option(1, metavar="N", min=1, help="Node attestations a checkpoint needs (at most the node keys)."),
    nodes_per_org: int = typer.Option(1, metavar="N", min=1, help="Node keys made for each organisation."),
) -> None:
    """Create a new chain: founding keys and genesis.json (the consortium's trust anchor). A refused
    chain (a bad id, role or quorum) leaves nothing behind."""
    from ..core.errors import BlokautoError
    from ..node.init import OrgSpec, init_chain
    from ..node.netconfig import Subjects

    try:
        Subjects(chain_id)  # the chain id names the network's NATS subjects and streams: one rule for both
    except ValueError:
        fail(f"{chain_id!r} is not a chain id: 1-64 letters, digits, '-' or '_'", 2)
    specs = [OrgSpec.parse(o) for o in (org or ["operator:regulator:Operator"])]
    nodes = len(specs) * nodes_per_org
    if quorum > nodes:
        fail(f"a quorum of {quorum} is impossible with {nodes} node key(s); it must be between 1 and {nodes}", 2)
    created = _first_missing(data)
    try:
        genesis = init_chain(data, chain=chain_id, orgs=specs, quorum=quorum, nodes_per_org=nodes_per_org)
    except BaseException as exc:
        if created is not None:  # it did not exist before this command: what is in it is ours
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(exc, BlokautoError):  # a founding organisation's id or role: a bad value given here
            fail(f"[{exc.code}] {exc.message}", 2)
        if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, FileExistsError):
            where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != data else ""
            fail(f"cannot create the chain in {data}: {exc.strerror[0].lower()}{exc.strerror[1:]}{where}", 2)
        raise
    console.print(f"[green]created chain[/] {genesis.chain!r} in {data}")
    console.print(f"  trust anchor  {data / 'genesis.json'}  (hash {genesis.hash().hex()})")
    for entry in KeyStore(data / "keys").entries():
        console.print(f"  key {entry.name:<24} {entry.kind:<7} {entry.did}")
    console.print(f"next: blokauto node start --data {data}   (in its own terminal: it runs until Ctrl-C)")


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what creating it would add), or None."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


@keys_app.command("new")
@cli_errors
def keys_new(name: str = typer.Argument(..., metavar="NAME", help="A name for the key (a file DATA/keys/NAME.json)."),
             data: Path = DataOpt(),
             node_key: bool = flag("--node-key", "A node key (it attests blocks) instead of a member key."),
             org: str = typer.Option("", metavar="ID", help="Organisation it is meant for (informational).")) -> None:
    """Create a key; prints its did:key."""
    key = KeyStore(data / "keys").create(name, kind="node" if node_key else "member", org=org)
    console.print(key.did)


@keys_app.command("list")
@cli_errors
def keys_list(data: Path = DataOpt(), as_json: bool = JsonOpt) -> None:
    """Keys in DATA/keys."""
    entries = KeyStore(data / "keys").entries()
    if as_json:
        print_json([{"name": e.name, "did": e.did, "kind": e.kind, "org": e.org} for e in entries])
        return
    table = Table("name", "kind", "org", Column("did", overflow="fold"))
    for e in entries:
        table.add_row(e.name, e.kind, e.org, e.did)
    console.print(table)


@keys_app.command("show")
@cli_errors
def keys_show(name: str = typer.Argument(..., metavar="NAME", help="The key's name in DATA/keys."),
              data: Path = DataOpt()) -> None:
    """Print a key's did:key."""
    console.print(KeyStore(data / "keys").entry(name).did)
