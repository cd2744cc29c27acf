"""The sending log and retry plans in a real store (SQLite and PostgreSQL), with a clock
the test moves: days of schedule in milliseconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers.clock import Clock
from helpers.dsn import Rcpt, delayed, make_dsn, soft

from bounced.config import Settings
from bounced.errors import BouncedError
from bounced.sending.log import SYNC_BATCH, SendingLog, SentStatus
from bounced.sending.plans import PlanStatus
from bounced.sending.worker import Worker
from bounced.suppressions import Suppressions

MID = "<orig-1@sender.example.com>"
RCPT = "full@example.org"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def log(database_url, clock):
    sup = Suppressions.open(Settings(database_url=database_url), clock=clock)
    yield SendingLog(sup, spread=lambda: 0.5)
    sup.close()


def bounce(log: SendingLog, rcpt=None, original=MID, n=1) -> None:
    raw = make_dsn(rcpt or soft(RCPT), original_id=original, message_id=f"<dsn-{n}@mx>")
    log.sup.ingest(raw, received_at=log.now())


def only_plan(log: SendingLog) -> dict:
    (plan,) = log.plans()
    return plan


def test_a_soft_bounce_starts_a_plan_that_ends_in_a_block(log, clock):
    log.record(RCPT, MID, subject="Invoice", raw=b"Subject: Invoice\r\n\r\nhi\r\n")
    bounce(log)
    assert log.sync() == 1
    plan = only_plan(log)
    assert plan["status"] == "scheduled" and plan["due_at"] == clock.now + timedelta(minutes=15)
    assert log.sent(RCPT, MID)["status"] == SentStatus.RETRYING
    worker = Worker(log, None)
    for attempt in range(1, 6):
        clock.now = only_plan(log)["due_at"]
        (due,) = log.pull("sender", 10)
        assert due.attempt == attempt and due.address == RCPT
        assert log.pull("sender", 10) == []  # handed out once
        clock.move(minutes=10)
        bounce(log, n=attempt + 1)  # word for word the first bounce, in a new notice
        worker.run_once()
    plan = only_plan(log)
    assert plan["status"] == PlanStatus.EXHAUSTED and plan["attempt"] == 5
    check = log.sup.check(RCPT)
    assert (check.sendable, check.reason) == (False, "retries_exhausted")
    assert log.sup.show(RCPT)["address"]["returns"] == 1  # one original message
    assert log.sent(RCPT, MID)["status"] == SentStatus.BOUNCED_HARD
    assert worker.run_once().escalated == 0  # escalated once


def test_the_same_notice_twice_is_one_event_and_moves_nothing(log, clock):
    log.record(RCPT, MID)
    bounce(log)
    log.sync()
    clock.move(minutes=15)
    log.pull("sender", 10)
    bounce(log)  # the first notice delivered again, after the resend
    log.sync()
    assert only_plan(log)["status"] == PlanStatus.AWAITING
    bounce(log, n=2)  # the resend's own bounce
    log.sync()
    plan = only_plan(log)
    assert plan["status"] == PlanStatus.SCHEDULED and plan["attempt"] == 1
    assert len(log.sup.show(RCPT)["events"]) == 2
    assert log.sup.show(RCPT)["address"]["returns"] == 1


def test_delays_do_not_start_plans_and_quiet_closes_them(log, clock):
    log.record(RCPT, MID)
    bounce(log, delayed(RCPT))
    log.sync()
    assert list(log.plans()) == []
    bounce(log, n=2)
    log.sync()
    clock.move(minutes=16)
    assert len(log.pull("sender", 10)) == 1
    clock.move(hours=23)
    assert Worker(log, None).run_once().succeeded == 0
    clock.move(hours=2)
    assert Worker(log, None).run_once().succeeded == 1
    assert only_plan(log)["status"] == PlanStatus.SUCCEEDED
    assert log.sent(RCPT, MID)["status"] == SentStatus.SENT
    assert log.sup.check(RCPT).sendable


def test_a_hard_bounce_on_another_message_cancels_the_plans(log, clock):
    log.record(RCPT, MID)
    bounce(log)
    log.record(RCPT, "<other@sender.example.com>")
    bounce(log, Rcpt(RCPT), original="<other@sender.example.com>", n=2)
    Worker(log, None).run_once()
    plan = only_plan(log)
    assert plan["status"] == PlanStatus.CANCELLED and "hard" in plan["note"]
    clock.move(days=1)
    assert log.pull("sender", 10) == []


def test_a_non_retryable_reason_starts_nothing(log):
    too_big = Rcpt(RCPT, "5.3.4", diagnostic="552 5.3.4 Message size exceeds fixed limit")
    log.record(RCPT, MID)
    bounce(log, too_big)
    log.sync()
    assert list(log.plans()) == []
    assert log.sent(RCPT, MID)["status"] == SentStatus.BOUNCED_SOFT


def test_an_smtp_error_at_send_time_goes_through_rules_and_policy(log):
    row = log.record(
        "gone@example.org", "<m1@x>", error="550 5.1.1 <gone@example.org>: no such user"
    )
    assert row["status"] == SentStatus.BOUNCED_HARD and row["reason"] == "user_unknown"
    assert not log.sup.check("gone@example.org").sendable
    row = log.record("busy@example.org", "<m2@x>", error="452 4.2.2 Mailbox full, try later")
    assert row["status"] == SentStatus.RETRYING and row["reason"] == "mailbox_full"
    assert only_plan(log)["address"] == "busy@example.org"
    with pytest.raises(BouncedError):
        log.record("x@example.org", "  ")


def test_a_blocked_address_is_not_retried(log, clock):
    log.record(RCPT, MID)
    bounce(log)
    log.sync()
    log.sup.block([RCPT])
    clock.move(hours=1)
    assert log.pull("sender", 10) == []
    assert only_plan(log)["status"] == PlanStatus.CANCELLED


def test_cancel_by_hand(log):
    log.record(RCPT, MID)
    bounce(log)
    log.sync()
    plan_id = only_plan(log)["id"]
    assert log.cancel([plan_id, 999], "admin") == ([plan_id], [999])
    assert log.plan(plan_id)["plan"]["status"] == PlanStatus.CANCELLED


def test_a_verp_token_links_a_bounce_that_names_no_message(log):
    from bounced import parse
    from bounced.listener.intake import VERP_DETECTOR, with_recipient

    log.record(RCPT, MID)
    bare = make_dsn(soft(RCPT), original_id=None)  # the original's headers are not returned
    log.sup.ingest(bare, received_at=log.now())
    log.sync()
    assert list(log.plans()) == []  # nothing says which message came back
    report = with_recipient(parse(bare), RCPT, MID, detector=VERP_DETECTOR)
    list(log.sup.ingest_reports([("smtp:1", bare, report)], received_at=log.now()))
    log.sync()
    assert only_plan(log)["message_id"] == MID.strip("<>")
    assert log.sent(RCPT, MID)["status"] == SentStatus.RETRYING


def test_a_timed_out_claim_is_taken_over_and_its_late_result_ignored(log, clock):
    from bounced.sending.log import Handover

    log.record(RCPT, MID)
    bounce(log)
    log.sync()
    clock.move(minutes=15)
    (first,) = log.claim("w1", 10)
    assert log.claim("w2", 10) == []  # claimed: nobody else gets it
    clock.move(minutes=11)  # past claim_timeout: w1 is presumed dead
    (second,) = log.claim("w2", 10)
    assert log.settle([Handover(first, True, "late")], "w1", "smtp") == 0
    assert log.settle([Handover(second, True, "ok")], "w2", "smtp") == 1
    shown = log.plan(second.plan_id)
    assert [(d["worker"], d["outcome"]) for d in shown["dispatches"]] == [("w2", "sent")]
    assert shown["plan"]["attempt"] == 1


def test_sync_misses_no_bounce_committed_while_it_reads(database_url, clock):
    """Two writers ingest while a reader links: event ids commit out of order on
    PostgreSQL, and the reader's cursor must still see every one of them."""
    import threading

    settings = Settings(database_url=database_url)
    reader = SendingLog(Suppressions.open(settings, clock=clock), spread=lambda: 0.5)
    count = 2 * SYNC_BATCH + 50
    for i in range(count):
        reader.record(f"u{i}@example.org", f"<m{i}@s>")

    def ingest(numbers: range) -> None:
        with Suppressions.open(settings, clock=clock) as sup:
            for i in numbers:
                raw = make_dsn(soft(f"u{i}@example.org"), original_id=f"<m{i}@s>")
                sup.ingest(raw, received_at=clock.now)

    writers = [threading.Thread(target=ingest, args=(range(k, count, 2),)) for k in (0, 1)]
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        reader.sync()
    for w in writers:
        w.join()
    reader.sync()
    assert len(list(reader.plans())) == count
    reader.sup.close()
