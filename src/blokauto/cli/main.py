"""The ``blokauto`` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..core.encoding import canonical, to_builtins
from ..core.tx import Tx
from ..keystore import KeyStore
from .errors import cli_errors, err_console
from .network import network_app

console = Console(highlight=False, emoji=False, soft_wrap=True)

DEFAULT_DATA = Path("blokauto-data")
DEFAULT_NODE = "http://127.0.0.1:8545"

app = typer.Typer(
    help="blokauto: a shared, verifiable ledger for the whole life of a vehicle.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
keys_app = typer.Typer(help="Signing keys kept in DATA/keys.", no_args_is_help=True)
node_app = typer.Typer(help="Run a node.", no_args_is_help=True)
tx_app = typer.Typer(help="Build, sign, submit and look up transactions.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(node_app, name="node")
app.add_typer(tx_app, name="tx")
app.add_typer(bench_app, name="bench")
app.add_typer(network_app, name="network")

DataOpt = typer.Option(DEFAULT_DATA, "--data", "-d", envvar="BLOKAUTO_DATA", help="Data folder of the chain.")
NodeOpt = typer.Option(DEFAULT_NODE, "--node", "-n", envvar="BLOKAUTO_NODE", help="Base URL of a node's API.")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_builtins(data), indent=2, sort_keys=True) + "\n")


def _client(node: str, data: Path | None = None, trust: Path | None = None):
    from ..client import Client

    pinned = trust or (data / "genesis.json" if data is not None and (data / "genesis.json").exists() else None)
    return Client(node, trust=pinned)


# ---------------------------------------------------------------- init and keys


@app.command()
@cli_errors
def init(
    data: Path = DataOpt,
    chain_id: str = typer.Option("blokauto-local", "--chain-id", help="Chain id (transactions name it)."),
    org: list[str] = typer.Option(None, "--org", help="Founding organisation ID:ROLE[,ROLE...][:NAME]; repeat."),
    quorum: int = typer.Option(1, help="Attestations a checkpoint needs."),
    nodes_per_org: int = typer.Option(1, help="Node keys per organisation."),
) -> None:
    """Create a new chain: founding keys and genesis.json (the consortium's trust anchor)."""
    from ..node.init import OrgSpec, init_chain

    specs = [OrgSpec.parse(o) for o in (org or ["operator:regulator:Operator"])]
    genesis = init_chain(data, chain=chain_id, orgs=specs, quorum=quorum, nodes_per_org=nodes_per_org)
    console.print(f"[green]created chain[/] {genesis.chain!r} in {data}")
    console.print(f"  trust anchor  {data / 'genesis.json'}  (hash {genesis.hash().hex()})")
    for entry in KeyStore(data / "keys").entries():
        console.print(f"  key {entry.name:<24} {entry.kind:<7} {entry.did}")
    console.print(f"next: blokauto node start --data {data}")


@keys_app.command("new")
@cli_errors
def keys_new(name: str, data: Path = DataOpt, node: bool = typer.Option(False, "--node", help="A node key."),
             org: str = typer.Option("", help="Organisation it is meant for (informational).")) -> None:
    """Create a key; prints its did:key."""
    key = KeyStore(data / "keys").create(name, kind="node" if node else "member", org=org)
    console.print(key.did)


@keys_app.command("list")
@cli_errors
def keys_list(data: Path = DataOpt, as_json: bool = JsonOpt) -> None:
    """Keys in DATA/keys."""
    entries = KeyStore(data / "keys").entries()
    if as_json:
        print_json([{"name": e.name, "did": e.did, "kind": e.kind, "org": e.org} for e in entries])
        return
    table = Table("name", "kind", "org", "did")
    for e in entries:
        table.add_row(e.name, e.kind, e.org, e.did)
    console.print(table)


@keys_app.command("show")
@cli_errors
def keys_show(name: str, data: Path = DataOpt) -> None:
    """Print a key's did:key."""
    console.print(KeyStore(data / "keys").entry(name).did)


# ---------------------------------------------------------------- node


@node_app.command("snapshot")
@cli_errors
def node_snapshot(url: str = typer.Option(..., "--from", help="API of a node of the chain to copy from."),
                  data: Path = DataOpt) -> None:
    """Start a new node from another node's block log, checked against the trust anchor in DATA."""
    from ..node.snapshot import fetch_snapshot
    from .progress import progress_bar

    with progress_bar("downloading the block log (bytes)") as advance:
        snap = fetch_snapshot(url, data, progress=advance)
    console.print(f"[green]verified[/] block log to height {snap.height} ({snap.bytes / 2**20:.1f} MiB): links to the "
                  f"trust anchor, quorum checkpoint with {snap.attestations} attestations; stream position "
                  f"{snap.stream_seq}. `blokauto node start --data {data}` re-executes it and follows the chain.")


@node_app.command("backup")
@cli_errors
def node_backup(data: Path = DataOpt,
                to: Path = typer.Option(..., "--to", help="A new or empty folder for the backup.")) -> None:
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
def node_restore(src: Path = typer.Option(..., "--from", help="A backup folder written by `blokauto node backup`."),
                 data: Path = DataOpt) -> None:
    """Restore a backup into a data folder that holds no chain yet, after checking it completely."""
    from ..modules import default_registry
    from ..node.backup import restore

    with err_console.status("restoring") as spinner:
        m = restore(src, data, default_registry(), say=lambda msg: spinner.update(msg))
    console.print(f"[green]restored[/] chain {m.chain!r} to height {m.height} into {data} (every file matched the "
                  f"manifest and the copy verified). Start it with: blokauto node start --data {data}")


@node_app.command("scrub")
@cli_errors
def node_scrub(data: Path = DataOpt, as_json: bool = JsonOpt) -> None:
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


@node_app.command("start")
@cli_errors
def node_start(
    data: Path = DataOpt,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8545, help="Port to listen on (0: any free port)."),
    node_key: Optional[str] = typer.Option(None, help="Name of the node key in DATA/keys."),
    block_txs: int = typer.Option(2000, help="Cut a block at this many transactions..."),
    block_ms: int = typer.Option(50, help="...or this many ms after the first one arrived."),
    workers: Optional[int] = typer.Option(None, help="Signature-checking processes (default: one per core)."),
    scrub_minutes: float = typer.Option(60.0, "--scrub-minutes", help="Minutes between re-verifications of all "
                                        "stored data by a low-priority process (0: never; the first runs 30 s after start)."),
    unsafe_acks: bool = typer.Option(False, "--unsafe-acks-before-journal", hidden=True,
                                     help="Benchmarks only: answer ids before they are durable (a crash can lose them)."),
) -> None:
    """Run a node and its HTTP API until interrupted."""
    from ..api.server import ApiServer
    from ..keystore import KeyStore as _KS
    from ..node.engine import EngineConfig
    from ..node.node import Node
    from .progress import progress_bar

    key = _KS(data / "keys").load(node_key) if node_key else None
    node = Node(data, node_key=key, config=EngineConfig(block_max_txs=block_txs, block_interval_ms=block_ms,
                                                        durable_acks=not unsafe_acks),
                workers=workers, scrub_interval_s=scrub_minutes * 60)
    with progress_bar("replaying blocks") as advance:
        replayed = node.start(progress=advance)
    try:
        server = ApiServer(node, host, port)
        st = node.status()
        console.print(f"node {st['node']} of chain {st['chain']!r} at height {st['height']}"
                      + (f" (replayed {replayed} blocks)" if replayed else "") + ", ordering "
                      + (f"on NATS JetStream as {st['org']}" if st["ordering"] == "jetstream" else "solo"), soft_wrap=True)
        console.print(f"API on {server.url}  (OpenAPI: {server.url}/schema)  pid {os.getpid()}", soft_wrap=True)
        sys.stdout.flush()
        server.run()
    finally:
        node.stop()


@app.command()
@cli_errors
def status(node: str = NodeOpt, data: Optional[Path] = typer.Option(None, "--data", "-d", help="Read a stopped node's folder instead."),
           as_json: bool = JsonOpt) -> None:
    """Chain, height, head and health of a node."""
    if data is not None:
        st = _offline_status(data)
    else:
        with _client(node) as c:
            st = c.status()
    if as_json:
        print_json(st)
        return
    for k, v in st.items():
        console.print(f"{k:<16} {v}")


def _offline_status(data: Path) -> dict[str, Any]:
    from ..store.blocks import BlockLog

    if not (data / "chain.db").exists():
        raise FileNotFoundError(f"{data} holds no chain")
    log = BlockLog(data / "chain.db")
    try:
        h = log.height()
        header = log.header(h)
        genesis = log.genesis()
        return {"chain": genesis.chain if genesis else None, "height": h,
                "head": header.hash().hex() if header else None, "time": header.time if header else None,
                "state_root": header.state_root if header else None,
                "attestations": len(log.attestations(h))}
    finally:
        log.close()


# ---------------------------------------------------------------- transactions


def _message_data(data_json: Optional[str], sets: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if data_json:
        text = Path(data_json[1:]).read_text() if data_json.startswith("@") else data_json
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the message data is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("the message data must be a JSON object")
    for item in sets or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r} is not KEY=VALUE")
        try:
            data[k] = json.loads(v)
        except json.JSONDecodeError:
            data[k] = v
    return data


def _print_receipt(info: Any, as_json: bool) -> None:
    if as_json:
        print_json({"id": info.id, "height": info.height, "index": info.index, "receipt": info.receipt})
        return
    if info.ok:
        console.print(f"[green]committed[/] {info.id} at height {info.height}")
        for ev in info.events:
            rest = {k: v for k, v in ev.items() if k != "type"}
            console.print(f"  {ev['type']}  {json.dumps(rest, sort_keys=True)}")
    else:
        err = info.error
        console.print(f"[red]failed[/] {info.id} at height {info.height}: {escape(f'[{err.code}] {err.message}')}")


@tx_app.command("send")
@cli_errors
def tx_send(
    type_: str = typer.Argument(..., metavar="TYPE", help="Message type, e.g. governance.add_member."),
    data_json: Optional[str] = typer.Argument(None, metavar="DATA", help="Message fields as JSON, or @file.json."),
    key: str = typer.Option(..., "--key", "-k", help="Sender key (name in DATA/keys)."),
    cosign: list[str] = typer.Option(None, "--cosign", "-c", help="Co-signer key names; repeat."),
    sets: list[str] = typer.Option(None, "--set", "-s", help="Field KEY=VALUE (JSON or text); repeat."),
    ttl_s: int = typer.Option(600, help="Seconds the transaction stays valid."),
    wait: float = typer.Option(30.0, help="Seconds to wait for the receipt (0: do not wait)."),
    data: Path = DataOpt, node: str = NodeOpt, as_json: bool = JsonOpt,
) -> None:
    """Build, sign, submit and wait: the whole round trip."""
    ks = KeyStore(data / "keys")
    sender = ks.load(key)
    cosigners = [ks.load(c) for c in cosign or []]
    with _client(node, data) as c:
        msg = c.message(type_, _message_data(data_json, sets))
        tx = c.sign(c.build(msg, sender, ttl_ms=ttl_s * 1000), sender, *cosigners)
        txid = c.submit(tx)
        if wait <= 0:
            console.print(txid)
            return
        _print_receipt(c.receipt(txid, wait=wait), as_json)


@tx_app.command("build")
@cli_errors
def tx_build(
    type_: str = typer.Argument(..., metavar="TYPE"),
    data_json: Optional[str] = typer.Argument(None, metavar="DATA"),
    sender: str = typer.Option(..., "--sender", help="Sender key name, or a did:key."),
    sets: list[str] = typer.Option(None, "--set", "-s"),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the unsigned transaction."),
    ttl_s: int = typer.Option(3600, help="Seconds the transaction stays valid."),
    data: Path = DataOpt, node: str = NodeOpt,
) -> None:
    """Write an unsigned transaction for others to sign (multi-party messages)."""
    did = sender if sender.startswith("did:key:") else KeyStore(data / "keys").entry(sender).did
    with _client(node, data) as c:
        body = c.build(c.message(type_, _message_data(data_json, sets)), did, ttl_ms=ttl_s * 1000)
    out.write_bytes(canonical({"body": body, "sigs": []}) + b"\n")
    console.print(f"wrote {out}; sign it with: blokauto tx sign {out} --key NAME")


def _read_tx(path: Path) -> Tx[Any]:
    from ..modules import default_registry

    return default_registry().codec.decode(path.read_bytes().strip())


@tx_app.command("sign")
@cli_errors
def tx_sign(path: Path, key: list[str] = typer.Option(..., "--key", "-k", help="Key name(s) to sign with."),
            data: Path = DataOpt) -> None:
    """Add signatures to a transaction file."""
    from ..client import Client

    ks = KeyStore(data / "keys")
    tx = Client.sign(_read_tx(path), *[ks.load(k) for k in key])
    path.write_bytes(canonical(tx) + b"\n")
    console.print(f"{path}: {len(tx.sigs)} signature(s): " + ", ".join(s.signer for s in tx.sigs))


@tx_app.command("submit")
@cli_errors
def tx_submit(path: Path, wait: float = typer.Option(30.0, help="Seconds to wait for the receipt (0: do not)."),
              data: Path = DataOpt, node: str = NodeOpt, as_json: bool = JsonOpt) -> None:
    """Submit a signed transaction file."""
    with _client(node, data) as c:
        txid = c.submit(path.read_bytes().strip())
        if wait <= 0:
            console.print(txid)
            return
        _print_receipt(c.receipt(txid, wait=wait), as_json)


@tx_app.command("get")
@cli_errors
def tx_get(tx_id: str, wait: float = typer.Option(0.0), node: str = NodeOpt, data: Path = DataOpt,
           as_json: bool = JsonOpt) -> None:
    """A transaction's receipt, with its inclusion proofs verified."""
    with _client(node, data) as c:
        _print_receipt(c.receipt(tx_id, wait=wait), as_json)


@app.command()
@cli_errors
def messages(as_json: bool = JsonOpt) -> None:
    """Message types this software knows, who may send them, and their fields."""
    from ..modules import default_registry

    registry = default_registry()
    if as_json:
        print_json([{"type": t, "roles": s.describe_roles(), "doc": s.doc,
                     "schema": msgspec.json.schema(s.struct)} for t, s in sorted(registry.messages.items())])
        return
    table = Table("type", "sender role", "fields", "what it does")
    for t, s in sorted(registry.messages.items()):
        fields = ", ".join(f.name for f in msgspec.structs.fields(s.struct))
        table.add_row(t, s.describe_roles(), fields, s.doc.split("\n")[0])
    console.print(table)


# ---------------------------------------------------------------- reading


@app.command()
@cli_errors
def state(key: str, node: str = NodeOpt, data: Path = DataOpt,
          trust: Optional[Path] = typer.Option(None, help="genesis.json to verify against (default: DATA/genesis.json)."),
          as_json: bool = JsonOpt) -> None:
    """A state value with its proof verified against a quorum checkpoint."""
    with _client(node, data, trust) as c:
        v = c.state(key)
    if as_json:
        print_json({"key": v.key, "value": v.value, "height": v.height, "verified": True})
        return
    console.print(f"[green]verified[/] at height {v.height} against {len(v.checkpoint.attestations)} attestation(s)")
    console.print_json(json.dumps(v.value)) if v.value is not None else console.print(f"{key}: absent (proven)")


@app.command()
@cli_errors
def query(module: str, name: str, params: list[str] = typer.Argument(None, help="KEY=VALUE parameters."),
          node: str = NodeOpt) -> None:
    """Run a module query, e.g. `blokauto query governance organisation id=acme`."""
    kv = dict(p.split("=", 1) for p in params or [])
    with _client(node) as c:
        print_json(c.query(module, name, **kv))


@app.command()
@cli_errors
def events(node: str = NodeOpt, from_height: Optional[int] = typer.Option(None, help="Start at this block."),
           follow: bool = typer.Option(True, help="Keep following new events.")) -> None:
    """Print committed events as JSON lines (resumes after disconnects)."""
    with _client(node) as c:
        for ev in c.events(from_height=from_height, reconnect=follow, idle_timeout=None if follow else 3):
            sys.stdout.write(json.dumps({"id": ev.id, **ev.data}, sort_keys=True) + "\n")
            sys.stdout.flush()


@app.command()
@cli_errors
def audit(data: Path = DataOpt, workers: Optional[int] = typer.Option(None), as_json: bool = JsonOpt) -> None:
    """Re-verify the whole chain from genesis: links, roots, every signature, every state root,
    and every row of the node's state and index tables. Exits 1 on any problem."""
    from ..node.audit import audit as run_audit
    from .progress import progress_bar

    with progress_bar("auditing blocks", quiet=as_json) as advance:
        report = run_audit(data, workers=workers, progress=advance)
    if as_json:
        print_json({"ok": report.ok, "height": report.height, "blocks": report.blocks, "txs": report.txs,
                    "signatures": report.signatures, "state_height": report.state_height,
                    "state_entries": report.state_entries, "findings": [str(f) for f in report.findings]})
    else:
        for f in report.findings:
            console.print(f"[red]✗[/] {escape(str(f))}")
        verdict = "[green]OK[/]" if report.ok else f"[red]{len(report.findings)} problem(s)[/]"
        console.print(f"audit {verdict}: {report.blocks} blocks, {report.txs} transactions, "
                      f"{report.signatures} signatures, {report.state_entries} state entries checked "
                      f"(state.db at height {report.state_height})")
    if not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------- reports


@app.command()
@cli_errors
def report(vin: str,
           data: Optional[Path] = typer.Option(None, "--data", "-d", help="Read a local data folder (node running or not)."),
           node: str = NodeOpt,
           json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report JSON here."),
           html_out: Optional[Path] = typer.Option(None, "--html", help="Write a self-verifying HTML page here."),
           pdf_out: Optional[Path] = typer.Option(None, "--pdf", help="Write a PDF here."),
           trust: Optional[Path] = typer.Option(None, help="genesis.json to verify against (default: DATA/genesis.json or the node's).")) -> None:
    """A vehicle's history report: verified, then written as JSON, HTML and/or PDF."""
    from ..core.block import Genesis
    from ..core.encoding import decode
    from ..report.html import render_html
    from ..report.pdf import render_pdf
    from ..verify import TrustAnchor
    from ..verify.report import verify_report

    if data is not None:
        from ..modules import default_registry
        from ..report import build_report
        from ..store.blocks import BlockLog
        from ..store.state import StateStore

        if not (data / "chain.db").exists():
            raise FileNotFoundError(f"{data} holds no chain")
        blocks, state = BlockLog(data / "chain.db"), StateStore(data / "state.db", default_registry())
        try:
            doc = build_report(blocks, state, vin)
            genesis = blocks.genesis()
        finally:
            blocks.close()
            state.close()
    else:
        with _client(node, None, trust) as c:
            doc = c.report(vin)
            genesis = c.genesis
    if trust is not None:
        genesis = decode(trust.read_bytes(), Genesis)
    assert genesis is not None
    proof = verify_report(doc, TrustAnchor.from_genesis(genesis))
    if json_out:
        json_out.write_bytes(msgspec.json.encode(doc))
    if html_out:
        html_out.write_text(render_html(doc, genesis), encoding="utf-8")
    if pdf_out:
        pdf_out.write_bytes(render_pdf(doc))
    if not (json_out or html_out or pdf_out):
        print_json(doc)
        return
    s = doc["summary"]
    console.print(f"[green]verified[/] {escape(proof.describe())}")
    console.print(f"warnings: {', '.join(s['warnings']) or 'none'}; owners {s['owners']}, accidents {len(s['accidents'])}, "
                  f"odometer {s['odometer']['status']}")
    for label, path in (("JSON", json_out), ("HTML", html_out), ("PDF", pdf_out)):
        if path:
            console.print(f"wrote {label} {path}")


@app.command()
def verify(report_file: Path = typer.Argument(..., metavar="REPORT", help="A blokauto-report/1 JSON file."),
           trust: Path = typer.Option(..., help="The consortium's genesis.json (the trust anchor)."),
           max_age_days: Optional[int] = typer.Option(None, help="Refuse a report whose checkpoint is older than this."),
           min_height: Optional[int] = typer.Option(None, help="Refuse a report older than a checkpoint you know."),
           as_json: bool = JsonOpt) -> None:
    """Verify a report offline: no node, no network. Exits 0 and says what it proved, or 1 and says what failed."""
    import time as _time

    from ..verify import TrustAnchor, VerificationError
    from ..verify.report import verify_report

    try:
        doc = msgspec.json.decode(report_file.read_bytes())
        anchor = TrustAnchor.load(trust.read_bytes())
        proof = verify_report(doc, anchor, now_ms=_time.time_ns() // 1_000_000,
                              max_age_ms=max_age_days * 86_400_000 if max_age_days is not None else None,
                              min_height=min_height)
    except (VerificationError, msgspec.DecodeError, OSError) as exc:
        if as_json:
            print_json({"ok": False, "error": str(exc)})
        else:
            err_console.print(f"[bold red]NOT VERIFIED[/]: {escape(str(exc))}")
        raise typer.Exit(1)
    if as_json:
        print_json({"ok": True, "vin": proof.vin, "entries": proof.entries, "height": proof.height, "time": proof.time,
                    "attestations": proof.attestations, "warnings": proof.warnings})
    else:
        console.print(f"[bold green]VERIFIED[/]: {escape(proof.describe())}")


# ---------------------------------------------------------------- demo and benchmarks


@app.command()
@cli_errors
def demo(data: Path = DataOpt, serve: bool = typer.Option(False, "--serve", help="Keep the node and API running."),
         port: int = typer.Option(0, help="API port (0: any free port; 8545 is usual with --serve)."),
         network: bool = typer.Option(False, "--network", help="Run it on a local NATS JetStream consortium."),
         orgs: int = typer.Option(4, help="With --network: organisations running nodes.")) -> None:
    """Start a one-node chain in DATA and run a short story through real signed transactions."""
    from .demo import run_demo, run_network_demo

    if network:
        run_network_demo(data, serve=serve, orgs=orgs, console=console)
    else:
        run_demo(data, serve=serve, port=port, console=console)


@bench_app.command("network")
@cli_errors
def bench_network(orgs: int = typer.Option(4, help="Organisations, each running a node."),
                  txs: int = typer.Option(20_000, help="Transactions to commit."),
                  workers: Optional[int] = typer.Option(1, help="Signature-checking processes per networked node."),
                  failover: bool = typer.Option(True, help="Also measure the stall when the stream leader is killed."),
                  keep: Optional[Path] = typer.Option(None, help="Keep the data folders here.")) -> None:
    """A NATS JetStream network of ORGS nodes vs one solo node, in the same run (JSON)."""
    from ..bench.network import run

    print_json(run(orgs=orgs, txs=txs, workers=workers, failover=failover, keep=keep))


@bench_app.command("throughput")
@cli_errors
def bench_throughput(txs: int = typer.Option(200_000, help="Transactions to commit."),
                     workload: str = typer.Option("vehicles", help="Transaction mix: vehicles or members."),
                     workers: Optional[int] = typer.Option(None, help="Signature-checking processes of the node."),
                     block_txs: int = typer.Option(2000, help="Transactions per block."),
                     keep: Optional[Path] = typer.Option(None, help="Keep the node's data folder here."),
                     compare_journal: bool = typer.Option(True, help="Run a second time with ids answered before "
                                                          "the intake journal's fsync, to measure what durability costs.")) -> None:
    """End-to-end committed throughput vs the raw signature-verification limit (JSON)."""
    from ..bench.throughput import run

    print_json(run(txs=txs, workload=workload, workers=workers, block_txs=block_txs, keep=keep,
                   compare_journal=compare_journal))


@bench_app.command("history")
@cli_errors
def bench_history(vehicles: int = typer.Option(1_000_000, help="Vehicles in the data set (cached between runs)."),
                  queries: int = typer.Option(300, help="History queries to time."),
                  txs: int = typer.Option(50_000, help="Lifecycle transactions to commit on top."),
                  cache: Optional[Path] = typer.Option(None, help="Where data sets are kept (default ~/.cache/blokauto/bench)."),
                  workers: Optional[int] = typer.Option(None)) -> None:
    """History query latency and lifecycle throughput at fleet scale (JSON)."""
    from ..bench.history import run

    print_json(run(vehicles=vehicles, queries=queries, txs=txs, cache=cache, workers=workers))


@bench_app.command("report")
@cli_errors
def bench_report(vehicles: int = typer.Option(1_000_000, help="Vehicles in the data set (cached between runs)."),
                 samples: int = typer.Option(50, help="Repetitions per measurement."),
                 cache: Optional[Path] = typer.Option(None, help="Where data sets are kept."),
                 browser: bool = typer.Option(True, help="Also time the verifier in Chromium.")) -> None:
    """Report assembly and verification times (Python and Chromium) and report size (JSON)."""
    from ..bench.report import run

    print_json(run(vehicles=vehicles, samples=samples, cache=cache, browser=browser))


@bench_app.command("recall")
@cli_errors
def bench_recall(vehicles: int = typer.Option(1_000_000, help="Vehicles in the data set (cached between runs)."),
                 parts: int = typer.Option(20_000_000, help="Installed parts across the fleet."),
                 samples: int = typer.Option(20, help="Repetitions per measurement."),
                 cache: Optional[Path] = typer.Option(None, help="Where data sets are kept."),
                 workers: Optional[int] = typer.Option(None)) -> None:
    """Recall resolution over the installation record, a part's trace, owner notifications and
    the node's memory at fleet scale (JSON)."""
    from ..bench.recall import run

    print_json(run(vehicles=vehicles, parts=parts, samples=samples, cache=cache, workers=workers))


def main() -> None:
    app()

