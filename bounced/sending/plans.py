"""Retry plans: when a soft-bounced message is resent, and when bounced gives up.

Pure functions over a frozen `Plan`; the time (`now`) and the randomness of the
jitter (`spread`, a number in [0, 1)) are passed in, so the same inputs always
give the same plan and tests move days by passing later times. The store
(bounced.sending) keeps the plans and applies what these functions return; the
worker (bounced.sending.worker) hands due plans to a dispatcher.

The life of a plan:

    soft failure, retryable reason ──► SCHEDULED (due after schedule[0])
    SCHEDULED ──claimed and dispatched──► AWAITING (attempt + 1)
    SCHEDULED ──dispatch failed (relay down)──► SCHEDULED (later; attempt kept)
    AWAITING ──soft bounce again──► SCHEDULED (next wait), or EXHAUSTED
    AWAITING ──delivered, or quiet for success_after──► SUCCEEDED
    any open ──hard bounce for the address──► CANCELLED

EXHAUSTED is the policy's business: the caller records a `retries_exhausted`
event (bounced.policy.EXHAUSTED), which blocks the address.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bounced.config import RetrySettings
from bounced.dsn import Kind, Reason

__all__ = [
    "OPEN",
    "Plan",
    "PlanStatus",
    "Signal",
    "backoff",
    "cancel",
    "delay",
    "dispatch_failed",
    "dispatched",
    "on_bounce",
    "quiet",
    "retryable",
    "signal_of",
    "start",
]


class PlanStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its due time (or claimed by a worker)
    AWAITING = "awaiting"  # resent; waiting to hear whether it bounced again
    SUCCEEDED = "succeeded"
    EXHAUSTED = "exhausted"
    CANCELLED = "cancelled"


OPEN = frozenset({PlanStatus.SCHEDULED, PlanStatus.AWAITING})


@dataclass(frozen=True, slots=True)
class Plan:
    """The resends of one sent message to one address. `attempt` counts resends made."""

    status: PlanStatus
    reason: Reason
    started_at: datetime
    due_at: datetime | None
    attempt: int = 0
    last_attempt_at: datetime | None = None
    dispatch_failures: int = 0
    note: str = ""

    @property
    def open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True, slots=True)
class Signal:
    """What a bounce row says about a sent message, as far as retries care."""

    kind: Kind
    reason: Reason | None = None
    hard: bool = False  # the policy's verdict: the address itself is bad


def retryable(signal: Signal, settings: RetrySettings) -> bool:
    """A soft failure a resend can cure. Delays are not: the sending MTA is still trying."""
    return (
        signal.kind is Kind.FAILED
        and not signal.hard
        and signal.reason is not None
        and signal.reason in settings.retryable_reasons
    )


def delay(attempt: int, settings: RetrySettings, spread: float) -> timedelta:
    """The wait before resend number `attempt + 1`: the schedule's entry (the last one
    repeats), moved by up to jitter_percent either way (`spread` 0.5 = no change)."""
    schedule = settings.schedule or (timedelta(hours=1),)
    base = schedule[min(attempt, len(schedule) - 1)]
    jitter = settings.jitter_percent / 100 * (2 * spread - 1)
    return base * (1 + jitter)


def backoff(failures: int, settings: RetrySettings) -> timedelta:
    """The wait after `failures` dispatches in a row could not reach the relay or webhook."""
    step = settings.dispatch_backoff * 2.0 ** min(failures - 1, 30)
    return min(step, settings.dispatch_backoff_max)


def start(
    signal: Signal, settings: RetrySettings, now: datetime, spread: float = 0.5
) -> Plan | None:
    """A new plan for a message that failed softly, or None when a resend cannot help."""
    if not retryable(signal, settings) or settings.max_attempts == 0:
        return None
    assert signal.reason is not None
    first = Plan(PlanStatus.SCHEDULED, signal.reason, now, None)
    return _next(first, settings, now, spread)


def _next(plan: Plan, settings: RetrySettings, now: datetime, spread: float) -> Plan:
    """Schedule the next resend, or give up when the attempts or the time are used up."""
    if plan.attempt >= settings.max_attempts:
        note = f"{plan.attempt} resends bounced"
        return replace(plan, status=PlanStatus.EXHAUSTED, due_at=None, note=note)
    due = now + delay(plan.attempt, settings, spread)
    if due > plan.started_at + settings.give_up_after:
        note = f"still failing after {now - plan.started_at}"
        return replace(plan, status=PlanStatus.EXHAUSTED, due_at=None, note=note)
    return replace(plan, status=PlanStatus.SCHEDULED, due_at=due, dispatch_failures=0, note="")


def on_bounce(
    plan: Plan, signal: Signal, settings: RetrySettings, now: datetime, spread: float = 0.5
) -> Plan:
    """The plan after a bounce row for its message (or, when `signal.hard`, any bounce
    that makes the address bad). Closed plans stay as they are."""
    if not plan.open:
        return plan
    if signal.hard:
        return _close(plan, PlanStatus.CANCELLED, "hard bounce for the address")
    if signal.kind is Kind.DELIVERED:
        return _close(plan, PlanStatus.SUCCEEDED, "delivered")
    if signal.kind is not Kind.FAILED:
        return plan  # delays, relays, auto-replies: nothing decided yet
    if not retryable(signal, settings):
        return _close(plan, PlanStatus.CANCELLED, f"not retryable: {signal.reason or 'unknown'}")
    if plan.status is PlanStatus.SCHEDULED:
        return plan  # a late copy of the failure that started it: the resend is due anyway
    assert signal.reason is not None
    return _next(replace(plan, reason=signal.reason), settings, now, spread)


def dispatched(plan: Plan, now: datetime) -> Plan:
    """The resend went out (or was handed to the sender)."""
    return replace(
        plan,
        status=PlanStatus.AWAITING,
        attempt=plan.attempt + 1,
        last_attempt_at=now,
        due_at=None,
        dispatch_failures=0,
        note="",
    )


def dispatch_failed(plan: Plan, error: str, settings: RetrySettings, now: datetime) -> Plan:
    """The relay or webhook could not be reached: try the same attempt again later."""
    failures = plan.dispatch_failures + 1
    due = now + backoff(failures, settings)
    return replace(plan, due_at=due, dispatch_failures=failures, note=error[:500])


def quiet(plan: Plan, settings: RetrySettings, now: datetime) -> Plan:
    """A resend that heard no bounce within success_after went through."""
    last = plan.last_attempt_at
    if plan.status is PlanStatus.AWAITING and last and now >= last + settings.success_after:
        return _close(plan, PlanStatus.SUCCEEDED, f"no bounce within {settings.success_after}")
    return plan


def cancel(plan: Plan, note: str) -> Plan:
    """Stopped by hand, because the address was blocked, or because a resend cannot work."""
    return _close(plan, PlanStatus.CANCELLED, note) if plan.open else plan


def _close(plan: Plan, status: PlanStatus, note: str) -> Plan:
    return replace(plan, status=status, due_at=None, note=note[:500])


def signal_of(kind: str, reason: str, hard: bool) -> Signal:
    """A Signal from stored text columns (an unknown reason reads as None)."""
    return Signal(Kind(kind), Reason(reason) if reason in Reason._value2member_map_ else None, hard)
