"""Shared set-up for the telemetry and insurance tests: Alice's car with a device key, EUR issued by
an e-money institution, an insurer (``ins``) with a pay-as-you-drive product, a second insurer
(``ins2``), a workshop (``shop``), and helpers that make device-signed batches from samples."""

from __future__ import annotations

import itertools
from typing import Any, Sequence

from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.crypto import KeyPair
from blokauto.modules.consent.messages import GrantConsent
from blokauto.modules.insurance.messages import BindPolicy, PublishProduct
from blokauto.modules.insurance.pricing import Pricing
from blokauto.modules.payments.messages import AttestReserves, Issue, RegisterCurrency
from blokauto.modules.payments.state import ACCOUNTS
from blokauto.modules.telemetry.messages import CommitBatch
from blokauto.modules.telemetry.samples import Sample, batch_root, summarize
from blokauto.modules.vehicles.messages import AssignWmi, TransferTitle

from conftest import CHAIN, T0, Chain, K, build_tx
from helpers.vehicles import ORGS, WMI, admin, register_msg, vin_for

VIN = vin_for(WMI["oem"], 1)  # Alice's car
OTHER_VIN = vin_for(WMI["oem"], 2)  # Bob's car
ALICE, BOB, MALLORY = K("alice"), K("bob"), K("mallory")
DEVICE, DEVICE2, BOB_DEVICE, NEW_DEVICE = K("tel-dev-1"), K("tel-dev-2"), K("tel-dev-bob"), K("tel-dev-new")
INS, INS2, SHOP, SHOP2, EMI, OEM, REG = (admin(o) for o in ("ins", "ins2", "shop", "shop2", "emi", "oem", "reg"))
DAY, HOUR, MINUTE = 86_400_000, 3_600_000, 60_000
PERIOD = 30 * DAY

ALL_ORGS = {**ORGS, "emi": ["issuer"], "ins2": ["insurer"], "shop2": ["workshop"]}

PAYD = Pricing(base=2_000, per_km=5, night_factor_bps=5_000, per_harsh_brake=100, per_over_limit_minute=20,
               min_premium=1_000, max_premium=20_000)


def genesis() -> Genesis:
    orgs = [GenesisOrganisation(org, org.upper(), roles, [admin(org).did], [K("reg-node").did] if org == "reg" else [])
            for org, roles in ALL_ORGS.items()]
    return Genesis(chain=CHAIN, time=T0, organisations=orgs, quorum=1)


def now(chain: Chain) -> int:
    return chain.ledger.head.time


def send(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int | None = None) -> Any:
    """One transaction in its own block at block time ``at`` (default: 1 ms after the last)."""
    t = now(chain) + 1 if at is None else at
    raw = build_tx(sender, msg, *cosigners, expires=t + 600_000, nonce=f"{next(chain.nonces):032x}")
    return chain.block(raw, time=t).receipts[0]


def ok(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int | None = None) -> Any:
    r = send(chain, sender, msg, *cosigners, at=at)
    assert r.ok, r
    return r


def balance(chain: Chain, owner: str | KeyPair) -> int:
    owner = owner.did if isinstance(owner, KeyPair) else owner
    return ACCOUNTS.get(chain.ledger, "EUR", owner) or 0


def daytime_offset(t: int) -> int:
    """A UTC offset (minutes) that puts ``t`` in daytime where the car drives, so a trip's night km are 0
    whatever hour the suite runs at (tests run between 22:00 and 06:00 UTC counted them as night)."""
    hour = t // 3_600_000 % 24
    return 0 if 6 <= hour < 22 else (-360 if hour >= 22 else 480)


def trip(start: int, n: int = 60, *, every_ms: int = 1_000, speed: int = 80, limit: int = 100, odo_m: int = 0,
         step_m: int = 22, brake_at: Sequence[int] = (), events: dict[int, int] | None = None) -> list[Sample]:
    """``n`` samples from ``start``, one every ``every_ms``, ``step_m`` metres apart; harsh braking at
    the indices ``brake_at``; ``events`` maps an index to its event flags."""
    events = events or {}
    return [Sample(start + i * every_ms, speed, -5_000 if i in brake_at else 200, 481_370, 115_750,
                   odo_m + i * step_m, limit, events.get(i, 0)) for i in range(n)]


def batch_msg(vin: str, samples: Sequence[Sample], utc_offset_min: int = 0) -> CommitBatch:
    return CommitBatch(vin=vin, root=batch_root(samples).hex(), summary=summarize(samples, utc_offset_min),
                       utc_offset_min=utc_offset_min)


def world(*, consent: bool = True, policy: bool = True) -> Chain:
    """VIN held by Alice (devices DEVICE, DEVICE2), OTHER_VIN by Bob (BOB_DEVICE); Alice holds 100,000
    EUR cents and org:ins 1,000,000; ins publishes product "payd" (30-day periods, ``PAYD``); with
    ``consent`` Alice lets ins read driving data; with ``policy`` policy 1 (3 periods, deductible
    10,000, coverage 500,000) starts one minute after the set-up."""
    chain = Chain(genesis())
    chain.nonces = itertools.count(1)
    for org, wmi in WMI.items():
        ok(chain, admin("reg"), AssignWmi(wmi=wmi, org=org))
    ok(chain, OEM, register_msg(VIN, device_keys=[DEVICE.did, DEVICE2.did]))
    ok(chain, OEM, register_msg(OTHER_VIN, device_keys=[BOB_DEVICE.did]))
    ok(chain, OEM, TransferTitle(vin=VIN, to=ALICE.did), ALICE)
    ok(chain, OEM, TransferTitle(vin=OTHER_VIN, to=BOB.did), BOB)
    ok(chain, EMI, RegisterCurrency(currency="EUR", exponent=2))
    ok(chain, EMI, AttestReserves(currency="EUR", reserves=10_000_000, evidence="ab" * 32))
    for owner, amount in ((ALICE.did, 100_000), (BOB.did, 100_000), ("org:ins", 1_000_000), ("org:ins2", 1_000_000)):
        ok(chain, EMI, Issue(currency="EUR", to=owner, amount=amount))
    ok(chain, INS, PublishProduct(product="payd", currency="EUR", period_days=30, pricing=PAYD, max_coverage=1_000_000))
    if consent:
        ok(chain, ALICE, GrantConsent(vin=VIN, org="ins", categories=["driving"], purpose="pay as you drive",
                                      until=now(chain) + 300 * DAY))
    if policy:
        ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=now(chain) + MINUTE, periods=3, deductible=10_000,
                                  coverage=500_000), ALICE)
    return chain
