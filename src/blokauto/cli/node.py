"""``blokauto node``: run a node, join a chain from a peer's snapshot, back up, restore, scrub."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from typing import Any, Optional

import msgspec
import typer
from rich.markup import escape

from .common import DEFAULT_PORT, DataOpt, JsonOpt, LogFormatOpt, console, err_console, group, print_json
from .errors import cli_errors, fail
from .progress import progress_bar

node_app = group("Run a node, join a chain, back up and restore its data.")


@node_app.command("start")
@cli_errors
def node_start(
    data: Path = DataOpt(),
    host: str = typer.Option("127.0.0.1", metavar="ADDRESS", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, metavar="PORT", min=0, max=65535,
                             help="Port to listen on (0: any free port)."),
    public_url: list[str] = typer.Option(None, "--public-url", metavar="URL",
                                         help="Another address clients reach this node by (a DNS name, a proxy): "
                                              "signed requests are accepted for it too. Repeat for several."),
    node_key: Optional[str] = typer.Option(None, metavar="NAME", help="The node key in DATA/keys to attest with: "
                                           "one of the chain's node keys (default: the first of them there; the node "
                                           "says which)."),
    block_txs: int = typer.Option(2000, metavar="N", min=1, help="Cut a block at this many transactions..."),
    block_ms: int = typer.Option(50, metavar="MS", min=0, help="...or this many ms after the first one arrived."),
    workers: Optional[int] = typer.Option(None, metavar="N", min=1,
                                          help="Signature-checking processes (default: one per core)."),
    scrub_minutes: float = typer.Option(60.0, "--scrub-minutes", metavar="MINUTES", min=0,
                                        help="Minutes between re-verifications of all stored data by a low-priority "
                                             "process (0: never; the first runs 30 s after start)."),
    unsafe_acks: bool = typer.Option(False, "--unsafe-acks-before-journal", hidden=True, metavar="",
                                     help="Benchmarks only: answer ids before they are durable (a crash can lose them)."),
    log_format: str = LogFormatOpt,
) -> None:
    """Run a node and its HTTP API until Ctrl-C or SIGTERM (it keeps the terminal: use another one
    for the other commands)."""
    import logging

    from ..api.server import ApiServer
    from ..logs import configure
    from ..keystore import KeyStore
    from ..node.ordering import NodeConfig
    from ..node.faults import NodeFault
    from ..node.netconfig import NETWORK_FILE
    from ..node.node import Node, load_genesis, node_keys_of, tune_gc_for_serving
    from ..store.damage import DamagedData

    json_logs = configure(log_format)
    log = logging.getLogger("blokauto.cli")

    def warn(message: str) -> None:  # a warning as today's yellow line, or a log record
        log.warning(message) if json_logs else err_console.print(f"[yellow]{escape(message)}[/]")

    # Everything that can refuse the start is checked before the node writes anything into DATA.
    genesis = load_genesis(data)
    if genesis is None:
        raise FileNotFoundError(f"{data} holds no genesis.json; run `blokauto init --data {data}` first")
    if not (data / NETWORK_FILE).exists():
        node_key = check_solo_node_key(data, genesis, node_key)
    check_can_listen(host, port)
    key = KeyStore(data / "keys").load(node_key) if node_key else None
    node = Node(data, node_key=key, config=NodeConfig(block_max_txs=block_txs, block_interval_ms=block_ms,
                                                        durable_acks=not unsafe_acks, state_writer_process=True),
                workers=workers, scrub_interval_s=scrub_minutes * 60)
    if node_key is None:
        candidates = node_keys_of(data, genesis)
        if len(candidates) > 1:
            warn(f"{len(candidates)} node keys of this chain in {data / 'keys'} ({', '.join(candidates)}); "
                 f"attesting with {candidates[0]}. Choose with --node-key NAME.")
    with progress_bar("replaying blocks", quiet=json_logs) as advance:
        replayed = node.start(progress=advance)
    try:
        try:
            server = ApiServer(node, host, port, public_urls=tuple(public_url or ()))
        except OSError as exc:  # taken since check_can_listen: another process was quicker
            fail(listen_problem(host, port, exc), 2)
        if server.app_authorities is None:
            warn(f"listening on every address ({host}) with no --public-url: signed requests are accepted for any "
                 f"host name with port {server.port}; name the addresses clients use with --public-url so a request "
                 f"signed for another node is refused here")
        st = node.status()
        integrity = st["integrity"]
        started = (f"node {st['node']} of chain {st['chain']!r} at height {st['height']}"
                   + (f" (replayed {replayed} blocks)" if replayed else "") + ", ordering "
                   + (f"on NATS JetStream as {st['org']}" if st["ordering"] == "jetstream" else "solo"))
        recovered = integrity["recovered_from_journal"]
        if json_logs:
            log.info(started, extra={"node": st["node"], "chain": st["chain"], "height": st["height"],
                                     "replayed": replayed, "ordering": st["ordering"]})
        else:
            console.print(started)
        if recovered:
            message = f"ordered {recovered} acknowledged transactions from the intake journal that no block held yet"
            log.info(message) if json_logs else console.print(message)
        for note in (integrity["rebuilt_state"], integrity["repaired"]):
            if note:
                warn(note)
        if json_logs:
            log.info(f"API on {server.url}", extra={"url": server.url, "pid": os.getpid()})
        else:
            console.print(f"API on {server.url}  (OpenAPI: {server.url}/schema)  pid {os.getpid()}  — Ctrl-C stops it")
        sys.stdout.flush()
        tune_gc_for_serving()
        server.run()
    finally:
        node.stop()
    failure = node.failure
    if failure is not None:  # the API was served, but ordering and execution had stopped
        damaged = isinstance(failure, (NodeFault, DamagedData))
        fail(f"node stopped; its engine had stopped earlier: {failure}", 4 if damaged else 1)
    log.info("node stopped cleanly") if json_logs else console.print("node stopped cleanly")


def consortium_node_keys(data: Path, genesis: Any) -> dict[str, str]:
    """Node key did -> organisation: genesis' node keys, and the current consensus record's in
    DATA/state.db when it can be read (node keys changed by governance since genesis)."""
    import sqlite3
    from contextlib import closing
    from urllib.parse import quote

    from ..modules.governance.state import CONSENSUS
    from ..store.state import Snapshot

    nodes = dict(genesis.node_keys())
    path = data / "state.db"
    if path.is_file():
        # read-only, and without a write-ahead log it is read as an immutable file: SQLite then
        # creates no -wal or -shm file beside it (this runs before the start may be refused)
        wal = path.with_name("state.db-wal").exists() or path.with_name("state.db-shm").exists()
        uri = f"file:{quote(str(path.absolute()))}?mode=ro" + ("" if wal else "&immutable=1")
        try:
            with closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as conn:
                consensus = CONSENSUS.get(Snapshot(conn, {}))
        except (sqlite3.Error, msgspec.DecodeError, OSError):
            consensus = None  # unreadable: genesis decides, and the node's own checks report the damage
        if consensus is not None:
            nodes.update({n.did: n.org for n in consensus.nodes})
    return nodes


def check_solo_node_key(data: Path, genesis: Any, name: Optional[str]) -> Optional[str]:
    """A solo node attests every block it commits: with a key that is not a node key of the chain,
    no verifier would accept its blocks and the folder could never be run with the right key again.
    Refused (exit 2) before anything is written. Returns the key to use (None: the node's default,
    the first of genesis' node keys in DATA/keys)."""
    from ..keystore import KeyStore
    from ..node.node import node_keys_of

    nodes = consortium_node_keys(data, genesis)
    store = KeyStore(data / "keys")
    here = [e.name for e in store.entries() if e.did in nodes] if (data / "keys").is_dir() else []
    listed = (f"node keys of this chain in {data / 'keys'}: {', '.join(here)}" if here else
              f"{data / 'keys'} holds none of this chain's node keys ("
              + ", ".join(f"{did} of {org}" for did, org in sorted(nodes.items(), key=lambda kv: kv[1])) + ")")
    if name is not None:
        entry = store.entry(name)
        if entry.did not in nodes:
            fail(f"{name} ({entry.kind} key {entry.did}) is not a node key of chain {genesis.chain!r}: blocks it "
                 f"attested would be refused by every verifier. {listed[0].upper()}{listed[1:]}", 2)
        return name
    if not here:
        fail(f"no node key to attest with: {listed}. Copy your organisation's node key file into "
             f"{data / 'keys'}", 2)
    # the node's default is the first of genesis' node keys here; a chain whose node keys changed since
    # genesis may hold only a newer one
    return None if node_keys_of(data, genesis) else here[0]


def listen_problem(host: str, port: int, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {host!r}: it is not an address of this machine ({exc.strerror})"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use (another node?); choose another with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: it is not an address of this machine"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


def check_can_listen(host: str, port: int) -> None:
    """Bind the API's address once, as the server will (exit 2 with a sentence if it cannot), so a
    start that would fail there changes nothing in DATA."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except (OSError, UnicodeError) as exc:
        if isinstance(exc, UnicodeError):  # an address IDNA cannot encode (an empty label, too long)
            fail(f"cannot listen on {host!r}: it is not an address of this machine", 2)
        fail(listen_problem(host, port, exc), 2)


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

    if not data.is_dir():
        fail(f"{data} is not a folder: name a node's data folder with --data", 2)
    if not (data / "chain.db").is_file():
        fail(f"{data} holds no chain (no chain.db): name a node's data folder with --data", 2)
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
                 data: Path = DataOpt("A new or empty folder to restore into.")) -> None:
    """Restore a backup into a new or empty folder, after checking it completely."""
    from ..modules import default_registry
    from ..node.backup import restore

    if not src.is_dir():
        fail(f"{src} is not a folder: name a backup folder (written by `blokauto node backup`) with --from", 2)

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
