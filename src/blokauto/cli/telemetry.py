"""``blokauto telemetry`` and ``blokauto vehicle``: a vehicle's batches of samples, crashes and device keys.

    telemetry send --vin VIN --samples FILE --key DEVICE    commit a batch; the samples go to the node beside it
    telemetry batches VIN | batch VIN SEQ                   the committed batches; one, proven
    telemetry samples VIN SEQ [--out FILE]                  the samples the node holds, checked against the root
    telemetry prove VIN SEQ INDEX                           one sample and its inclusion proof, verified here
    telemetry check-batch VIN SEQ --samples FILE            an insurer's recomputation (exit 1 naming the mismatch)
    telemetry crash VIN --decel N --odometer-m N --key DEVICE
    telemetry erase VIN --as HOLDER [--before MS]           the holder erases the node's copy of the samples
    vehicle devices VIN | add-device-key | rotate-device-key | revoke-device-key

Transactions are signed with ``--key`` (a name in DATA/keys, or a key file: a vehicle's device key
often lives outside the consortium's folders), reads with ``--as``. A samples file is a JSON array
of ``[t, speed, accel, lat, lon, odometer_m, limit, events]`` (docs/telemetry.md#samples).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..keystore import KeyStore
from .common import (AsOpt, DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, flag, group, print_json, say_trust,
                     signing_key, when)
from .errors import cli_errors, fail
from .tx import WaitOpt, print_receipt

telemetry_app = group("A vehicle's telemetry: batches of samples committed by their Merkle root and trip summary "
                      "(the samples stay off the ledger, at the node that received them), crashes, erasure.")
vehicle_app = group("A vehicle's device keys (list, add, rotate, revoke) and its over-the-air updates (update).")

VinArg = typer.Argument(..., metavar="VIN", help="The vehicle's VIN.")
SeqArg = typer.Argument(..., metavar="SEQ", min=1,
                        help="The batch's sequence number (1, 2, ...; `telemetry batches` lists them).")
DeviceOpt = typer.Option(..., "--key", "-k", metavar="NAME|FILE",
                         help="One of the vehicle's device keys: its name in DATA/keys, or a key file (….json).")
SenderOpt = typer.Option(..., "--key", "-k", metavar="NAME|FILE",
                         help="The sender: the vehicle's title holder or a key of its maker (DATA/keys, or a key file).")
SamplesFileOpt = typer.Option(..., "--samples", metavar="FILE",
                              help="A JSON array of samples, each [t, speed, accel, lat, lon, odometer_m, limit, events].")


def read_samples(path: Path) -> list[Any]:
    """The samples in a JSON file, typed (a usage error, exit 2, names what is not a sample)."""
    from ..client.telemetry import as_samples

    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if isinstance(doc, dict) and "samples" in doc:  # what `telemetry samples --json` prints
        doc = doc["samples"]
    if not isinstance(doc, list):
        raise ValueError(f"{path} holds no JSON array of samples")
    return as_samples(doc)


def _did(data: Path, given: str) -> str:
    """A did:key as given, else the did of a key named in DATA/keys or of a key file."""
    if given.startswith("did:key:"):
        return given
    if given.endswith(".json") or "/" in given:
        return str(signing_key(data, given).did)
    return KeyStore(data / "keys").entry(given).did


def _telemetry(node: str, data: Path, trust: Optional[Path], key: Any) -> Any:
    from ..client.telemetry import Telemetry

    return Telemetry(client(node, data, trust, key=key))


def _summary_line(s: Any) -> str:
    return (f"{s.samples} samples, {when(s.start)} to {when(s.end)} ({s.duration_s} s), {s.distance_m} m "
            f"({s.night_distance_m} m at night), {s.over_limit_s} s over the limit, {s.harsh_brakes} harsh brake(s), "
            f"{s.crash_events} crash event(s), top speed {s.max_speed} km/h")


# ---------------------------------------------------------------- the vehicle


@telemetry_app.command("send")
@cli_errors
def send(vin: str = typer.Option(..., "--vin", metavar="VIN", help="The vehicle whose samples these are."),
         samples: Path = SamplesFileOpt, key: str = DeviceOpt,
         utc_offset: int = typer.Option(0, "--utc-offset", metavar="MINUTES", min=-720, max=840,
                                        help="The vehicle's UTC offset in minutes (night driving is judged in local time)."),
         wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
         as_json: bool = JsonOpt) -> None:
    """Commit a batch of samples: the device key signs their Merkle root and trip summary (computed
    here), and the samples go to the node beside the transaction; the node checks both, keeps the
    samples off the ledger and submits the transaction (exit 1 if it failed at execution)."""
    from ..client.telemetry import make_batch

    typed = read_samples(samples)
    device = signing_key(data, key)
    tel = _telemetry(node, data, trust, device)
    with tel.client:
        result = tel.send_batch(vin, typed, device, utc_offset_min=utc_offset, wait=wait)
        if isinstance(result, str):
            console.print(result)
            return
        say_trust(tel.client)
        print_receipt(result, as_json)  # exit 1 if it failed at execution
        if not as_json:
            seq = next(e["seq"] for e in result.events if e["type"] == "telemetry.batch_committed")
            msg = make_batch(vin, typed, utc_offset)
            console.print(f"batch {seq} of {escape(vin)}: {_summary_line(msg.summary)}; root {msg.root}")


@telemetry_app.command("crash")
@cli_errors
def crash(vin: str = VinArg,
          decel: int = typer.Option(..., "--decel", metavar="MM_S2", min=0,
                                    help="Peak deceleration in mm/s² (39,000 is 4 g)."),
          airbag: bool = flag("--airbag", "The airbag deployed."),
          impact: bool = flag("--impact", "The ECU detected an impact."),
          odometer_m: int = typer.Option(..., "--odometer-m", metavar="METRES", min=0,
                                         help="The odometer at the crash, in metres."),
          at: Optional[int] = typer.Option(None, "--at", metavar="MS",
                                           help="When it happened, ms since the epoch (default: now)."),
          key: str = DeviceOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A device key reports a crash: it enters the vehicle's history and opens a claim on its active
    policy (exit 1 if the ledger refused it)."""
    device = signing_key(data, key)
    tel = _telemetry(node, data, trust, device)
    with tel.client:
        info = tel.report_crash(vin, device, decel_mms2=decel, odometer_m=odometer_m, t=at, airbag=airbag,
                                impact=impact, wait=wait)
        say_trust(tel.client)
        print_receipt(info, as_json)


# ---------------------------------------------------------------- reading


@telemetry_app.command("batches")
@cli_errors
def batches(vin: str = VinArg,
            limit: int = typer.Option(100, "--limit", metavar="N", min=1, max=1000, help="At most this many batches."),
            offset: int = typer.Option(0, "--offset", metavar="N", min=0, help="Skip this many (oldest first)."),
            as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
            trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """A vehicle's committed batches, oldest first: read by whoever reads its driving data (the
    holder, its devices and maker, consented organisations, regulators, police)."""
    tel = _telemetry(node, data, trust, signing_key(data, as_key))
    with tel.client:
        r = tel.batches(vin, limit=limit, offset=offset, min_height=tel.client.status()["height"])
    if as_json:
        print_json(r)
        return
    console.print(f"{escape(vin)}: {r['total']} batch(es), the last ending {when(r['last_end'] or None)}")
    if r["batches"]:
        table = Table("seq", "first sample", "last sample", "height", "root")
        for b in r["batches"]:
            table.add_row(str(b["seq"]), when(b["start"]), when(b["end"]), str(b["height"]), b["root"])
        console.print(table)


@telemetry_app.command("batch")
@cli_errors
def batch(vin: str = VinArg, seq: int = SeqArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(),
          node: str = NodeOpt, trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """One committed batch (root, trip summary, device, running totals), its state proof verified
    against the trust anchor."""
    tel = _telemetry(node, data, trust, signing_key(data, as_key))
    with tel.client:
        rec = tel.batch(vin, seq, min_height=tel.client.status()["height"])
        say_trust(tel.client)
    if as_json:
        print_json({**rec.value, "verified": True, "proven_at": rec.checkpoint.header.height})
        return
    console.print(f"[green]verified[/] batch {seq} of {escape(vin)}, committed at height {rec.height} by device "
                  f"{escape(rec.device)} (proof at height {rec.checkpoint.header.height})")
    console.print(f"  root {rec.root}, UTC offset {rec.utc_offset_min} min")
    console.print(f"  {_summary_line(rec.summary)}")


@telemetry_app.command("samples")
@cli_errors
def samples(vin: str = VinArg, seq: int = SeqArg,
            out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE",
                                               help="Write the samples (a JSON array) to this file."),
            as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
            trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The samples of a batch as the node holds them, checked against the committed root and
    summary: read by the holder and organisations it consented to for location."""
    from ..core.encoding import to_builtins

    tel = _telemetry(node, data, trust, signing_key(data, as_key))
    with tel.client:
        got = tel.samples(vin, seq, min_height=tel.client.status()["height"])
        say_trust(tel.client)
    rows = to_builtins(got.samples)
    if out is not None:
        out.write_text(json.dumps(rows) + "\n")
    if as_json:
        print_json({"vin": vin, "seq": seq, "root": got.record.root, "count": len(rows), "verified": True,
                    "samples": rows})
        return
    console.print(f"[green]verified[/] {len(rows)} samples of batch {seq} of {escape(vin)} against root "
                  f"{got.record.root}" + (f"; written to {escape(str(out))}" if out is not None else
                                          " (--out FILE writes them, --json prints them)"))


@telemetry_app.command("prove")
@cli_errors
def prove(vin: str = VinArg, seq: int = SeqArg,
          index: int = typer.Argument(..., metavar="INDEX", min=0, help="The sample's position in the batch, from 0."),
          as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """One sample and its inclusion proof, verified here against the batch's committed root (itself
    proven against the trust anchor): evidence of one reading without disclosing the others."""
    from ..core.encoding import to_builtins

    tel = _telemetry(node, data, trust, signing_key(data, as_key))
    with tel.client:
        p = tel.sample(vin, seq, index, min_height=tel.client.status()["height"])
        say_trust(tel.client)
    doc = {"vin": vin, "seq": seq, "index": index, "count": p.count, "root": p.record.root,
           "sample": to_builtins(p.sample), "proof": p.proof, "verified": True}
    if as_json:
        print_json(doc)
        return
    console.print(f"sample {index} of {p.count} in batch {seq} of {escape(vin)}: {json.dumps(doc['sample'])}")
    console.print(f"  root  {p.record.root}")
    for h in p.proof:
        console.print(f"  proof {h}")
    console.print("[green]verified[/]")


@telemetry_app.command("check-batch")
@cli_errors
def check_batch(vin: str = VinArg, seq: int = SeqArg, samples_file: Path = SamplesFileOpt,
                as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
                trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Check samples someone handed you against the batch the vehicle committed (root and trip
    summary, read with its proof): exit 0 if they are that batch, 1 naming the first difference."""
    from ..client.telemetry import BatchMismatch, SampleError

    given = read_samples(samples_file)
    tel = _telemetry(node, data, trust, signing_key(data, as_key))
    with tel.client:
        try:
            rec = tel.check_batch(vin, seq, given)
        except BatchMismatch as exc:
            if as_json:
                print_json({"vin": vin, "seq": seq, "match": False, "field": exc.field, "committed": exc.committed,
                            "recomputed": exc.recomputed})
                raise typer.Exit(1) from None
            fail(f"the samples are not batch {seq} of {vin}: {exc.field} committed {exc.committed}, recomputed "
                 f"from the samples {exc.recomputed}")
        except SampleError as exc:
            fail(f"the samples are not batch {seq} of {vin}: they cannot form a batch ({exc.reason})")
        say_trust(tel.client)
    if as_json:
        print_json({"vin": vin, "seq": seq, "match": True, "root": rec.root, "summary": rec.summary})
    else:
        console.print(f"[green]match[/]: the {rec.summary.samples} samples are batch {seq} of {escape(vin)} (root "
                      f"{rec.root}, summary recomputed)")


@telemetry_app.command("erase")
@cli_errors
def erase(vin: str = VinArg,
          before: Optional[int] = typer.Option(None, "--before", metavar="MS", min=0,
                                               help="Erase only batches whose last sample is before this time (ms)."),
          as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The holder erases the samples this node keeps of the vehicle; the ledger keeps every root and
    summary. Other nodes that received batches of it keep theirs (erase there too)."""
    tel = _telemetry(node, data, trust, signing_key(data, as_key))
    with tel.client:
        n = tel.erase_samples(vin, before)
    if as_json:
        print_json({"vin": vin, "erased": n, "before": before})
    else:
        console.print(f"erased the samples of {n} batch(es) of {escape(vin)} from {escape(node)}"
                      + (f" (those ending before {when(before)})" if before is not None else "")
                      + "; the ledger keeps their roots and summaries")


# ---------------------------------------------------------------- device keys


@vehicle_app.command("devices")
@cli_errors
def devices(vin: str = VinArg, as_key: Optional[str] = AsOpt, data: Path = DataOpt(), node: str = NodeOpt,
            trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The vehicle's current device keys, and the retired ones with the block from which nothing they
    sign counts (read by whoever reads its history)."""
    tel = _telemetry(node, data, trust, signing_key(data, as_key))
    with tel.client:
        r = tel.devices(vin, min_height=tel.client.status()["height"])
    if as_json:
        print_json(r)
        return
    console.print(f"{escape(vin)}: {len(r['current'])} current device key(s)")
    for did in r["current"]:
        console.print(f"  {escape(did)}")
    for k in r["retired"]:
        console.print(f"  retired: {escape(k['did'])} ({k['reason']}, from block {k['height']})")


def _send(key: str, data: Path, node: str, trust: Optional[Path], msg: Any, cosigners: list[Any], wait: float,
          as_json: bool) -> None:
    sender = signing_key(data, key)
    with client(node, data, trust, key=sender) as c:
        info = c.send(msg, sender, *cosigners, wait=wait)
        say_trust(c)
        print_receipt(info, as_json)


@vehicle_app.command("add-device-key")
@cli_errors
def add_device_key(vin: str = VinArg,
                   device: str = typer.Option(..., "--device", metavar="NAME|FILE",
                                              help="The new device key (DATA/keys, or a key file): it co-signs, "
                                                   "proving it holds the key."),
                   key: str = SenderOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                   trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Fit a new device key (a new ECU): sent by the holder or the maker, co-signed by the new key."""
    from ..modules.vehicles.messages import AddDeviceKey

    new = signing_key(data, device)
    _send(key, data, node, trust, AddDeviceKey(vin=vin, key=new.did), [new], wait, as_json)


@vehicle_app.command("rotate-device-key")
@cli_errors
def rotate_device_key(vin: str = VinArg,
                      old: str = typer.Option(..., "--old", metavar="NAME|FILE",
                                              help="The device key going out (DATA/keys, or a key file); it co-signs."),
                      new: str = typer.Option(..., "--new", metavar="NAME|FILE",
                                              help="The device key coming in (DATA/keys, or a key file); it co-signs."),
                      key: str = SenderOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                      trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Replace a device key: the old key, the new key and the holder or the maker sign; from that
    block on only the new key counts."""
    from ..modules.vehicles.messages import RotateDeviceKey

    old_key, new_key = signing_key(data, old), signing_key(data, new)
    _send(key, data, node, trust, RotateDeviceKey(vin=vin, old=old_key.did, new=new_key.did), [old_key, new_key],
          wait, as_json)


@vehicle_app.command("revoke-device-key")
@cli_errors
def revoke_device_key(vin: str = VinArg,
                      device: str = typer.Argument(..., metavar="DEVICE",
                                                   help="The device key: its did:key, its name in DATA/keys or a key file."),
                      reason: str = typer.Option(..., "--reason", metavar="lost|compromised|ecu_replaced",
                                                 help="Why it leaves service."),
                      key: str = SenderOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
                      trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """The holder or the maker takes a device key out of service at once: from that block on nothing
    it signs counts for the vehicle (readings, telemetry, payments)."""
    from ..modules.vehicles.messages import RevokeDeviceKey

    if reason not in ("lost", "compromised", "ecu_replaced"):
        raise ValueError(f"--reason {reason!r} is not one of lost, compromised, ecu_replaced")
    _send(key, data, node, trust, RevokeDeviceKey(vin=vin, key=_did(data, device), reason=reason), [], wait, as_json)
