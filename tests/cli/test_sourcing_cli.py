"""``blokauto sourcing`` through the real command line against a live node: origin proven, route,
lanes, a passport shown proven, exported as a credential and verified offline; refusals with
their codes and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import msgspec
import pytest

from helpers.cobalt import cobalt_world
from helpers.parts import OEM, SUP

BLOKAUTO = [sys.executable, "-m", "blokauto.cli"]


def key_file(folder: Path, name: str, key: Any) -> str:
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "did": key.did, "seed": key.seed.hex()}))
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("sourcing-cli")
    node = cobalt_world(folder / "node")
    genesis = folder / "genesis.json"
    genesis.write_bytes(msgspec.json.encode(node.genesis))
    try:
        yield {"url": node.url, "genesis": genesis, "folder": folder, "sup": key_file(folder, "sup", SUP),
               "oem": key_file(folder, "oem", OEM)}
    finally:
        node.close()


def run(world: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BLOKAUTO, "sourcing", *args], capture_output=True, text=True, timeout=120,
                          cwd=world["folder"])


def on_node(world: dict[str, Any], *args: str) -> list[str]:
    return [*args, "--node", world["url"], "--trust", str(world["genesis"])]


def test_origin_is_proven_and_drawn_with_shares(world: dict[str, Any]) -> None:
    r = run(world, *on_node(world, "origin", "PACK:P1", "--as", world["sup"]))
    assert r.returncode == 0, r.stderr
    assert "Kamoto" in r.stdout and "25.00 %" in r.stdout and "75.00 %" in r.stdout
    assert "verified: recomputed from" in r.stdout


def test_origin_for_a_buyer_says_what_it_could_not_prove(world: dict[str, Any]) -> None:
    r = run(world, *on_node(world, "origin", "PACK:P1", "--as", world["oem"], "--json"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verified"] is False and set(out["unreadable"].values()) == {"not_a_party"}


def test_route_and_lanes_print_places_and_durations(world: dict[str, Any]) -> None:
    r = run(world, *on_node(world, "route", "CONC-1", "--as", world["sup"]))
    assert r.returncode == 0, r.stderr
    assert "TZDAR" in r.stdout and "FIKOK" in r.stdout
    r = run(world, *on_node(world, "lanes", "--supplier", "sup", "--as", world["sup"], "--json"))
    assert {(x["origin"], x["destination"]) for x in json.loads(r.stdout)["lanes"]} >= {("TZDAR", "FIKOK")}


def test_passport_export_then_verify_offline(world: dict[str, Any]) -> None:
    out = world["folder"] / "passport.json"
    r = run(world, "passport", "export", "PACK:P1", "--out", str(out), "--key", world["sup"],
            "--node", world["url"], "--trust", str(world["genesis"]))
    assert r.returncode == 0, r.stderr
    r = run(world, "passport", "verify", str(out), "--trust", str(world["genesis"]))
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "Murrin Murrin" in r.stdout
    doc = json.loads(out.read_text())
    doc["credentialSubject"]["capacityWh"] = 99_000
    forged = world["folder"] / "forged.json"
    forged.write_text(json.dumps(doc))
    r = run(world, "passport", "verify", str(forged), "--trust", str(world["genesis"]))
    assert r.returncode == 3 and "not a valid passport credential" in r.stderr


@pytest.mark.parametrize(("args", "code", "text"), [
    pytest.param(["passport", "verify", "missing.json", "--trust", "missing-genesis.json"], 2, "does not exist",
                 id="verify_a_file_that_does_not_exist"),
    pytest.param(["transform", "--in", "ORE-1=5t", "--out", "X:cobalt=1t", "--process", "p", "--yield", "140%",
                  "--key", "sup"], 2, "between 1 ppm and 100%", id="a_yield_above_100_percent"),
    pytest.param(["split", "ORE-1", "--into", "A=1.5g", "--key", "sup"], 2, "whole number of grams",
                 id="a_fraction_of_a_gram"),
])
def test_bad_input_gets_a_clear_error(world: dict[str, Any], args: list[str], code: int, text: str) -> None:
    r = run(world, *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert text in r.stderr


def test_exporting_a_passport_never_issued_says_so(world: dict[str, Any]) -> None:
    r = run(world, *on_node(world, "passport", "export", "PACK:P9", "--out", "x.json", "--key", world["sup"]))
    assert r.returncode != 0 and "no passport was issued" in r.stderr


def test_an_expired_credential_is_refused_by_verify(world: dict[str, Any]) -> None:
    """Found by the attack: the CLI passed no time, so a credential past its expirationDate verified."""
    from blokauto.credentials import issue

    out = world["folder"] / "passport-for-expiry.json"
    assert run(world, "passport", "export", "PACK:P1", "--out", str(out), "--key", world["sup"],
               "--node", world["url"], "--trust", str(world["genesis"])).returncode == 0
    doc = json.loads(out.read_text())
    body = {k: v for k, v in doc.items() if k != "proof"}
    body["expirationDate"] = "2020-01-01T00:00:00Z"
    expired = world["folder"] / "expired.json"
    expired.write_text(json.dumps(issue(body, SUP, created=doc["proof"]["created"])))
    r = run(world, "passport", "verify", str(expired), "--trust", str(world["genesis"]))
    assert r.returncode == 3 and "expired" in r.stderr


def test_show_or_export_of_a_pack_without_a_passport_is_a_sentence_not_a_traceback(world: dict[str, Any]) -> None:
    for args in (["passport", "show", "PACK:P9", "--as", world["sup"]],
                 ["passport", "export", "PACK:P9", "--out", "x.json", "--key", world["sup"]]):
        r = run(world, *on_node(world, *args))
        assert r.returncode == 1 and "no passport was issued" in r.stderr and "Traceback" not in r.stderr


def test_an_empty_shipment_is_stopped_before_it_is_sent(world: dict[str, Any]) -> None:
    r = run(world, *on_node(world, "ship", "--to", "org:oem", "--key", world["sup"]))
    assert r.returncode == 2 and "name what you ship" in r.stderr
