"""The blocking rules, as pure functions: examples, then a state machine against a model."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bounced.config import PolicySettings
from bounced.dsn import BounceClass, Kind, Reason
from bounced.policy import (
    Action,
    AddressState,
    AdminAction,
    BlockReason,
    Effect,
    Event,
    State,
    Verdict,
    administer,
    decide,
    replay,
    set_allowed,
    verdict_of,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
POLICY = PolicySettings()


def failed(reason=Reason.MAILBOX_FULL, status="4.2.2", day=0, **kw):
    cls = BounceClass.HARD if status.startswith("5") else BounceClass.SOFT
    return Event(Kind.FAILED, T0 + timedelta(days=day), cls, reason, status, **kw)


def feed(events, settings=POLICY, state=None):
    state = state or AddressState()
    for event in events:
        state = decide(state, event, settings).state
    return state


@pytest.mark.parametrize(
    ("event", "verdict"),
    [
        (failed(Reason.USER_UNKNOWN, "5.1.1"), Verdict.HARD),
        (failed(Reason.USER_UNKNOWN, "4.1.1"), Verdict.SOFT),
        (Event(Kind.FAILED, T0, None, Reason.HOST_UNKNOWN, "", "550"), Verdict.HARD),
        (Event(Kind.FAILED, T0, BounceClass.HARD, Reason.HAS_MOVED), Verdict.HARD),
        (failed(Reason.MAILBOX_FULL, "5.2.2"), Verdict.SOFT),
        (failed(Reason.BAD_REPUTATION, "5.7.1"), Verdict.SENDER_SIDE),
        (failed(None, ""), Verdict.SOFT),
        (Event(Kind.COMPLAINT, T0), Verdict.COMPLAINT),
        (Event(Kind.DELAYED, T0, None, Reason.MAILBOX_FULL, "4.2.2"), Verdict.IGNORED),
        (Event(Kind.DELIVERED, T0), Verdict.IGNORED),
        (Event(Kind.AUTOREPLY, T0), Verdict.IGNORED),
    ],
)
def test_classify(event, verdict):
    assert verdict_of(event, POLICY) is verdict


def test_configured_reasons_change_the_verdict():
    settings = PolicySettings(
        hard_reasons=frozenset({Reason.MAILBOX_FULL}), sender_reasons=frozenset()
    )
    assert verdict_of(failed(Reason.MAILBOX_FULL, "5.2.2"), settings) is Verdict.HARD
    assert verdict_of(failed(Reason.USER_UNKNOWN, "5.1.1"), settings) is Verdict.SOFT
    assert verdict_of(failed(Reason.BAD_REPUTATION, "5.7.1"), settings) is Verdict.SOFT


def test_hard_blocks_at_once_and_counts_as_a_return():
    decision = decide(AddressState(), failed(Reason.USER_UNKNOWN, "5.1.1"), POLICY)
    assert decision.state.state is State.BLOCKED
    assert decision.state.blocked_reason is BlockReason.HARD
    assert decision.state.blocked_at == T0
    assert decision.state.returns == 1
    assert decision.effects == {Effect.RECORDED, Effect.RETURN, Effect.BLOCKED}


def test_complaint_blocks_without_counting():
    decision = decide(AddressState(), Event(Kind.COMPLAINT, T0), POLICY)
    assert decision.state.blocked_reason is BlockReason.COMPLAINT
    assert decision.state.returns == 0
    assert not decision.counts


def test_the_nth_return_blocks():
    state = feed([failed(day=d) for d in range(4)])
    assert (state.state, state.returns) == (State.ACTIVE, 4)
    decision = decide(state, failed(day=4), POLICY)
    assert decision.state.blocked_reason is BlockReason.RETURNS
    assert Effect.BLOCKED in decision.effects
    assert decision.state.first_return_at == T0
    assert decision.state.last_return_at == T0 + timedelta(days=4)


def test_sender_side_and_non_failures_never_count():
    noise = [failed(Reason.BLOCKED, "5.7.1"), Event(Kind.DELAYED, T0), Event(Kind.AUTOREPLY, T0)]
    state = feed(noise * 10)
    assert state == AddressState()


def test_a_repeat_of_a_counted_message_does_not_count_but_hard_still_blocks():
    state = feed([failed(day=d) for d in range(4)])
    assert feed([failed(repeat=True)] * 3, state=state).returns == 4
    blocked = decide(state, failed(Reason.USER_UNKNOWN, "5.1.1", repeat=True), POLICY).state
    assert (blocked.returns, blocked.blocked_reason) == (4, BlockReason.HARD)


def test_returns_outside_the_window_do_not_count():
    settings = PolicySettings(max_returns=3, returns_window_days=10)
    assert feed([failed(day=d) for d in (0, 20, 40, 60)], settings).state is State.ACTIVE
    assert feed([failed(day=d) for d in (0, 20, 25, 29)], settings).state is State.BLOCKED


def test_zero_max_returns_never_blocks_for_returns():
    settings = PolicySettings(max_returns=0)
    assert feed([failed(day=d) for d in range(50)], settings).state is State.ACTIVE


def test_allow_listed_addresses_are_spared_but_remember_why():
    state = AddressState(allowed=True)
    decision = decide(state, failed(Reason.USER_UNKNOWN, "5.1.1"), POLICY)
    assert decision.state.state is State.ACTIVE
    assert Effect.SPARED in decision.effects
    assert decision.state.returns == 1
    later = set_allowed(decision.state, False, T0 + timedelta(days=1))
    assert later.blocked_reason is BlockReason.HARD
    assert later.blocked_at == T0 + timedelta(days=1)


def test_stronger_reason_wins_whatever_the_order():
    returns = [failed(day=d) for d in range(5)]
    hard = failed(Reason.USER_UNKNOWN, "5.1.1", day=9)
    assert feed([*returns, hard]).blocked_reason is BlockReason.HARD
    assert feed([hard, *returns]).blocked_reason is BlockReason.HARD


def test_admin_actions():
    hard = feed([failed(Reason.USER_UNKNOWN, "5.1.1")])
    unmarked = administer(hard, AdminAction(Action.UNMARK, T0))
    assert (unmarked.state, unmarked.returns, unmarked.blocked_at) == (State.ACTIVE, 0, None)
    assert unmarked.last_reason == Reason.USER_UNKNOWN

    manual = administer(AddressState(), AdminAction(Action.BLOCK, T0))
    assert (manual.state, manual.blocked_reason) == (State.BLOCKED, BlockReason.MANUAL)

    former = administer(hard, AdminAction(Action.FORMER_EMPLOYEE, T0))
    assert former.state is State.FORMER_EMPLOYEE
    assert administer(former, AdminAction(Action.UNMARK, T0)).state is State.FORMER_EMPLOYEE
    undone = administer(former, AdminAction(Action.UNDO_FORMER_EMPLOYEE, T0))
    assert undone.blocked_reason is BlockReason.HARD


def test_replay_equals_step_by_step():
    history = [failed(day=0), AdminAction(Action.UNMARK, T0), *[failed(day=d) for d in range(5)]]
    state, counts = replay(history, POLICY)
    assert state.blocked_reason is BlockReason.RETURNS
    assert counts == [True] * 6


# --- state machine: random bounces, duplicates and admin actions against a plain model ---

KINDS = st.sampled_from([Kind.FAILED, Kind.FAILED, Kind.DELAYED, Kind.COMPLAINT, Kind.AUTOREPLY])
REASONS = st.sampled_from([Reason.MAILBOX_FULL, Reason.USER_UNKNOWN, Reason.BLOCKED, None])
STATUSES = st.sampled_from(["5.1.1", "4.2.2", "5.2.2", ""])


class PolicyMachine(RuleBasedStateMachine):
    """The system: `decide`/`administer`, behind the store's duplicate rule (one event per
    (message, kind, status), one counted return per message). The model: sets of message
    keys and flags, and the rules in their plainest form."""

    @initialize(max_returns=st.integers(0, 4), allowed=st.booleans())
    def setup(self, max_returns, allowed):
        self.settings = PolicySettings(max_returns=max_returns)
        self.state = AddressState(allowed=allowed)
        self.clock = T0
        self.events = set()
        self.counted = set()
        self.history = []
        self.model = {"returns": set(), "ever": set(), "hard": False, "complaint": False}
        self.model |= {"manual": False, "former": False, "allowed": allowed}

    def tick(self):
        self.clock += timedelta(minutes=1)
        return self.clock

    @rule(key=st.integers(0, 6), kind=KINDS, reason=REASONS, status=STATUSES)
    def bounce(self, key, kind, reason, status):
        if (key, kind, status) in self.events:  # the database refuses it
            return
        self.events.add((key, kind, status))
        repeat = key in self.counted
        event = Event(kind, self.tick(), None, reason, status, repeat=repeat, key=str(key))
        decision = decide(self.state, event, self.settings)
        # The store keeps no return times when there is no window: drop them as it does.
        self.state = replace(decision.state, recent_returns=())
        self.history.append(event)
        if decision.counts:
            self.counted.add(key)
        m = self.model
        if kind is Kind.COMPLAINT:
            m["complaint"] = True
        if kind is Kind.FAILED and reason is not Reason.BLOCKED:
            # One original message is one return, even across an unmark.
            if key not in m["ever"]:
                m["returns"].add(key)
            m["ever"].add(key)
            m["hard"] |= reason is Reason.USER_UNKNOWN and status.startswith("5")

    @precondition(lambda self: any(isinstance(e, Event) for e in self.history))
    @rule(key=st.integers(0, 6))
    def duplicate(self, key):
        event = [e for e in self.history if isinstance(e, Event)][-1]
        self.bounce(key, event.kind, event.reason, event.status)

    @rule(action=st.sampled_from(list(Action)))
    def admin(self, action):
        self.state = administer(self.state, AdminAction(action, self.tick()))
        self.history.append(AdminAction(action, self.clock))
        m = self.model
        if action is Action.UNMARK:
            m.update(returns=set(), hard=False, complaint=False, manual=False)
        m["manual"] |= action is Action.BLOCK
        if action in (Action.FORMER_EMPLOYEE, Action.UNDO_FORMER_EMPLOYEE):
            m["former"] = action is Action.FORMER_EMPLOYEE

    def expected_reason(self):
        m = self.model
        if m["former"]:
            return BlockReason.FORMER_EMPLOYEE
        if m["manual"]:
            return BlockReason.MANUAL
        if m["allowed"]:
            return None
        n = self.settings.max_returns
        for flag, reason in [
            (m["complaint"], BlockReason.COMPLAINT),
            (m["hard"], BlockReason.HARD),
            (n and len(m["returns"]) >= n, BlockReason.RETURNS),
        ]:
            if flag:
                return reason
        return None

    @invariant()
    def agrees_with_model(self):
        assert self.state.returns == len(self.model["returns"])
        assert self.state.blocked_reason == self.expected_reason()
        assert (self.state.state is State.ACTIVE) == (self.state.blocked_at is None)

    @invariant()
    def replay_gives_the_same_state(self):
        if self.history:
            replayed, _ = replay(self.history, self.settings, allowed=self.model["allowed"])
            assert replace(replayed, recent_returns=()) == self.state


TestPolicyMachine = PolicyMachine.TestCase
