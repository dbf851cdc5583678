"""``blokauto network``: a local consortium (3 NATS JetStream servers, one node per organisation)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .common import LogFormatOpt, group
from .errors import cli_errors

network_app = group("A local consortium network on NATS JetStream.")
console = Console()
BaseOpt = typer.Option(Path("blokauto-net"), "--base", "-b", envvar="BLOKAUTO_NET", metavar="DIR",
                       help="Folder holding the network (servers, organisations' data, PIDs).")


@network_app.command("up")
@cli_errors
def up(base: Path = BaseOpt,
       orgs: int = typer.Option(4, metavar="N", min=1, help="Organisations, each running a node."),
       chain: str = typer.Option("blokauto-net", "--chain-id", "--chain", metavar="ID",
                                 help="Chain id of a new network (as `blokauto init --chain-id`)."),
       quorum: Optional[int] = typer.Option(None, metavar="N", min=1, help="Attestations per checkpoint (default: more than 2/3)."),
       nats_server: Optional[str] = typer.Option(None, metavar="FILE",
                                                 help="Path of a nats-server binary (default: the pinned one)."),
       workers: Optional[int] = typer.Option(None, metavar="N", min=1, help="Signature-checking processes per node."),
       log_format: str = LogFormatOpt) -> None:
    """Start 3 NATS servers and one node per organisation on 127.0.0.1 (or resume a stopped network);
    each node logs into its data folder's node.log."""
    from ..logs import check
    from ..node.network import network_up

    network_up(base, orgs=orgs, chain=chain, quorum=quorum, nats_server=nats_server, workers=workers,
               say=lambda s: console.print(s, soft_wrap=True), log_format=check(log_format))
    console.print(f"[green]network up[/] — `blokauto network status --base {base}`; "
                  f"`blokauto network down --base {base}` stops it", soft_wrap=True)


@network_app.command("status")
@cli_errors
def status(base: Path = BaseOpt, as_json: bool = typer.Option(False, "--json", metavar="", help="Print JSON.")) -> None:
    """Each server and node: running, height, state root; exits 1 if any is down or out of step."""
    from ..node.network import network_status

    st = network_status(base)
    if as_json:
        sys.stdout.write(json.dumps(st, indent=2) + "\n")
    else:
        t = Table(title=f"chain {st['chain']} in {st['base']}")
        for col in ("process", "url", "pid", "running", "height", "state root"):
            t.add_column(col, overflow="fold")  # URLs are copied from here: never cut
        for s in st["servers"]:
            t.add_row(f"nats {s['name']}", s["url"], str(s["pid"]), _yes(s["running"]), "", "")
        for n in st["nodes"]:
            root = (n["state_root"] or "")[:16]
            t.add_row(f"node {n['org']}", n["url"], str(n["pid"]), _yes(n["running"] and n["healthy"]),
                      "" if n["height"] is None else str(n["height"]), root + ("…" if root else ""))
        console.print(t)
        for n in st["nodes"]:
            if n["error"]:
                console.print(f"[red]node {n['org']}:[/] {n['error']}", soft_wrap=True)
    ok = (all(s["running"] for s in st["servers"]) and all(n["running"] and n["healthy"] for n in st["nodes"])
          and st["in_step"])
    raise typer.Exit(0 if ok else 1)


@network_app.command("down")
@cli_errors
def down(base: Path = BaseOpt) -> None:
    """Stop every process of the network (data is kept; `network up` resumes it)."""
    from ..node.network import network_down

    stopped = network_down(base)
    console.print(f"stopped {len(stopped)} processes" + (f": {', '.join(map(str, stopped))}" if stopped else ""))


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"
