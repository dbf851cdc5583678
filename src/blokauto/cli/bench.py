"""``blokauto bench``: benchmarks that print one JSON object each, with the raw limit of the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import group, print_json
from .errors import cli_errors

bench_app = group("Benchmarks; each prints one JSON object (docs/benchmarks.md explains every field).")

WorkersOpt = typer.Option(None, metavar="N", min=1, help="Signature-checking processes of the node (default: one per core).")
CacheOpt = typer.Option(None, metavar="DIR", help="Where data sets are kept between runs (default ~/.cache/blokauto/bench).")
VehiclesOpt = typer.Option(1_000_000, metavar="N", min=1, help="Vehicles in the data set (cached between runs).")


@bench_app.command("throughput")
@cli_errors
def bench_throughput(txs: int = typer.Option(200_000, metavar="N", min=1, help="Transactions to commit."),
                     workload: str = typer.Option("vehicles", metavar="vehicles|members",
                                                  help="Transaction mix: vehicle lifecycle events, or member registrations."),
                     workers: Optional[int] = WorkersOpt,
                     block_txs: int = typer.Option(2000, metavar="N", min=1, help="Transactions per block."),
                     keep: Optional[Path] = typer.Option(None, metavar="DIR", help="Keep the node's data folder here."),
                     compare_journal: bool = typer.Option(True, "--compare-journal/--no-compare-journal", metavar="",
                                                          help="Run a second time with ids answered before the intake "
                                                               "journal's fsync, to measure what durability costs.")) -> None:
    """End-to-end committed throughput vs the raw signature-verification limit."""
    from ..bench.throughput import run

    print_json(run(txs=txs, workload=workload, workers=workers, block_txs=block_txs, keep=keep,
                   compare_journal=compare_journal))


@bench_app.command("history")
@cli_errors
def bench_history(vehicles: int = VehiclesOpt,
                  queries: int = typer.Option(300, metavar="N", min=1, help="History queries to time."),
                  txs: int = typer.Option(50_000, metavar="N", min=1, help="Lifecycle transactions to commit on top."),
                  cache: Optional[Path] = CacheOpt, workers: Optional[int] = WorkersOpt) -> None:
    """History query latency and lifecycle throughput at fleet scale."""
    from ..bench.history import run

    print_json(run(vehicles=vehicles, queries=queries, txs=txs, cache=cache, workers=workers))


@bench_app.command("report")
@cli_errors
def bench_report(vehicles: int = VehiclesOpt,
                 samples: int = typer.Option(50, metavar="N", min=1, help="Repetitions per measurement."),
                 cache: Optional[Path] = CacheOpt,
                 browser: bool = typer.Option(True, "--browser/--no-browser", metavar="",
                                              help="Also time the verifier in Chromium.")) -> None:
    """Report assembly and verification times (Python and Chromium) and report size."""
    from ..bench.report import run

    print_json(run(vehicles=vehicles, samples=samples, cache=cache, browser=browser))


@bench_app.command("console")
@cli_errors
def bench_console(vehicles: int = typer.Option(1_000_000, metavar="N", min=10,
                                               help="Vehicles in the data set (cached between runs)."),
                  entries: int = typer.Option(200, metavar="N", min=3,
                                              help="History entries of the vehicle whose page is timed."),
                  samples: int = typer.Option(20, metavar="N", min=1, help="Fresh page loads per page."),
                  cache: Optional[Path] = CacheOpt) -> None:
    """The web console's time to a verified first render in Chromium: a vehicle's page (its report
    verified in the page) and the explorer's newest blocks, with the node's answers and the in-page
    verification alone in the same run."""
    from ..bench.console import run

    print_json(run(vehicles=vehicles, entries=entries, samples=samples, cache=cache))


@bench_app.command("recall")
@cli_errors
def bench_recall(vehicles: int = VehiclesOpt,
                 parts: int = typer.Option(20_000_000, metavar="N", min=1, help="Installed parts across the fleet."),
                 samples: int = typer.Option(20, metavar="N", min=1, help="Repetitions per measurement."),
                 cache: Optional[Path] = CacheOpt, workers: Optional[int] = WorkersOpt) -> None:
    """Recall resolution over the installation record, a part's trace, owner notifications and the
    node's memory at fleet scale."""
    from ..bench.recall import run

    print_json(run(vehicles=vehicles, parts=parts, samples=samples, cache=cache, workers=workers))


@bench_app.command("network")
@cli_errors
def bench_network(orgs: int = typer.Option(4, metavar="N", min=1, help="Organisations, each running a node."),
                  txs: int = typer.Option(20_000, metavar="N", min=1, help="Transactions to commit."),
                  workers: Optional[int] = typer.Option(1, metavar="N", min=1, help="Signature-checking processes per networked node."),
                  failover: bool = typer.Option(True, "--failover/--no-failover", metavar="",
                                                help="Also measure the stall when the stream leader is killed."),
                  keep: Optional[Path] = typer.Option(None, metavar="DIR", help="Keep the data folders here.")) -> None:
    """A NATS JetStream network of N nodes vs one solo node, in the same run."""
    from ..bench.network import run

    print_json(run(orgs=orgs, txs=txs, workers=workers, failover=failover, keep=keep))


@bench_app.command("api")
@cli_errors
def bench_api(vehicles: int = typer.Option(1_000, metavar="N", min=20,
                                           help="Vehicles in the data set (cached between runs)."),
              requests: int = typer.Option(2_000, metavar="N", min=1, help="History queries to time per caller kind."),
              threads: int = typer.Option(8, metavar="N", min=1, help="Clients at once in the concurrent phase."),
              cache: Optional[Path] = CacheOpt) -> None:
    """Signed history reads over HTTP with read policies (a holder, a consented insurer), and the
    CPU of a node's authentication path per request, against a bare Ed25519 verification."""
    from ..bench.api import run

    print_json(run(vehicles=vehicles, requests=requests, threads=threads, cache=cache))


@bench_app.command("payments")
@cli_errors
def bench_payments(channels: int = typer.Option(1_000, metavar="N", min=1, help="Payment channels the merchant checks vouchers of."),
                   vouchers: int = typer.Option(100_000, metavar="N", min=1, help="Vouchers to check (spread over the channels)."),
                   accounts: int = typer.Option(1_000, metavar="N", min=2, help="Funded accounts the transfers move between."),
                   transfers: int = typer.Option(20_000, metavar="N", min=1, help="Transfers to commit through the node."),
                   disputes: int = typer.Option(20, metavar="N", min=1, help="Disputed channel closes to time."),
                   challenge: int = typer.Option(3, metavar="N", min=0,
                                                 help="Channels settled after their 60 s challenge period (0: skip that wait)."),
                   workers: Optional[int] = WorkersOpt,
                   keep: Optional[Path] = typer.Option(None, metavar="DIR", help="Keep the node's data folder here.")) -> None:
    """Vouchers checked per second by the merchant side of the SDK, transfers committed per second,
    disputed channel closes, each against the raw verification limit of the same run."""
    from ..bench.payments import run

    print_json(run(channels=channels, vouchers=vouchers, accounts=accounts, transfers=transfers, disputes=disputes,
                   challenge=challenge, workers=workers, keep=keep))


@bench_app.command("telemetry")
@cli_errors
def bench_telemetry(vehicles: int = typer.Option(100, metavar="N", min=1, help="Cars sending batches."),
                    batches: int = typer.Option(10, metavar="N", min=1, help="Batches each car sends."),
                    samples: int = typer.Option(1_000, metavar="N", min=1, max=10_000, help="Samples per batch."),
                    policies: int = typer.Option(100_000, metavar="N", min=0,
                                                 help="Policies whose premium statements are timed (0: skip)."),
                    crashes: int = typer.Option(50, metavar="N", min=0, help="Crashes timed to their opened claim."),
                    workers: Optional[int] = WorkersOpt,
                    keep: Optional[Path] = typer.Option(None, metavar="DIR", help="Keep the node's data folder here.")) -> None:
    """Samples committed per second through device-signed batches (against the raw per-batch limit of
    the same run), premium statements for many policies, and a crash's time to its opened claim."""
    from ..bench.telemetry import run

    print_json(run(vehicles=vehicles, batches=batches, samples=samples, policies=policies, crashes=crashes,
                   workers=workers, keep=keep))


@bench_app.command("ota")
@cli_errors
def bench_ota(vehicles: int = typer.Option(100_000, metavar="N", min=1,
                                           help="Vehicles in the data set, each with two ECUs (cached between runs)."),
              samples: int = typer.Option(20, metavar="N", min=1, help="Campaign progress queries to time."),
              verifies: int = typer.Option(20, metavar="N", min=1,
                                           help="Vehicle-side full verifications of an update to time."),
              cache: Optional[Path] = CacheOpt, workers: Optional[int] = WorkersOpt) -> None:
    """Signed install manifests committed per second against the raw verification limit, a software
    recall's progress over the whole fleet, and a vehicle's Uptane full verification of an update."""
    from ..bench.ota import run

    print_json(run(vehicles=vehicles, samples=samples, verifies=verifies, cache=cache, workers=workers))


@bench_app.command("energy")
@cli_errors
def bench_energy(orders: int = typer.Option(100_000, metavar="N", min=1,
                                            help="Orders placed for one interval of one zone, then cleared."),
                 meters: int = typer.Option(10_000, metavar="N", min=1,
                                            help="Meters (each with its own funded owner) the orders are spread over; "
                                                 "every one reads and settles."),
                 workers: Optional[int] = WorkersOpt,
                 block_txs: int = typer.Option(2000, metavar="N", min=1, help="Transactions per block."),
                 keep: Optional[Path] = typer.Option(None, metavar="DIR", help="Keep the node's data folder here.")) -> None:
    """Orders committed per second against the raw limit of the same run, the clearing of one interval's
    orders, and its settlement against every meter's reading."""
    from ..bench.energy import run

    print_json(run(orders=orders, meters=meters, workers=workers, block_txs=block_txs, keep=keep))


@bench_app.command("sourcing")
@cli_errors
def bench_sourcing(lots: int = typer.Option(100_000, metavar="N", min=1_000,
                                            help="Material lots, mine to battery pack, in the origins data set "
                                                 "(cached between runs)."),
                   handoffs: int = typer.Option(1_000_000, metavar="N", min=1_000,
                                                help="Shipments and receipts (per item) in the logistics data set "
                                                     "(cached between runs)."),
                   samples: int = typer.Option(200, metavar="N", min=1,
                                               help="Timed queries per measurement (origins: of different packs)."),
                   fresh: bool = typer.Option(False, "--fresh", metavar="", help="Rebuild both data sets even if cached."),
                   cache: Optional[Path] = CacheOpt, workers: Optional[int] = WorkersOpt) -> None:
    """A battery pack's material origins (cobalt six steps from the mine) and the slowest legs, lanes and
    stock in transit over a million handoffs, through a node, with the raw limits of the same run."""
    from ..bench.sourcing import run

    print_json(run(lots=lots, handoffs=handoffs, samples=samples, fresh=fresh, cache=cache, workers=workers))
