"""When is an address blocked: the whole answer, as pure functions.

The store loads an address's `AddressState`, asks `decide` (for a bounce row)
or `administer` (for an admin action) what the new state is, and writes it
back atomically. Nothing here reads a clock, a database or a global: the same
inputs always give the same outputs, which is what lets `bounced policy apply`
replay an address's history under new settings and lets tests check the rules
without a database.

The state keeps *facts* (how many returns, the strongest automatic reason to
block, whether an admin blocked it or marked it a former employee, whether it
is allow-listed) and derives the visible state from them. So an allow-listed
address still records that it would be blocked, undoing "former employee"
falls back to whatever the bounces say, and the reason shown does not depend
on the order in which concurrent processes happened to record the bounces.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bounced.config import PolicySettings
from bounced.dsn import Bounce, BounceClass, Kind, Reason

__all__ = [
    "EXHAUSTED",
    "Action",
    "AddressState",
    "AdminAction",
    "BlockReason",
    "Decision",
    "Effect",
    "Event",
    "State",
    "Verdict",
    "administer",
    "decide",
    "replay",
    "sendable",
    "set_allowed",
    "verdict_of",
]


class State(StrEnum):
    """What a sender sees: only ACTIVE addresses may be mailed."""

    ACTIVE = "active"
    BLOCKED = "blocked"
    FORMER_EMPLOYEE = "former_employee"


_ACTIVE = State.ACTIVE.value


def sendable(state: str) -> bool:
    """May an address in this state be mailed? (The store's lookup says it inline in
    its hot loop, comparing with the same value.)"""
    return state == _ACTIVE


class BlockReason(StrEnum):
    """Why an address is not ACTIVE. Automatic reasons are listed strongest first."""

    COMPLAINT = "complaint"
    HARD = "hard"
    RETRIES_EXHAUSTED = "retries_exhausted"
    RETURNS = "returns"
    MANUAL = "manual"
    FORMER_EMPLOYEE = "former_employee"


#: Automatic reasons, weakest first: a stronger one replaces a weaker one, whatever the order.
_STRENGTH = (
    BlockReason.RETURNS,
    BlockReason.RETRIES_EXHAUSTED,
    BlockReason.HARD,
    BlockReason.COMPLAINT,
)


#: The detector of the event recorded when a message's resends are used up (bounced.sending.plans):
#: the one way a `retries_exhausted` block comes about, kept as an event so replays see it.
EXHAUSTED = "retries_exhausted"


class Verdict(StrEnum):
    """What one bounce row means for its address."""

    IGNORED = "ignored"  # delay, delivered, relayed, expanded, auto-reply: recorded only
    SENDER_SIDE = "sender_side"  # the sender's problem: recorded per receiving domain
    SOFT = "soft"  # a return that counts towards max_returns
    HARD = "hard"  # the address is bad: blocks at once
    COMPLAINT = "complaint"  # the recipient complained: blocks at once
    EXHAUSTED = "exhausted"  # soft failures that resends did not cure: blocks at once


class Effect(StrEnum):
    """What a decision did, for summaries (`ingest`) and dry runs."""

    RECORDED = "recorded"
    SENDER_SIDE = "sender_side"
    RETURN = "return"
    BLOCKED = "blocked"
    SPARED = "spared"  # would have blocked, but the address is allow-listed


class Action(StrEnum):
    """Admin actions that change an address's state (kept in the audit log)."""

    UNMARK = "unmark"
    BLOCK = "block"
    FORMER_EMPLOYEE = "former_employee"
    UNDO_FORMER_EMPLOYEE = "undo_former_employee"


@dataclass(frozen=True, slots=True)
class Event:
    """The part of a bounce row the policy looks at, with the time it was received.

    `repeat` says the same original message already counted as a return for this
    address (say a 4.x.x failure, then the final 5.1.1): it does not count again,
    but a hard verdict still blocks.
    """

    kind: Kind
    at: datetime
    bounce_class: BounceClass | None = None
    reason: Reason | None = None
    status: str = ""
    reply_code: str = ""
    repeat: bool = False
    #: The message key, when known: lets `replay` work out `repeat` by itself.
    key: str = ""
    #: The retries of a soft-bounced message are used up (detector EXHAUSTED).
    exhausted: bool = False

    @classmethod
    def of(cls, bounce: Bounce, at: datetime, *, repeat: bool = False, key: str = "") -> Event:
        b = bounce
        exhausted = b.detector == EXHAUSTED
        return cls(
            b.kind, at, b.bounce_class, b.reason, b.status, b.reply_code, repeat, key, exhausted
        )


@dataclass(frozen=True, slots=True)
class AdminAction:
    action: Action
    at: datetime


@dataclass(frozen=True, slots=True)
class AddressState:
    """The facts kept per address; `state` and `blocked_reason` follow from them.

    `recent_returns` holds the times of the newest counted returns since the last
    unmark (at most max_returns of them) for `returns_window_days`; the store
    reads them from its events rather than keeping a copy.
    """

    returns: int = 0
    recent_returns: tuple[datetime, ...] = ()
    first_return_at: datetime | None = None
    last_return_at: datetime | None = None
    auto_reason: BlockReason | None = None
    manual: bool = False
    former_employee: bool = False
    allowed: bool = False
    blocked_at: datetime | None = None
    last_reason: str = ""
    last_status: str = ""
    last_class: str = ""

    @property
    def blocked_reason(self) -> BlockReason | None:
        if self.former_employee:
            return BlockReason.FORMER_EMPLOYEE
        if self.manual:
            return BlockReason.MANUAL
        return None if self.allowed else self.auto_reason

    @property
    def state(self) -> State:
        reason = self.blocked_reason
        if reason is None:
            return State.ACTIVE
        return State.FORMER_EMPLOYEE if reason is BlockReason.FORMER_EMPLOYEE else State.BLOCKED


@dataclass(frozen=True, slots=True)
class Decision:
    state: AddressState
    verdict: Verdict
    effects: frozenset[Effect]

    @property
    def counts(self) -> bool:
        """The bounce counted as a return (the store keeps this on the event)."""
        return Effect.RETURN in self.effects


def verdict_of(event: Event, settings: PolicySettings) -> Verdict:
    """Hard means a reason in `hard_reasons` on a permanent failure (5.x.x, a 5xx reply
    without a status, or classed hard by the parser); sender-side reasons never count."""
    if event.exhausted:
        return Verdict.EXHAUSTED
    if event.kind is Kind.COMPLAINT:
        return Verdict.COMPLAINT
    if event.kind is not Kind.FAILED:
        return Verdict.IGNORED
    if event.reason in settings.sender_reasons:
        return Verdict.SENDER_SIDE
    permanent = (
        event.status.startswith("5")
        or event.bounce_class is BounceClass.HARD
        or (not event.status and event.reply_code.startswith("5"))
    )
    if event.reason in settings.hard_reasons and permanent:
        return Verdict.HARD
    return Verdict.SOFT


def _stronger(a: BlockReason | None, b: BlockReason | None) -> BlockReason | None:
    if a is None or b is None:
        return a or b
    return max(a, b, key=_STRENGTH.index)


def _returns_counted(state: AddressState, settings: PolicySettings) -> int:
    """Returns that count towards max_returns: all since the last unmark, or only those
    in the window ending at the newest one."""
    recent = state.recent_returns
    if not settings.returns_window_days or not recent:
        return state.returns
    since = recent[-1] - timedelta(days=settings.returns_window_days)
    return sum(1 for t in recent if t > since)


def _settle(before: AddressState, after: AddressState, at: datetime) -> AddressState:
    """Keep `blocked_at` in step with the derived state (a new state only where it
    changes: this runs for every row ingested)."""
    if after.state is State.ACTIVE:
        return after if after.blocked_at is None else replace(after, blocked_at=None)
    if before.state is State.ACTIVE or before.blocked_at is None:
        return replace(after, blocked_at=at)
    return after


def _counted(state: AddressState, event: Event, settings: PolicySettings) -> AddressState:
    keep = max(settings.max_returns, 1)
    recent = tuple(sorted((*state.recent_returns, event.at)))[-keep:]
    first, last = state.first_return_at, state.last_return_at
    return replace(
        state,
        returns=state.returns + 1,
        recent_returns=recent,
        first_return_at=event.at if first is None else min(first, event.at),
        last_return_at=event.at if last is None else max(last, event.at),
        last_reason=event.reason or "",
        last_status=event.status,
        last_class=event.bounce_class or "",
    )


def decide(state: AddressState, event: Event, settings: PolicySettings) -> Decision:
    """The new state of an address after one (new, not duplicate) bounce row."""
    verdict = verdict_of(event, settings)
    if verdict is Verdict.IGNORED:
        return Decision(state, verdict, frozenset({Effect.RECORDED}))
    if verdict is Verdict.SENDER_SIDE:
        return Decision(state, verdict, frozenset({Effect.SENDER_SIDE}))
    effects = {Effect.RECORDED}
    reason: BlockReason | None
    if verdict is Verdict.COMPLAINT:
        new, reason = replace(state, last_reason="complaint", last_status=""), BlockReason.COMPLAINT
    elif verdict is Verdict.EXHAUSTED:
        # The soft bounces before it already counted; giving up is no new return.
        new, reason = replace(state, last_reason=EXHAUSTED), BlockReason.RETRIES_EXHAUSTED
    else:
        new = state if event.repeat else _counted(state, event, settings)
        if not event.repeat:
            effects.add(Effect.RETURN)
        reason = BlockReason.HARD if verdict is Verdict.HARD else None
        enough = _returns_counted(new, settings) >= settings.max_returns
        if reason is None and settings.max_returns and enough:
            reason = BlockReason.RETURNS
    if (auto := _stronger(state.auto_reason, reason)) is not new.auto_reason:
        new = replace(new, auto_reason=auto)
    new = _settle(state, new, event.at)
    if reason is not None and new.allowed:
        effects.add(Effect.SPARED)
    if state.state is State.ACTIVE and new.state is not State.ACTIVE:
        effects.add(Effect.BLOCKED)
    return Decision(new, verdict, frozenset(effects))


def administer(state: AddressState, action: AdminAction) -> AddressState:
    """The new state after an admin action. Unmark clears the bounce marks and the count
    (history stays in the events); former-employee status has its own undo."""
    if action.action is Action.UNMARK:
        kept = (
            "former_employee",
            "allowed",
            "blocked_at",
            "last_reason",
            "last_status",
            "last_class",
        )
        new = AddressState(**{name: getattr(state, name) for name in kept})
    elif action.action is Action.BLOCK:
        new = replace(state, manual=True)
    else:
        new = replace(state, former_employee=action.action is Action.FORMER_EMPLOYEE)
    return _settle(state, new, action.at)


def set_allowed(state: AddressState, allowed: bool, at: datetime) -> AddressState:
    """The state once the address joins or leaves the allow-list."""
    return _settle(state, replace(state, allowed=allowed), at)


def replay(
    history: Iterable[Event | AdminAction], settings: PolicySettings, *, allowed: bool = False
) -> tuple[AddressState, list[bool]]:
    """An address's state from its whole history in time order, under `settings`.
    Also says, per Event in the history, whether it counts as a return. An event whose
    key already counted is a repeat, as the store's unique return key makes it live."""
    state = AddressState(allowed=allowed)
    counts = []
    counted: set[str] = set()
    for item in history:
        if isinstance(item, AdminAction):
            state = administer(state, item)
            continue
        event = replace(item, repeat=item.repeat or item.key in counted)
        decision = decide(state, event, settings)
        state = decision.state
        counts.append(decision.counts)
        if decision.counts and item.key:
            counted.add(item.key)
    return state, counts
