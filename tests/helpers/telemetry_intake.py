"""Shared set-up for the tests of a node's telemetry intake and sample store (api, node, cli): a chain
on the wall clock (batches must end by the block time), one car held by a private key with a device
key, an insurer the holder consented to for ``location``, and trips of samples whose times follow
each other (a vehicle's batches never overlap)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec

from blokauto.client import Client
from blokauto.core.block import Genesis
from blokauto.core.crypto import KeyPair
from blokauto.core.encoding import canonical
from blokauto.modules.consent.messages import GrantConsent
from blokauto.modules.telemetry import Sample
from blokauto.modules.vehicles.messages import AssignWmi, TransferTitle

from conftest import K, write_chain
from helpers.vehicles import WMI, admin, register_msg, vehicles_genesis, vin_for

VIN = vin_for(WMI["oem"], 41)  # held by OWNER, device DEVICE; ins consented to location and driving
VIN2 = vin_for(WMI["oem"], 42)  # held by the maker, device DEVICE2; nobody consented
OWNER, DEVICE, DEVICE2, OUTSIDER = K("tel-owner"), K("tel-device"), K("tel-device-2"), K("tel-outsider")
INSURER, DEALER, REGULATOR, MAKER = admin("ins"), admin("dealer"), admin("reg"), admin("oem")
JSON = {"content-type": "application/json"}

_next_start = [int(time.time() * 1000) - 3 * 3_600_000]  # ms: every trip starts after the last one made


def trip(n: int = 20, step_ms: int = 1_000, *, speed: int = 72, limit: int = 50, brake_at: int = -1) -> list[Sample]:
    """``n`` samples ``step_ms`` apart, after every sample made before (a vehicle's batches follow
    each other), driving at ``speed`` km/h under a posted ``limit``; one hard brake at ``brake_at``."""
    t0 = _next_start[0]
    _next_start[0] = t0 + n * step_ms + 1_000
    out, odo = [], 12_000_000
    for i in range(n):
        odo += speed * step_ms // 3_600
        out.append(Sample(t0 + i * step_ms, speed, -5_000 if i == brake_at else 200, 481_370 + i, 115_750 - i,
                          odo, limit, 0))
    return out


def genesis() -> Genesis:
    """The vehicles module's consortium, its genesis a second ago (batches are judged by block time)."""
    g = vehicles_genesis()
    return Genesis(chain=g.chain, time=int(time.time() * 1000) - 1000, organisations=g.organisations, quorum=1)


def new_chain(data: Path) -> Genesis:
    g = genesis()
    write_chain(data, g)
    return g


def stage(url: str, g: Genesis) -> None:
    """WMI, the two cars, the sale to OWNER, and OWNER's consent to ``ins`` for location and driving."""
    with Client(url, key=K("reg-node"), trust=g) as c:
        c.send(AssignWmi(wmi=WMI["oem"], org="oem"), REGULATOR).raise_for_status()
        c.send(register_msg(VIN, device_keys=[DEVICE.did]), MAKER).raise_for_status()
        c.send(register_msg(VIN2, device_keys=[DEVICE2.did]), MAKER).raise_for_status()
        c.send(TransferTitle(vin=VIN, to=OWNER.did, usage="private"), MAKER, OWNER).raise_for_status()
        until = c.checkpoint("latest").header.time + 86_400_000
        c.send(GrantConsent(vin=VIN, org="ins", categories=["location", "driving"], purpose="pay as you drive",
                            until=until), OWNER).raise_for_status()


def intake_body(tx: Any, samples: Any) -> bytes:
    """The body of POST /v1/telemetry/batches: a signed transaction (or its bytes) and the samples."""
    raw = tx if isinstance(tx, bytes) else canonical(tx)
    return b'{"tx":' + raw + b',"samples":' + msgspec.json.encode(samples) + b"}"
