"""The ``blokauto`` command line: the root command and where each group of commands lives.

    init, keys ...        keys.py     a new chain's trust anchor and signing keys
    node ...              node.py     run a node, join from a snapshot, back up, restore, scrub
    tx ..., messages      tx.py       build, sign, submit and look up transactions
    consent ...           consent.py  the holder grants, revokes and lists consent to a vehicle's data
    sourcing ...          sourcing.py material lots mine to pack, handoffs, slow legs, battery passports
    privacy ...           privacy.py  personal data in the vault: record, disclose, erase, export
    payments ...          payments.py currencies, accounts, wallet limits, tariffs, channels, journeys, paid sales
    insurance ...         insurance.py products, policies, premium statements (checked to the cent), claims
    energy ...            energy.py   zones and terms, meters, bids and asks per interval, clearing, settlement
    telemetry ...         telemetry.py a vehicle's batches of samples (kept off the ledger), crashes, erasure
    vehicle ...           telemetry.py a vehicle's device keys: list, add, rotate, revoke
    status, state, query, read.py     read the ledger, verify reports, audit a folder
    events, report, verify, audit,
    report share VIN                  a link to a report that opens without an account
    demo                  demo.py     the story on a one-node chain (or a local network)
    network ...           network.py  a local consortium on NATS JetStream
    bench ...             bench.py    benchmarks

Exit codes (every command): 0 success, 1 refused or a check found problems, 2 usage (a missing
file, a bad value, an unreachable node), 3 verification failed, 4 the data folder is damaged.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer
from typer._click.exceptions import ClickException  # Typer's own Click (as cli/common.py reads it)
from typer.core import TyperGroup

from . import read, tx
from .bench import bench_app
from ..logs import configure
from .common import DEFAULT_PORT, DataOpt, LogFormatOpt, console, flag
from .consent import consent_app
from .sourcing import sourcing_app
from .energy import energy_app
from .errors import cli_errors
from .insurance import insurance_app
from .keys import init, keys_app
from .network import network_app
from .node import node_app
from .payments import payments_app
from .privacy import privacy_app
from .software import software_app
from .telemetry import telemetry_app, vehicle_app


class _Commands(TyperGroup):
    """``blokauto report share VIN`` runs the command report-share (``report`` itself takes a VIN). A
    command asked for JSON logs (``--log-format json``) that Click refuses before it runs (a value out
    of range, an unknown option) says so as one JSON line too, with the exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args[:2] == ["report", "share"]:
            args = ["report-share", *args[2:]]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ClickException as exc:
            if not _asks_json_logs(sys.argv[1:]):
                raise
            configure("json")
            logging.getLogger("blokauto.cli").error(exc.format_message(), extra={"exit_code": exc.exit_code})
            raise SystemExit(exc.exit_code) from None


def _asks_json_logs(argv: list[str]) -> bool:
    return "--log-format=json" in argv or any(a == "--log-format" and b == "json" for a, b in zip(argv, argv[1:]))


app = typer.Typer(
    cls=_Commands,
    help="blokauto: a shared, verifiable ledger for the whole life of a vehicle.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, rich_markup_mode="markdown",
)
app.command()(init)
app.add_typer(keys_app, name="keys")
app.add_typer(node_app, name="node")
app.add_typer(tx.tx_app, name="tx")
app.command()(tx.messages)
app.add_typer(consent_app, name="consent")
app.add_typer(sourcing_app, name="sourcing")
app.add_typer(privacy_app, name="privacy")
app.add_typer(payments_app, name="payments")
app.add_typer(insurance_app, name="insurance")
app.add_typer(energy_app, name="energy")
app.add_typer(telemetry_app, name="telemetry")
app.add_typer(software_app, name="software")
app.add_typer(vehicle_app, name="vehicle")
for command in (read.status, read.state, read.query, read.events, read.report, read.verify, read.audit):
    app.command()(command)
app.command("report-share", hidden=True)(read.report_share)  # `blokauto report share VIN`
app.add_typer(network_app, name="network")
app.add_typer(bench_app, name="bench")


@app.command()
@cli_errors
def demo(data: Path = DataOpt("Folder for the demo chain (an earlier demo's folder is replaced if it holds only what a "
                                   "demo writes; any other is refused)."),
         serve: bool = flag("--serve", "Keep the node and its API running after the story (Ctrl-C stops it)."),
         port: int = typer.Option(DEFAULT_PORT, metavar="PORT", min=0, max=65535,
                                  help="API port with --serve (0: any free port; if it is taken, the demo says which it used)."),
         network: bool = flag("--network", "Run the story on a local NATS JetStream consortium instead."),
         orgs: int = typer.Option(4, metavar="N", min=1, help="With --network: organisations running nodes."),
         log_format: str = LogFormatOpt) -> None:
    """Start a one-node chain in DATA and tell a car's story through real signed transactions (the
    story on stdout; with --log-format json, the node's log lines as JSON on stderr)."""
    from ..logs import check, configure
    from .demo import run_demo, run_network_demo

    if network:  # the nodes log, each into its node.log
        run_network_demo(data, serve=serve, orgs=orgs, console=console, log_format=check(log_format))
    else:
        configure(log_format)
        run_demo(data, serve=serve, port=port, console=console)


def main() -> None:
    app()
