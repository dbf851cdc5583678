"""``blokauto node``: run a node, join a chain from a peer's snapshot, back up, restore, scrub."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .common import DEFAULT_PORT, DataOpt, JsonOpt, console, err_console, group, print_json
from .errors import cli_errors
from .progress import progress_bar

node_app = group("Run a node, join a chain, back up and restore its data.")


@node_app.command("start")
@cli_errors
def node_start(
    data: Path = DataOpt(),
    host: str = typer.Option("127.0.0.1", metavar="ADDRESS", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, metavar="PORT", help="Port to listen on (0: any free port)."),
    node_key: Optional[str] = typer.Option(None, metavar="NAME", help="The node key in DATA/keys to attest with "
                                           "(default: the first node key of this chain there; the node says which)."),
    block_txs: int = typer.Option(2000, metavar="N", help="Cut a block at this many transactions..."),
    block_ms: int = typer.Option(50, metavar="MS", help="...or this many ms after the first one arrived."),
    workers: Optional[int] = typer.Option(None, metavar="N", help="Signature-checking processes (default: one per core)."),
    scrub_minutes: float = typer.Option(60.0, "--scrub-minutes", metavar="MINUTES",
                                        help="Minutes between re-verifications of all stored data by a low-priority "
                                             "process (0: never; the first runs 30 s after start)."),
    unsafe_acks: bool = typer.Option(False, "--unsafe-acks-before-journal", hidden=True, metavar="",
                                     help="Benchmarks only: answer ids before they are durable (a crash can lose them)."),
) -> None:
    """Run a node and its HTTP API until Ctrl-C or SIGTERM (it keeps the terminal: use another one
    for the other commands)."""
    from ..api.server import ApiServer
    from ..keystore import KeyStore
    from ..node.engine import EngineConfig
    from ..node.node import Node, load_genesis, node_keys_of, tune_gc_for_serving

    key = KeyStore(data / "keys").load(node_key) if node_key else None
    node = Node(data, node_key=key, config=EngineConfig(block_max_txs=block_txs, block_interval_ms=block_ms,
                                                        durable_acks=not unsafe_acks, state_writer_process=True),
                workers=workers, scrub_interval_s=scrub_minutes * 60)
    genesis = load_genesis(data)
    if node_key is None and genesis is not None:
        candidates = node_keys_of(data, genesis)
        if len(candidates) > 1:
            err_console.print(f"[yellow]{len(candidates)} node keys of this chain in {data / 'keys'} "
                              f"({', '.join(candidates)}); attesting with {candidates[0]}. Choose with --node-key NAME.[/]")
    with progress_bar("replaying blocks") as advance:
        replayed = node.start(progress=advance)
    try:
        server = ApiServer(node, host, port)
        st = node.status()
        integrity = st["integrity"]
        console.print(f"node {st['node']} of chain {st['chain']!r} at height {st['height']}"
                      + (f" (replayed {replayed} blocks)" if replayed else "") + ", ordering "
                      + (f"on NATS JetStream as {st['org']}" if st["ordering"] == "jetstream" else "solo"))
        if integrity["recovered_from_journal"]:
            console.print(f"ordered {integrity['recovered_from_journal']} acknowledged transactions from the intake "
                          f"journal that no block held yet")
        for note in (integrity["rebuilt_state"], integrity["repaired"]):
            if note:
                err_console.print(f"[yellow]{escape(note)}[/]")
        console.print(f"API on {server.url}  (OpenAPI: {server.url}/schema)  pid {os.getpid()}  — Ctrl-C stops it")
        sys.stdout.flush()
        tune_gc_for_serving()
        server.run()
    finally:
        node.stop()
    console.print("node stopped cleanly")


@node_app.command("snapshot")
@cli_errors
def node_snapshot(url: str = typer.Option(..., "--from", metavar="URL", help="API of a node of the chain to copy from."),
                  data: Path = DataOpt("Folder of the new node: genesis.json (the trust anchor), keys/, and "
                                       "network.json for a networked node; no chain yet.")) -> None:
    """Start a new node from another node's block log, checked against the trust anchor in DATA."""
    from ..node.snapshot import fetch_snapshot

    with progress_bar("downloading the block log (bytes)") as advance:
        snap = fetch_snapshot(url, data, progress=advance)
    console.print(f"[green]verified[/] block log to height {snap.height} ({snap.bytes / 2**20:.1f} MiB): links to the "
                  f"trust anchor, quorum checkpoint with {snap.attestations} attestations; stream position "
                  f"{snap.stream_seq}. `blokauto node start --data {data}` re-executes it and follows the chain.")


@node_app.command("backup")
@cli_errors
def node_backup(data: Path = DataOpt(),
                to: Path = typer.Option(..., "--to", metavar="DIR", help="A new or empty folder for the backup.")) -> None:
    """Back up a node's data folder (running or not), verified as it is written."""
    from ..modules import default_registry
    from ..node.backup import backup

    with err_console.status("backing up") as spinner:
        result = backup(data, to, default_registry(), say=lambda m: spinner.update(m))
    m = result.manifest
    size = sum(f.size for f in m.files.values())
    console.print(f"[green]backed up[/] chain {m.chain!r} to height {m.height} (state at {m.state_height}) into {to}: "
                  f"{len(m.files)} files, {size / 2**20:.1f} MiB, verified (SQLite integrity, every block from genesis, "
                  f"the state tree and index rows). Restore with: blokauto node restore --from {to} --data NEW_FOLDER")


@node_app.command("restore")
@cli_errors
def node_restore(src: Path = typer.Option(..., "--from", metavar="DIR",
                                          help="A backup folder written by `blokauto node backup`."),
                 data: Path = DataOpt("A new folder to restore into (it must not hold a chain).")) -> None:
    """Restore a backup into a data folder that holds no chain yet, after checking it completely."""
    from ..modules import default_registry
    from ..node.backup import restore

    with err_console.status("restoring") as spinner:
        m = restore(src, data, default_registry(), say=lambda msg: spinner.update(msg))
    console.print(f"[green]restored[/] chain {m.chain!r} to height {m.height} into {data} (every file matched the "
                  f"manifest and the copy verified). Start it with: blokauto node start --data {data}")


@node_app.command("scrub")
@cli_errors
def node_scrub(data: Path = DataOpt(), as_json: bool = JsonOpt) -> None:
    """Re-verify a data folder's structure (node running or not) without re-executing: SQLite
    integrity, every block, the state tree, index rows and the tx index. Exits 1 on any problem."""
    from ..modules import default_registry
    from ..node.scrub import scrub

    with err_console.status("scrubbing"):
        report = scrub(data, default_registry())
    if as_json:
        print_json(report.to_dict())
    else:
        for f in report.findings:
            console.print(f"[red]✗[/] {escape(str(f))}")
        verdict = "[green]OK[/]" if report.ok else f"[red]{len(report.findings)} problem(s)[/]"
        console.print(f"scrub {verdict}: {report.blocks} blocks, state.db at height {report.state_height}")
    if not report.ok:
        raise typer.Exit(1)
