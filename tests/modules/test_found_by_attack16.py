"""Found by the outside attack on telemetry and insurance (docs and --help only): one test each."""

from __future__ import annotations

import msgspec
import pytest

from blokauto.modules.insurance.messages import AssessClaim, ChooseWorkshop, FileClaim
from blokauto.modules.insurance.state import CLAIMS, POLICIES
from blokauto.modules.telemetry import Sample, SampleError, check_samples
from blokauto.modules.telemetry.messages import ReportCrash
from blokauto.modules.telemetry.samples import summarize

from helpers.insurance import ALICE, DEVICE, HOUR, SHOP, VIN, batch_msg, ok, send, world


def test_one_crash_reported_ms_apart_opens_claims_flagged_possible_duplicate() -> None:
    chain = world()
    t = POLICIES.get(chain.ledger, 1).start + HOUR
    for dt in (0, 1, 2):
        ok(chain, DEVICE, ReportCrash(vin=VIN, t=t + dt, decel_mms2=60_000, odometer_m=5_000, airbag=True),
           at=t + 10 + dt)
    flags = [CLAIMS.get(chain.ledger, i).flags for i in (1, 2, 3)]
    assert flags == [[], ["possible_duplicate"], ["possible_duplicate"]]
    later = t + 2 * HOUR  # a crash an hour later is a crash of its own
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=later, decel_mms2=60_000, odometer_m=6_000, airbag=True), at=later + 10)
    assert CLAIMS.get(chain.ledger, 4).flags == []


@pytest.mark.parametrize("text", ["EST-1)\n  decided: covered", "a\x1b[8m", "nul\x00", "bidi\u202e", "del\x7f"])
def test_a_reference_with_control_characters_is_refused(text: str) -> None:
    chain = world()
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"type": "insurance.assess_claim", "claim": 1, "estimate": 1, "reference": text}, AssessClaim)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"type": "insurance.file_claim", "policy": 1, "incident": 1, "odometer_km": 1,
                         "reference": text}, FileClaim)
    assert chain is not None


def test_an_odometer_faster_than_500_kmh_is_refused_in_the_samples_and_in_the_summary() -> None:
    fast = [Sample(1_000, 0, 0, 0, 0, 0, 0, 0), Sample(1_001, 0, 0, 0, 0, 100_000_000_000, 0, 0)]
    with pytest.raises(SampleError, match="faster than 500 km/h"):
        check_samples(fast)
    ok_speed = [Sample(1_000, 0, 0, 0, 0, 0, 0, 0), Sample(2_000, 500, 0, 0, 0, 139 + 1_000, 0, 0)]
    check_samples(ok_speed)  # 500 km/h for a second, plus the 1 km slack
    too = [Sample(1_000, 0, 0, 0, 0, 0, 0, 0), Sample(2_000, 500, 0, 0, 0, 139 + 1_001, 0, 0)]
    with pytest.raises(SampleError):
        check_samples(too)
    chain = world()
    t = POLICIES.get(chain.ledger, 1).start + HOUR
    r = send(chain, DEVICE, batch_msg(VIN, fast).__class__(vin=VIN, root="00" * 32, summary=summarize(fast, 0)),
             at=t)
    assert r.code == "invalid_summary" and "500 km/h" in r.detail["reason"], r


def test_the_chosen_workshop_still_cannot_write_control_characters_through_the_sdk_shape() -> None:
    chain = world()
    t = POLICIES.get(chain.ledger, 1).start + HOUR
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=t, decel_mms2=60_000, odometer_m=5_000, airbag=True), at=t + 10)
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=1, reference="EST-1 (plain text is fine)"))
