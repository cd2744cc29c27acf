"""Retry plans as pure functions: schedule, jitter, limits, and what closes a plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bounced.config import RetrySettings
from bounced.dsn import Kind, Reason
from bounced.policy import AddressState, BlockReason, Event, State, decide
from bounced.sending.plans import (
    PlanStatus,
    Signal,
    backoff,
    delay,
    dispatch_failed,
    dispatched,
    on_bounce,
    quiet,
    start,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SETTINGS = RetrySettings()
FULL = Signal(Kind.FAILED, Reason.MAILBOX_FULL)
spreads = st.floats(min_value=0, max_value=1, exclude_max=True)


def test_schedule_starts_at_the_first_wait_and_gives_up_after_max_attempts():
    plan = start(FULL, SETTINGS, T0)
    assert plan.status is PlanStatus.SCHEDULED and plan.due_at == T0 + timedelta(minutes=15)
    now, dues = T0, []
    for _ in range(SETTINGS.max_attempts):
        now = plan.due_at
        dues.append(now - T0)
        plan = dispatched(plan, now)
        now += timedelta(minutes=5)
        plan = on_bounce(plan, FULL, SETTINGS, now)
    assert plan.status is PlanStatus.EXHAUSTED and plan.attempt == 5
    assert "5 resends" in plan.note
    assert dues[1] == timedelta(minutes=15 + 5 + 60)


def test_give_up_after_ends_a_plan_whose_next_wait_is_too_late():
    settings = replace(SETTINGS, give_up_after=timedelta(hours=2), max_attempts=10)
    plan = dispatched(start(FULL, settings, T0), T0 + timedelta(minutes=15))
    plan = on_bounce(plan, FULL, settings, T0 + timedelta(minutes=20))
    assert plan.status is PlanStatus.SCHEDULED  # 20m + 1h is within 2h
    plan = dispatched(plan, plan.due_at)
    plan = on_bounce(plan, FULL, settings, T0 + timedelta(hours=1, minutes=30))
    assert plan.status is PlanStatus.EXHAUSTED  # + 4h would pass 2h


@given(reason=st.sampled_from(list(Reason)), kind=st.sampled_from(list(Kind)), hard=st.booleans())
def test_only_soft_failures_with_retryable_reasons_start_a_plan(reason, kind, hard):
    plan = start(Signal(kind, reason, hard), SETTINGS, T0)
    expected = kind is Kind.FAILED and not hard and reason in SETTINGS.retryable_reasons
    assert (plan is not None) == expected


def test_delays_and_resend_proof_reasons_never_start_a_plan():
    assert start(Signal(Kind.DELAYED, Reason.MAILBOX_FULL), SETTINGS, T0) is None
    assert start(Signal(Kind.FAILED, Reason.MESG_TOO_BIG), SETTINGS, T0) is None
    assert start(Signal(Kind.FAILED, Reason.CONTENT_ERROR), SETTINGS, T0) is None


@given(attempt=st.integers(0, 20), spread=spreads, jitter=st.integers(0, 100))
def test_jitter_stays_within_its_percentage(attempt, spread, jitter):
    settings = replace(SETTINGS, jitter_percent=jitter)
    base = SETTINGS.schedule[min(attempt, len(SETTINGS.schedule) - 1)]
    got = delay(attempt, settings, spread)
    assert base * (1 - jitter / 100) <= got <= base * (1 + jitter / 100)


@given(failures=st.integers(1, 200))
def test_dispatch_backoff_doubles_up_to_its_maximum(failures):
    got = backoff(failures, SETTINGS)
    assert SETTINGS.dispatch_backoff <= got <= SETTINGS.dispatch_backoff_max
    assert backoff(failures + 1, SETTINGS) >= got


def test_relay_down_keeps_the_attempt_and_backs_off():
    plan = start(FULL, SETTINGS, T0)
    now = plan.due_at
    for n in range(1, 12):
        plan = dispatch_failed(plan, "connection refused", SETTINGS, now)
        assert plan.status is PlanStatus.SCHEDULED and plan.attempt == 0
        assert plan.due_at - now == backoff(n, SETTINGS)
        now = plan.due_at
    assert dispatched(plan, now).attempt == 1


def test_delivered_or_quiet_closes_and_hard_cancels():
    sent = dispatched(start(FULL, SETTINGS, T0), T0 + timedelta(minutes=15))
    assert on_bounce(sent, Signal(Kind.DELIVERED), SETTINGS, T0).status is PlanStatus.SUCCEEDED
    assert on_bounce(sent, Signal(Kind.DELAYED, Reason.EXPIRED), SETTINGS, T0) == sent
    early = T0 + timedelta(hours=1)
    assert quiet(sent, SETTINGS, early) == sent
    late = sent.last_attempt_at + SETTINGS.success_after
    assert quiet(sent, SETTINGS, late).status is PlanStatus.SUCCEEDED
    hard = Signal(Kind.FAILED, Reason.USER_UNKNOWN, hard=True)
    for plan in (sent, start(FULL, SETTINGS, T0)):
        assert on_bounce(plan, hard, SETTINGS, T0).status is PlanStatus.CANCELLED
    too_big = Signal(Kind.FAILED, Reason.MESG_TOO_BIG)
    assert on_bounce(sent, too_big, SETTINGS, T0).status is PlanStatus.CANCELLED


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["bounce", "dispatch", "fail", "quiet"]),
            st.sampled_from([Kind.FAILED, Kind.DELAYED, Kind.DELIVERED]),
            st.sampled_from([Reason.MAILBOX_FULL, Reason.MESG_TOO_BIG, Reason.USER_UNKNOWN]),
            st.integers(0, 48 * 60),
            spreads,
        ),
        max_size=40,
    )
)
def test_any_sequence_keeps_the_plan_within_its_limits(steps):
    plan = start(FULL, SETTINGS, T0)
    now = T0
    for what, kind, reason, minutes, spread in steps:
        now += timedelta(minutes=minutes)
        before = plan
        if what == "bounce":
            signal = Signal(kind, reason, hard=reason is Reason.USER_UNKNOWN)
            plan = on_bounce(plan, signal, SETTINGS, now, spread)
        elif what == "dispatch" and plan.status is PlanStatus.SCHEDULED:
            plan = dispatched(plan, now)
        elif what == "fail" and plan.status is PlanStatus.SCHEDULED:
            plan = dispatch_failed(plan, "down", SETTINGS, now)
        elif what == "quiet":
            plan = quiet(plan, SETTINGS, now)
        assert plan.attempt <= SETTINGS.max_attempts
        assert (plan.due_at is not None) == (plan.status is PlanStatus.SCHEDULED)
        if not before.open:
            assert plan == before  # a closed plan never reopens
        if plan.status is PlanStatus.SCHEDULED and not plan.dispatch_failures:
            # (a relay that is down is not the address's fault: its waits may run on)
            assert plan.due_at <= plan.started_at + SETTINGS.give_up_after


def test_exhaustion_blocks_through_the_policy():
    from bounced.config import PolicySettings

    event = Event(Kind.FAILED, T0, reason=Reason.MAILBOX_FULL, exhausted=True)
    decision = decide(AddressState(returns=2), event, PolicySettings())
    assert decision.state.state is State.BLOCKED
    assert decision.state.blocked_reason is BlockReason.RETRIES_EXHAUSTED
    assert decision.state.returns == 2
    spared = decide(AddressState(allowed=True), event, PolicySettings())
    assert spared.state.state is State.ACTIVE
