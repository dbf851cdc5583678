"""Usage is billed by batch, once: a batch the car uploads late, dated in a period that already has
its statement, counts in the next statement; a batch that ended before the policy started never
counts, however late it arrives; a period without consent skips its batches for good."""

from __future__ import annotations

from typing import Any

from blokauto.modules.consent.messages import RevokeConsent
from blokauto.modules.insurance.messages import IssueStatements
from blokauto.modules.insurance.state import POLICIES, STATEMENTS

from helpers.insurance import ALICE, DEVICE, HOUR, INS, MINUTE, PERIOD, VIN, batch_msg, now, ok, trip, world


def start(chain: Any) -> int:
    return POLICIES.get(chain.ledger, 1).start


def drive(chain: Any, t: int, *, at: int, n: int = 60, odo_m: int = 0) -> None:
    ok(chain, DEVICE, batch_msg(VIN, trip(t, n, odo_m=odo_m)), at=at)


def statement(chain: Any, k: int) -> Any:
    return STATEMENTS.get(chain.ledger, 1, k)


def test_a_late_batch_is_billed_in_the_next_statement() -> None:
    chain = world()
    s = start(chain)
    ok(chain, INS, IssueStatements(policies=[1]), at=s + PERIOD)
    assert (statement(chain, 0).batches, statement(chain, 0).distance_m) == (0, 0)
    drive(chain, s + HOUR, at=s + PERIOD + 10 * MINUTE)  # the trip of period 0, uploaded after its statement
    ok(chain, INS, IssueStatements(policies=[1]), at=s + 2 * PERIOD)
    late = statement(chain, 1)
    assert (late.batches, late.distance_m, late.after_seq, late.through_seq) == (1, 59 * 22, 0, 1)
    ok(chain, INS, IssueStatements(policies=[1]), at=s + 3 * PERIOD)
    assert statement(chain, 2).batches == 0  # billed once


def test_a_batch_from_before_the_policy_never_counts() -> None:
    chain = world()
    s = start(chain)
    drive(chain, s - 59_000, n=30, at=s + 1)  # ended before the policy started, committed after
    drive(chain, s + HOUR, at=s + 2 * HOUR, odo_m=10_000)
    ok(chain, INS, IssueStatements(policies=[1]), at=s + PERIOD)
    st = statement(chain, 0)
    assert (st.batches, st.distance_m, st.after_seq, st.through_seq) == (1, 59 * 22, 1, 2)


def test_a_period_without_consent_skips_its_batches_for_good() -> None:
    chain = world()
    s = start(chain)
    drive(chain, s + HOUR, at=s + 2 * HOUR)
    ok(chain, ALICE, RevokeConsent(vin=VIN, grant=1), at=s + 3 * HOUR)
    ok(chain, INS, IssueStatements(policies=[1]), at=s + PERIOD)
    st = statement(chain, 0)
    assert (st.consented, st.batches, st.premium) == (False, 0, 20_000)  # the cap
    assert POLICIES.get(chain.ledger, 1).billed_seq == 1  # its batch is not carried into a later period
    assert now(chain) >= s + PERIOD
