"""Reading the ledger: ``status``, ``state``, ``query``, ``events``, ``report``, ``verify``, ``audit``."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

import msgspec
import typer
from rich.markup import escape

from ..core.encoding import decode
from ..core.errors import BlokautoError
from .common import (AsOpt, DataOpt, JsonOpt, NodeOpt, OptionalDataOpt, TrustOpt, client, console, data_given,
                     err_console, flag, no_genesis, print_json, say_trust, share_origin, share_token, signing_key,
                     trust_anchor, when, yes_no)
from .errors import cli_errors, fail
from .progress import progress_bar

_TIMES = {"time"}
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true or false", type(None): "null"}


@cli_errors
def status(node: str = NodeOpt,
           data: Optional[Path] = OptionalDataOpt("Read a stopped node's folder instead of asking a node."),
           as_json: bool = JsonOpt) -> None:
    """Chain, height, head and health of a node."""
    if data is not None:
        st = _offline_status(data)
    else:
        with client(node) as c:
            st = c.status()
    lost = st.pop("lost_blocks", None) if data is not None else None
    if as_json:
        print_json(st if lost is None else {**st, "lost_blocks": lost})
    else:
        for k, v in st.items():
            if isinstance(v, dict):
                console.print(f"{k:<22} " + ", ".join(f"{sk}: {escape(json.dumps(sv))}" for sk, sv in v.items()))
            else:
                shown = when(v) if k in _TIMES and isinstance(v, int) else yes_no(v)
                console.print(f"{k:<22} {escape(shown)}")
    if lost is not None:
        fail(lost, 4)


def _offline_status(data: Path) -> dict[str, Any]:
    from ..store.blocks import BlockLog

    if not (data / "chain.db").exists():
        raise FileNotFoundError(f"{data} holds no chain (no chain.db)")
    log = BlockLog(data / "chain.db", readonly=True)
    try:
        h = log.height()
        header = log.header(h)
        genesis = log.genesis()
        out: dict[str, Any] = {"chain": genesis.chain if genesis else None, "height": h,
                               "head": header.hash().hex() if header else None,
                               "time": header.time if header else None,
                               "state_root": header.state_root if header else None,
                               "attestations": len(log.attestations(h))}
    finally:
        log.close()
    committed = _committed_elsewhere(data)
    ahead = [(height, where) for height, where in committed if height > h]
    if ahead:
        out["lost_blocks"] = (f"{' and '.join(f'{w} records block {n}' for n, w in ahead)}, beyond the last block {h} "
                              f"of chain.db: blocks were lost from the block log (this folder's files do not belong "
                              f"together); run `blokauto audit --data {data}`")
    return out


def _committed_elsewhere(data: Path) -> list[tuple[int, str]]:
    """The committed height as state.db and head.json record it (each that can be read)."""
    from ..node.audit import state_height_of
    from ..store.head import HeadMarker

    found = []
    head = HeadMarker(data).read()
    if head is not None:
        found.append((head.height, "head.json"))
    if (data / "state.db").exists() and (height := state_height_of(data)) >= 0:
        found.append((height, "state.db"))
    return found


@cli_errors
def state(key: str = typer.Argument(..., metavar="KEY", help="A state key, e.g. veh/v/VIN or gov/org/ID."),
          as_key: Optional[str] = AsOpt, node: str = NodeOpt, data: Path = DataOpt(), trust: Optional[Path] = TrustOpt,
          as_json: bool = JsonOpt) -> None:
    """A state value with its proof verified against a quorum checkpoint."""
    with client(node, data, trust, key=signing_key(data, as_key)) as c:
        v = c.state(key)
        say_trust(c)
        source = c.trust_source
    if as_json:
        print_json({"key": v.key, "value": v.value, "height": v.height, "verified": True, "trust": source})
        return
    console.print(f"[green]verified[/] at height {v.height} ({when(v.checkpoint.header.time)}) against "
                  f"{len(v.checkpoint.attestations)} attestation(s)")
    console.print_json(json.dumps(v.value)) if v.value is not None else console.print(f"{key}: absent (proven)")


@cli_errors
def query(module: Optional[str] = typer.Argument(None, metavar="MODULE", help="e.g. vehicles."),
          name: Optional[str] = typer.Argument(None, metavar="QUERY", help="e.g. history."),
          params: list[str] = typer.Argument(None, metavar="KEY=VALUE...", help="The query's parameters."),
          as_key: Optional[str] = AsOpt, node: str = NodeOpt, data: Path = DataOpt(),
          list_: bool = flag("--list", "List the queries, their parameters and who may read them."),
          min_height: int = typer.Option(-1, "--min-height", metavar="HEIGHT", min=-1,
                                         help="Wait (up to 10 s) until the node's state reflects this block.")) -> None:
    """Run a module query, e.g. `blokauto query vehicles history vin=WZZ3E5C22NM400117`. Answers are
    what the node found; for proven values use `blokauto state` or `blokauto report`. After sending
    a transaction, `--min-height` with its block reads your own write."""
    from ..modules import default_registry

    registry = default_registry()
    if list_ or module is None:
        for (m, n), spec in sorted(registry.queries.items()):
            fields = [f.name for f in msgspec.structs.fields(spec.params)] if spec.params else []
            console.print(f"{m} {n} {' '.join(f'{f}=…' for f in fields)}  [dim]{escape(spec.doc.splitlines()[0])} "
                          f"(read by: {escape(spec.read.describe())})[/]")
        return
    if name is None or (module, name) not in registry.queries:
        fail(f"no query {module} {name or ''}; `blokauto query --list` lists them", 2)
    kv = {}
    for p in params or []:
        k, sep, v = p.partition("=")
        if not sep:
            fail(f"{p!r} is not KEY=VALUE", 2)
        kv[k] = v
    _check_query_params(module, name, registry.queries[(module, name)], kv)
    with client(node, key=signing_key(data, as_key)) as c:
        print_json(c.query(module, name, min_height=min_height, **kv))


def _check_query_params(module: str, name: str, spec: Any, kv: dict[str, str]) -> None:
    """Parameter names are checked here (a usage error, exit 2); their values by the node."""
    fields = msgspec.structs.fields(spec.params) if spec.params else ()
    known = [f.name for f in fields]
    unknown = sorted(set(kv) - set(known))
    missing = [f.name for f in fields if f.required and f.name not in kv]
    usage = f"{module} {name} {' '.join(f'{f}=…' for f in known) or '(no parameters)'}"
    if unknown:
        fail(f"the query {module} {name} has no parameter {', '.join(unknown)}; it takes: {usage}", 2)
    if missing:
        fail(f"the query {module} {name} needs {', '.join(f'{m}=…' for m in missing)}; it takes: {usage}", 2)


@cli_errors
def events(node: str = NodeOpt, as_key: Optional[str] = AsOpt, data: Path = DataOpt(),
           from_height: Optional[int] = typer.Option(None, metavar="HEIGHT", min=0,
                                                     help="Start at this block (default: new ones)."),
           follow: bool = typer.Option(True, "--follow/--no-follow", metavar="",
                                       help="Keep following new events (--no-follow: stop once caught up).")) -> None:
    """Print committed events as JSON lines. Following, it resumes after a disconnect (saying so on
    stderr) and misses nothing; a stream that breaks off with --no-follow, or that the node ends
    with an error, exits 1 (the error's code and message on stderr)."""
    import httpx

    last: Optional[str] = None
    first = True
    with client(node, key=signing_key(data, as_key)) as c:
        while True:
            try:
                try:
                    for ev in c.events(from_height=from_height, last_event_id=last, reconnect=False,
                                       idle_timeout=None if follow else 3):
                        sys.stdout.write(json.dumps({"id": ev.id, **ev.data}, sort_keys=True) + "\n")
                        sys.stdout.flush()
                        last = ev.id
                except BlokautoError as err:  # the SDK raises the error event the node ended the stream with
                    if not (follow and err.code == "unavailable"):
                        fail(f"the node {node} ended the event stream with an error: [{err.code}] {err.message}", 1)
                    raise _Unavailable(f"[{err.code}] {err.message}") from None
            except (httpx.TransportError, httpx.StreamError, _Unavailable) as exc:
                if first and isinstance(exc, httpx.ConnectError):
                    fail(f"cannot reach the node at {node}: {_why(exc)}", 2)
                first = False
                where = f" after event {last}" if last else ""
                if not follow:
                    fail(f"the event stream from {node} broke off{where}: {_why(exc)}", 1)
                err_console.print(f"[yellow]the event stream from {escape(node)} broke off{where} "
                                  f"({escape(_why(exc))}); reconnecting…[/]")
                time.sleep(1.0)
                continue
            first = False
            if not follow:
                return
            err_console.print(f"[yellow]the node {escape(node)} ended the event stream"
                              f"{f' after event {last}' if last else ''}; reconnecting…[/]")
            time.sleep(0.5)


def _why(exc: Exception) -> str:
    """What broke a stream, as a phrase (httpx's own message, or the kind of failure when it has none)."""
    import httpx

    said = re.sub(r"\[Errno -?\d+\]\s*", "", str(exc)).strip()
    said = said[0].lower() + said[1:] if said else ""
    if isinstance(exc, _Unavailable):
        return f"the node ended it with {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the node closed the connection mid-way ({said})" if said else "the node closed the connection mid-way"
    if isinstance(exc, httpx.ConnectError):
        return said or "the connection was refused"
    return said or type(exc).__name__


class _Unavailable(Exception):
    """The node ended the stream with ``unavailable`` (its state is behind for now): a follower reconnects."""


@cli_errors
def audit(data: Path = DataOpt(),
          workers: Optional[int] = typer.Option(None, metavar="N", min=1,
                                                help="Signature-checking processes (default: one per core)."),
          as_json: bool = JsonOpt) -> None:
    """Re-verify a stopped node's whole folder from genesis: links, roots, every signature, every
    state root, and every row of its state and index tables. Exits 1 on any problem."""
    from ..node.audit import audit as run_audit

    if not data.is_dir():
        raise FileNotFoundError(f"{data} is not a folder")
    with progress_bar("auditing blocks", quiet=as_json) as advance:
        report = run_audit(data, workers=workers, progress=advance)
    if as_json:
        print_json({"ok": report.ok, "height": report.height, "blocks": report.blocks, "txs": report.txs,
                    "signatures": report.signatures, "state_height": report.state_height,
                    "state_entries": report.state_entries, "problems": report.problems,
                    "findings": [str(f) for f in report.findings]})
    else:
        for f in report.findings:
            console.print(f"[red]✗[/] {escape(str(f))}")
        if report.problems > len(report.findings):
            console.print(f"[red]… {report.problems - len(report.findings)} more problem(s) (the first "
                          f"{len(report.findings)} are listed)[/]")
        verdict = "[green]OK[/]" if report.ok else f"[red]{report.problems} problem(s)[/]"
        console.print(f"audit {verdict}: {report.blocks} blocks, {report.txs} transactions, "
                      f"{report.signatures} signatures, {report.state_entries} state entries checked "
                      f"(state.db at height {report.state_height})")
    if not report.ok:
        raise typer.Exit(1)


DURATION = re.compile(r"([1-9][0-9]{0,4})([smhd])")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@cli_errors
def report_share(vin: str = typer.Argument(..., metavar="VIN", help="The vehicle's VIN."),
                 expires: str = typer.Option("7d", "--expires", metavar="DURATION",
                                             help="How long the link opens the report: 30m, 12h, 7d (at most 90d)."),
                 as_key: str = typer.Option(..., "--as", "-a", envvar="BLOKAUTO_KEY", metavar="NAME",
                                            help="The holder's key (its name in DATA/keys) that signs the link."),
                 with_claims: bool = flag("--with-claims", "Let the report show the vehicle's insurance claims (the "
                                                           "holder's consent, signed into the link)."),
                 node: str = NodeOpt, data: Path = DataOpt(), trust: Optional[Path] = TrustOpt) -> None:
    """Print a link to VIN's report that anyone can open (and verify) without an account, until it
    expires; signed by the holder's key, checked by the node when opened. A sale voids it. Its
    insurance claims show only with --with-claims."""
    m = DURATION.fullmatch(expires)
    if m is None:
        fail(f"--expires takes a duration like 30m, 12h or 7d, not {expires!r}", 2)
    ttl = int(m.group(1)) * _UNIT_MS[m.group(2)]
    if ttl > 90 * 86_400_000:
        fail(f"a share link lasts at most 90 days ({expires} is longer)", 2)
    holder = signing_key(data, as_key)
    with client(node, data, trust, key=holder) as c:
        c.report(vin)  # the holder may read it now (refused otherwise: a link that cannot open is no use)
        url = c.share_report(vin, holder, ttl_ms=ttl, claims=with_claims)
    err_console.print(f"[dim]anyone with this link reads {escape(vin)}'s report until {when(_now_ms() + ttl)}; "
                      f"selling the vehicle voids it[/]")
    sys.stdout.write(url + "\n")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@cli_errors
def report(vin: str = typer.Argument(..., metavar="VIN", help="The vehicle's VIN."),
           data: Optional[Path] = OptionalDataOpt("Read a local data folder (node running or not) instead of a node."),
           node: str = NodeOpt,
           json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write the report JSON here (-: to stdout)."),
           html_out: Optional[Path] = typer.Option(None, "--html", metavar="FILE", help="Write a self-verifying HTML page here."),
           pdf_out: Optional[Path] = typer.Option(None, "--pdf", metavar="FILE", help="Write a PDF here."),
           as_key: Optional[str] = AsOpt,
           share: Optional[str] = typer.Option(None, "--share", metavar="TOKEN|URL",
                                               help="Open the report with a holder's share link (no key needed)."),
           trust: Optional[Path] = TrustOpt) -> None:
    """A vehicle's history report, verified, then summarised (and written as JSON, HTML and/or PDF)."""
    from ..core.block import Genesis
    from ..report.html import render_html
    from ..report.pdf import describe_claim, render_pdf
    from ..verify import TrustAnchor
    from ..verify.report import verify_report

    outputs = [("--json", json_out), ("--html", html_out), ("--pdf", pdf_out)]
    for option, path in outputs:
        if path is not None and str(path) != "-":
            _check_output_file(option, path)
    if data is not None:
        doc, genesis, source = _local_report(data, vin, trust)
    else:
        if share and share.startswith(("http://", "https://")) and not data_given("node"):
            node = share_origin(share)  # a link names its node; --node overrides it
        with client(node, None, trust, key=signing_key(None, as_key)) as c:
            doc = c.report(vin, share=share_token(share) if share else None)
            genesis = c.genesis
            source = c.trust_source
    if trust is not None:
        genesis, source = decode(trust.read_bytes(), Genesis), str(trust)
    proof = verify_report(doc, TrustAnchor.from_genesis(genesis))
    err_console.print(f"[dim]verified against trust anchor {escape(source)} (genesis hash {genesis.hash().hex()[:16]}…)[/]")
    if json_out is not None and str(json_out) == "-":
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
        return
    if json_out:
        json_out.write_bytes(msgspec.json.encode(doc))
    if html_out:
        html_out.write_text(render_html(doc, genesis), encoding="utf-8")
    if pdf_out:
        pdf_out.write_bytes(render_pdf(doc))
    s = doc["summary"]
    console.print(f"[green]verified[/] {escape(proof.describe())}")
    console.print(f"{s['vehicle'].get('make', '')} {s['vehicle'].get('model', '')} {s['vehicle'].get('model_year', '')}, "
                  f"status {s['status']}, {s['owners']} owner(s), {len(s['accidents'])} accident(s), odometer "
                  f"{s['odometer']['status']} (highest {s['odometer']['max_km']:,} km), as of {when(doc['as_of']['time'])}")
    console.print(f"warnings: {', '.join(s['warnings']) or 'none'}")
    for c in doc.get("insurance_claims") or []:
        console.print(escape(describe_claim(c)))
    if doc.get("insurance_claims") == []:
        console.print("insurance claims: none ever made on this vehicle")
    for label, path in (("JSON", json_out), ("HTML", html_out), ("PDF", pdf_out)):
        if path:
            console.print(f"wrote {label} {path}")
    if not (json_out or html_out or pdf_out):
        console.print("[dim]the whole report: --json FILE (or --json - for stdout), --html FILE, --pdf FILE[/]")


def _check_output_file(option: str, path: Path) -> None:
    """An output the report can be written to, checked before anything is built (exit 2 if not)."""
    if path.is_dir():
        fail(f"{option} {path} is a folder; name a file, e.g. {path / ('report' + _SUFFIX[option])}", 2)
    if not path.parent.is_dir():
        fail(f"{option} {path}: the folder {path.parent} does not exist", 2)


_SUFFIX = {"--json": ".json", "--html": ".html", "--pdf": ".pdf"}


def _local_report(data: Path, vin: str, trust: Optional[Path]) -> tuple[dict[str, Any], Any, str]:
    """The report from a local folder, and the anchor it is verified against: ``--trust``, else
    DATA/genesis.json (the folder's block log must hold that same chain; exit 3 if it does not)."""
    from ..core.block import Genesis
    from ..modules import default_registry
    from ..report import build_report
    from ..store.blocks import BlockLog
    from ..store.state import ReadOnlyState

    anchor = trust_anchor(data, trust)
    if anchor is None:
        raise FileNotFoundError(no_genesis(data))
    if not (data / "chain.db").exists():
        raise FileNotFoundError(f"{data} holds no chain (no chain.db)")
    genesis = decode(anchor.read_bytes(), Genesis)
    blocks, st = BlockLog(data / "chain.db", readonly=True), ReadOnlyState(data / "state.db", default_registry())
    try:
        stored = blocks.genesis()
        if trust is None and (stored is None or stored.hash() != genesis.hash()):
            fail(f"not verified: the block log {data / 'chain.db'} is not of the chain {anchor} anchors (genesis hash "
                 f"{stored.hash().hex()[:16] + '…' if stored else 'none'} vs {genesis.hash().hex()[:16]}…); "
                 f"nothing in it is trusted", 3)
        doc = build_report(blocks, st, vin)
    finally:
        blocks.close()
        st.close()
    return doc, genesis, str(anchor)


@cli_errors
def verify(report_file: Path = typer.Argument(..., metavar="REPORT", help="A blokauto-report/1 JSON file."),
           trust: Path = typer.Option(..., metavar="FILE", help="The consortium's genesis.json (the trust anchor)."),
           max_age_days: Optional[int] = typer.Option(None, metavar="DAYS", min=0, help="Refuse a report whose checkpoint is older than this."),
           min_height: Optional[int] = typer.Option(None, metavar="HEIGHT", min=0, help="Refuse a report older than a checkpoint you know."),
           as_json: bool = JsonOpt) -> None:
    """Verify a report offline: no node, no network. Exits 0 and says what it proved, or 3 and says
    what failed (2 when a file cannot be read)."""
    import time as _time

    from ..verify import TrustAnchor, VerificationError
    from ..verify.report import FORMAT as REPORT_FORMAT
    from ..verify.report import verify_report

    for path, what in ((report_file, "report"), (trust, "trust anchor")):
        if not path.is_file():
            fail(f"the {what} file {path} does not exist", 2)
    try:
        doc = msgspec.json.decode(report_file.read_bytes())
    except msgspec.DecodeError as exc:
        fail(f"{report_file} is not JSON ({exc})", 2)
    except RecursionError:
        fail(f"{report_file} cannot be read: its JSON is nested too deeply to be a report", 2)
    if not isinstance(doc, dict):
        fail(f"{report_file} cannot be read as a report: it holds a JSON {_JSON_KINDS.get(type(doc), 'value')}, "
             f"not a {REPORT_FORMAT} document (a JSON object)", 2)
    if doc.get("format") != REPORT_FORMAT:
        fail(f"{report_file} cannot be read as a report: its format is {doc.get('format')!r}, not {REPORT_FORMAT!r}",
             2)
    try:
        anchor = TrustAnchor.load(trust.read_bytes())
    except (VerificationError, RecursionError) as exc:
        why = exc if isinstance(exc, VerificationError) else "its JSON is nested too deeply"
        fail(f"the trust anchor file {trust} cannot be read: {why}", 2)
    try:
        proof = verify_report(doc, anchor, now_ms=_time.time_ns() // 1_000_000,
                              max_age_ms=max_age_days * 86_400_000 if max_age_days is not None else None,
                              min_height=min_height)
    except RecursionError:
        fail(f"{report_file} cannot be read: a part of it is nested too deeply to be a report", 2)
    except VerificationError as exc:
        if as_json:
            print_json({"ok": False, "error": str(exc)})
        else:
            err_console.print(f"[bold red]NOT VERIFIED[/]: {escape(str(exc))}")
        raise typer.Exit(3)
    if as_json:
        print_json({"ok": True, "vin": proof.vin, "entries": proof.entries, "height": proof.height, "time": proof.time,
                    "attestations": proof.attestations, "warnings": proof.warnings})
    else:
        console.print(f"[bold green]VERIFIED[/]: {escape(proof.describe())}")
