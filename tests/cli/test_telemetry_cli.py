"""``blokauto telemetry`` and ``blokauto vehicle`` through the real CLI against a real node: device keys
added, rotated and revoked; a batch sent from a samples file, listed, read with its proof, its
samples fetched, one sample proven, a disclosed file checked (exit 1 naming the mismatch), a crash
reported, the samples erased. Refusals exit with the documented code and one sentence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import msgspec
import pytest

from blokauto.keystore import KeyStore

from conftest import K, Served, run_cli
from helpers.telemetry_intake import DEVICE, VIN, new_chain, stage, trip

pytestmark = pytest.mark.e2e  # runs the real CLI in child processes


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("telemetry-cli") / "data"
    g = new_chain(data)
    keys = KeyStore(data / "keys")
    for name, label in (("tel-owner", "tel-owner"), ("tel-device", "tel-device"), ("dealer-admin", "dealer-admin"),
                        ("dev-new", "tel-cli-new"), ("dev-newer", "tel-cli-newer")):
        keys.create(name, key=K(label))
    served = Served(data)
    try:
        stage(served.url, g)
        served.genesis = g
        yield served
    finally:
        served.stop()


def cli(net: Any, *args: str) -> Any:
    return run_cli(*args, "--data", str(net.data), "--node", net.url)


def ok(net: Any, *args: str) -> str:
    r = cli(net, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def write(path: Path, samples: Any) -> Path:
    path.write_text(json.dumps(msgspec.to_builtins(samples)))
    return path


@pytest.fixture(scope="module")
def sent(net: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[Any], Path]:
    """A batch sent with `telemetry send` (the device key given as a key file), and its samples file."""
    samples = trip(40, brake_at=9)
    path = write(tmp_path_factory.mktemp("samples") / "trip.json", samples)
    out = ok(net, "telemetry", "send", "--vin", VIN, "--samples", str(path),
             "--key", str(net.data / "keys" / "tel-device.json"), "--utc-offset", "60")
    assert "committed" in out and "1 harsh brake(s)" in out, out
    seq = int(out.split("batch ", 1)[1].split(" ", 1)[0])
    return seq, samples, path


def test_send_then_list_and_read_the_proven_record(net, sent):
    seq, samples, _ = sent
    listed = json.loads(ok(net, "telemetry", "batches", VIN, "--as", "tel-owner", "--json"))
    assert any(b["seq"] == seq for b in listed["batches"])
    out = ok(net, "telemetry", "batch", VIN, str(seq), "--as", "oem-admin")  # the maker reads driving data
    assert out.startswith("verified") and DEVICE.did in out and "UTC offset 60" in out
    doc = json.loads(ok(net, "telemetry", "batch", VIN, str(seq), "--as", "tel-owner", "--json"))
    assert doc["verified"] and doc["summary"]["samples"] == len(samples)


def test_samples_are_fetched_checked_and_written(net, sent, tmp_path):
    seq, samples, _ = sent
    out = tmp_path / "got.json"
    text = ok(net, "telemetry", "samples", VIN, str(seq), "--as", "ins-admin", "--out", str(out))
    assert text.startswith("verified 40 samples")
    assert json.loads(out.read_text()) == msgspec.to_builtins(samples)


def test_prove_prints_the_sample_its_proof_and_verified(net, sent):
    seq, samples, _ = sent
    out = ok(net, "telemetry", "prove", VIN, str(seq), "9", "--as", "tel-owner")
    assert json.dumps(msgspec.to_builtins(samples[9])) in out and out.count("proof ") == 6
    assert out.rstrip().endswith("verified")
    doc = json.loads(ok(net, "telemetry", "prove", VIN, str(seq), "9", "--as", "tel-owner", "--json"))
    assert doc["verified"] and doc["sample"] == msgspec.to_builtins(samples[9]) and doc["count"] == 40


def test_check_batch_matches_and_names_a_mismatch(net, sent, tmp_path):
    seq, samples, path = sent
    assert "match" in ok(net, "telemetry", "check-batch", VIN, str(seq), "--samples", str(path), "--as", "ins-admin")
    altered = list(samples)
    altered[20] = msgspec.structs.replace(altered[20], speed=altered[20].speed + 1)
    r = cli(net, "telemetry", "check-batch", VIN, str(seq), "--samples", str(write(tmp_path / "x.json", altered)),
            "--as", "ins-admin")
    assert r.returncode == 1 and "root committed" in r.stderr, r.stderr
    r = cli(net, "telemetry", "check-batch", VIN, str(seq), "--samples", str(write(tmp_path / "y.json", samples[:-1])),
            "--as", "ins-admin", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["match"] is False


@pytest.fixture(scope="module")
def rotated(net: Any) -> dict[str, Any]:
    """dev-new added by the holder, rotated to dev-newer by the maker; the devices as listed then."""
    ok(net, "vehicle", "add-device-key", VIN, "--device", "dev-new", "--key", "tel-owner")
    ok(net, "vehicle", "rotate-device-key", VIN, "--old", "dev-new", "--new", "dev-newer", "--key", "oem-admin")
    doc = json.loads(ok(net, "vehicle", "devices", VIN, "--as", "tel-owner", "--json"))
    ok(net, "vehicle", "revoke-device-key", VIN, "dev-newer", "--reason", "lost", "--key", "tel-owner")
    return doc


def test_device_keys_are_added_rotated_revoked_and_listed(net, rotated):
    new, newer = K("tel-cli-new"), K("tel-cli-newer")
    assert rotated["current"] == [DEVICE.did, newer.did]
    assert [(k["did"], k["reason"]) for k in rotated["retired"]] == [(new.did, "rotated")]
    text = ok(net, "vehicle", "devices", VIN, "--as", "tel-owner")
    assert f"retired: {newer.did} (lost" in text and "1 current device key(s)" in text


def test_a_crash_is_reported_by_the_device(net):
    out = ok(net, "telemetry", "crash", VIN, "--decel", "45000", "--airbag", "--odometer-m", "12500000",
             "--key", "tel-device")
    assert "telemetry.crash_reported" in out


#: (command, exit code, what stderr names): refusals are one sentence and a stable exit code.
REFUSED = [
    (["telemetry", "samples", VIN, "1", "--as", "dealer-admin"], 1, "[consent_required]"),
    (["telemetry", "samples", VIN, "1"], 1, "[signature_required]"),
    (["telemetry", "batch", VIN, "999", "--as", "tel-owner"], 1, "[unknown_telemetry_batch]"),
    (["telemetry", "erase", VIN, "--as", "ins-admin"], 1, "[not_vehicle_holder]"),
    (["telemetry", "send", "--vin", VIN, "--samples", "/nonexistent/trip.json", "--key", "tel-device"], 2,
     "/nonexistent/trip.json"),
    (["telemetry", "send", "--vin", VIN, "--samples", "@SPEEDING", "--key", "tel-device"], 2, "<= 500"),
    (["telemetry", "send", "--vin", VIN, "--samples", "@BACKWARDS", "--key", "tel-device"], 2, "not after"),
    (["telemetry", "send", "--vin", VIN, "--samples", "@GOOD", "--key", "dev-newer"], 1, "device_key_revoked"),
    (["vehicle", "revoke-device-key", VIN, "dev-new", "--reason", "stolen", "--key", "tel-owner"], 2, "--reason"),
]


@pytest.mark.parametrize("args,code,says", REFUSED, ids=[" ".join(r[0][:2]) + f" ({r[2]})" for r in REFUSED])
def test_refusals_exit_with_a_code_and_a_sentence(net, rotated, tmp_path, args, code, says):
    files = {"@SPEEDING": [[*msgspec.to_builtins(s)[:1], 900, *msgspec.to_builtins(s)[2:]] for s in trip(3)],
             "@BACKWARDS": list(reversed(msgspec.to_builtins(trip(3)))), "@GOOD": msgspec.to_builtins(trip(3))}
    args = [str(write(tmp_path / "f.json", files[a])) if a in files else a for a in args]
    r = cli(net, *args)
    assert r.returncode == code, r.stdout + r.stderr
    assert says in r.stdout + r.stderr


def test_erase_leaves_the_record_and_removes_the_samples(net, sent):
    seq, _, _ = sent
    out = ok(net, "telemetry", "erase", VIN, "--as", "tel-owner")
    assert "erased the samples of" in out
    r = cli(net, "telemetry", "samples", VIN, str(seq), "--as", "tel-owner")
    assert r.returncode == 1 and "[samples_not_held]" in r.stderr
    assert ok(net, "telemetry", "batch", VIN, str(seq), "--as", "tel-owner").startswith("verified")
