"""The sending log and its retry plans: what was sent, what came back, what is resent
when. This module decides; `bounced.db.sending` holds the rows.

Senders record what they send (`SendingLog.record`). Bounces reach the store the
usual way (ingest, the listener); `sync` reads the new bounce events in id order
and links each one to its sent message by the key both share (the original
Message-ID, see `bounced.keys.message_key`), then moves the message's retry plan
with the pure functions of `bounced.sending.plans`. Plans are claimed for dispatch with
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (one writer at a time on
SQLite), and handed over at most once per attempt: a unique index on the
dispatch log refuses a second hand-over of the same attempt.

Giving up goes through the policy: `escalate` records a `retries_exhausted`
event (`bounced.policy.EXHAUSTED`) through the store, which blocks the address.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bounced.addresses import domain_of
from bounced.config import RetrySettings
from bounced.db.database import CHUNK
from bounced.db.suppression import Incoming
from bounced.dsn import Bounce, BounceClass, Kind, Reason, Report
from bounced.dsn.reply import DETECTOR, bounce_of_reply
from bounced.errors import BouncedError, UnknownPlan
from bounced.keys import message_key
from bounced.policy import EXHAUSTED, Event, Verdict, verdict_of
from bounced.sending.plans import (
    OPEN,
    Plan,
    PlanStatus,
    Signal,
    cancel,
    dispatch_failed,
    dispatched,
    on_bounce,
    quiet,
    start,
)
from bounced.suppressions import Suppressions

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "PLAN_COLUMNS",
    "SENT_COLUMNS",
    "SYNC_BATCH",
    "Due",
    "Handover",
    "SendingLog",
    "SentStatus",
]

#: Columns of `bounced sent list`.
SENT_COLUMNS = (
    "id",
    "address",
    "message_id",
    "subject",
    "status",
    "reason",
    "error",
    "sent_at",
    "updated_at",
)
#: Columns of `bounced retries list` and of `retries due` (which adds nothing secret).
PLAN_COLUMNS = (
    "id",
    "address",
    "message_id",
    "status",
    "reason",
    "attempt",
    "due_at",
    "started_at",
    "last_attempt_at",
    "dispatch_failures",
    "note",
)
#: Bounce events read per transaction. Small: on PostgreSQL, ingestion waits while
#: a batch is read and linked (see `_sync_batch`).
SYNC_BATCH = 200
_HARD_VERDICTS = frozenset({Verdict.HARD, Verdict.COMPLAINT})
_OPEN = sorted(status.value for status in OPEN)


class SentStatus(StrEnum):
    """A sent message's status, in the words sending tools use."""

    PROCESSING = "processing"  # handed to the sender's MTA, not known to be out yet
    SENT = "sent"
    FAILED = "failed"  # refused during the sender's own SMTP conversation
    BOUNCED_SOFT = "bounced_soft"
    BOUNCED_HARD = "bounced_hard"
    RETRYING = "retrying"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class Due:
    """A retry handed to a dispatcher: what to resend, to whom, which attempt."""

    plan_id: int
    sent_id: int
    address: str
    message_id: str
    subject: str
    attempt: int
    due_at: datetime
    reason: str
    raw: bytes | None

    def request(self) -> dict[str, Any]:
        """The retry as JSON-ready data (webhook body, `retries due` rows)."""
        return {
            "plan_id": self.plan_id,
            "recipient": self.address,
            "message_id": self.message_id,
            "subject": self.subject,
            "attempt": self.attempt,
            "due_at": self.due_at.isoformat(timespec="seconds"),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Handover:
    """How handing over one claimed retry went (see `SendingLog.settle`)."""

    due: Due
    sent: bool
    detail: str = ""
    permanent: bool = False


def _plan(row: Any) -> Plan:
    return Plan(
        PlanStatus(row.status),
        Reason(row.reason),
        row.started_at,
        row.due_at,
        row.attempt,
        row.last_attempt_at,
        row.dispatch_failures,
        row.note,
    )


def _plan_values(plan: Plan, now: datetime) -> dict[str, Any]:
    """The columns that store `plan` (`bounced.db.sending.PLAN_FIELDS`)."""
    return {
        "status": plan.status.value,
        "reason": plan.reason.value,
        "due_at": plan.due_at,
        "attempt": plan.attempt,
        "last_attempt_at": plan.last_attempt_at,
        "dispatch_failures": plan.dispatch_failures,
        "note": plan.note,
        "updated_at": now,
    }


def _sent_status(plan: Plan | None, signal: Signal, current: str) -> str:
    """The sent message's status after a bounce row (and what it did to the plan)."""
    if signal.hard:
        return SentStatus.BOUNCED_HARD
    if plan is not None and plan.open:
        return SentStatus.RETRYING
    if plan is not None and plan.status is PlanStatus.EXHAUSTED:
        return SentStatus.BOUNCED_HARD
    if signal.kind is Kind.DELIVERED:
        return SentStatus.DELIVERED
    if signal.kind is Kind.FAILED:
        return SentStatus.BOUNCED_SOFT
    return current


class SendingLog:
    """Sent messages and retry plans, on the store of a `Suppressions`."""

    def __init__(
        self,
        sup: Suppressions,
        settings: RetrySettings | None = None,
        *,
        spread: Callable[[], float] = random.random,
    ) -> None:
        self.sup = sup
        self.database = sup.store.database
        self.rows = sup.store.sending
        self.settings = settings or sup.settings.retry
        self.spread = spread

    def now(self) -> datetime:
        return self.database.clock()

    # --- the sending log ----------------------------------------------------------------

    def key(self, address: str, message_id: str) -> str:
        """The key bounces of this message will carry (bounced.keys.message_key)."""
        bounce = Bounce(address, Kind.FAILED, original_message_id=message_id)
        return message_key(bounce, "", address)

    def record(
        self,
        recipient: str,
        message_id: str,
        *,
        subject: str = "",
        raw: bytes | None = None,
        status: SentStatus = SentStatus.SENT,
        error: str = "",
    ) -> dict[str, Any]:
        """Log one sent message. With `error` (the server's refusal during the send) the
        message is FAILED and the error goes through the rules and the policy as a bounce."""
        address = self.sup.normalize(recipient)
        message_id = message_id.strip().strip("<>").strip()
        if not message_id:
            raise BouncedError("a sent message needs its Message-ID")
        if error:
            status = SentStatus.FAILED
        values = {
            "address": address,
            "domain": domain_of(address),
            "message_id": message_id,
            "message_key": self.key(address, message_id),
            "subject": subject,
            "status": status.value,
            "error": error,
            "reason": "",
            "raw": raw,
        }
        changes = {k: v for k, v in values.items() if k in ("status", "error")}
        if subject:
            changes["subject"] = subject
        if raw is not None:
            changes["raw"] = raw
        self.rows.log_sent(values, changes)
        if error:
            bounce = bounce_of_reply(address, error, message_id=message_id)
            # Each refusal reported is a notice of its own (a resend refused again is news).
            now = self.now()
            notice = f"smtp-error:{now.isoformat()}"
            report = Report(Kind.FAILED, (bounce,), DETECTOR, notice, subject)
            list(self.sup.ingest_reports([("smtp-error", error, report)], received_at=now))
            self.sync()
        return self.sent(address, message_id)

    def sent(self, recipient: str, message_id: str) -> dict[str, Any]:
        """One logged message (without its raw bytes: `raw_bytes` says how many)."""
        address = self.sup.normalize(recipient)
        found = self.rows.sent(address, self.key(address, message_id.strip().strip("<>").strip()))
        if found is None:
            raise BouncedError(f"no sent message {message_id!r} to {address}")
        return found

    def sent_rows(
        self,
        *,
        status: Sequence[str] = (),
        domain: Sequence[str] = (),
        reason: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The sending log, filtered, newest last, streamed."""
        return self.rows.sent_rows(
            SENT_COLUMNS,
            status=status,
            domain=[d.lower().lstrip("@") for d in domain],
            reason=reason,
            since=since,
            until=until,
        )

    # --- reading the bounces ------------------------------------------------------------

    def sync(self) -> int:
        """Link bounce events recorded since the last call to their sent messages and
        move the plans on. Returns how many events were read. Safe to run from several
        workers at once: one reads while the others skip."""
        total = 0
        while True:
            read = self.database.write(self._sync_batch)
            total += read
            if read < SYNC_BATCH:
                return total

    def _sync_batch(self, conn: Connection) -> int:
        events = self.rows.new_events(conn, SYNC_BATCH)
        if not events:
            return 0
        for event in events:
            if event.detector != EXHAUSTED:
                self._link(conn, event)
        self.rows.move_cursor(conn, events[-1].id)
        return len(events)

    def _signal(self, event: Any) -> Signal:
        reason = Reason(event.reason) if event.reason in Reason._value2member_map_ else None
        bounce_class = BounceClass(event.bounce_class) if event.bounce_class else None
        verdict = verdict_of(
            Event(
                Kind(event.kind),
                event.received_at,
                bounce_class,
                reason,
                event.status,
                event.reply_code,
            ),
            self.sup.settings.policy,
        )
        return Signal(Kind(event.kind), reason, verdict in _HARD_VERDICTS)

    def _link(self, conn: Connection, event: Any) -> None:
        signal = self._signal(event)
        now = self.now()
        if signal.hard:
            for row in self.rows.plans_of_address(conn, event.address, _OPEN):
                self._save_plan(conn, row.id, on_bounce(_plan(row), signal, self.settings, now))
        sent = self.rows.sent_of(conn, event.address, event.message_key)
        if sent is None:
            return
        plans = self.rows.plans_of_sent(conn, sent.id)
        plan: Plan | None = None
        if plans:
            row = plans[0]
            plan = on_bounce(_plan(row), signal, self.settings, now, self.spread())
            self._save_plan(conn, row.id, plan)
        else:
            plan = start(signal, self.settings, now, self.spread())
            if plan is not None:
                values = _plan_values(plan, now) | {
                    "sent_id": sent.id,
                    "address": event.address,
                    "started_at": plan.started_at,
                    "claimed_by": "",
                }
                self.rows.add_plan(conn, values)
        changes = {"status": _sent_status(plan, signal, sent.status), "updated_at": now}
        if event.kind == Kind.FAILED:
            changes["reason"] = event.reason
            changes["error"] = event.diagnostic
        self.rows.update_sent(conn, [sent.id], **changes)

    def _save_plan(self, conn: Connection, plan_id: int, plan: Plan) -> None:
        self.rows.save_plan(conn, plan_id, _plan_values(plan, self.now()))

    # --- the clock's work: quiet plans, exhausted plans ---------------------------------

    def close_quiet(self) -> int:
        """Plans whose last resend heard no bounce within success_after succeeded."""
        now = self.now()
        limit = now - self.settings.success_after

        def work(conn: Connection) -> int:
            rows = self.rows.quiet(conn, PlanStatus.AWAITING.value, limit)
            for row in rows:
                self._save_plan(conn, row.id, quiet(_plan(row), self.settings, now))
                self.rows.update_sent(
                    conn, [row.sent_id], status=SentStatus.SENT.value, updated_at=now
                )
            return len(rows)

        return self._drain(work)

    def escalate(self) -> int:
        """Hand exhausted plans to the policy: a retries_exhausted event per address.
        Recorded before the plan is marked, and idempotent (the event's unique key), so a
        crash in between only means the next pass records it again, once."""
        rows = self.rows.unescalated(PlanStatus.EXHAUSTED.value)
        if not rows:
            return 0
        now = self.now()
        incoming = [
            Incoming(
                row.address,
                f"exhausted:{row.message_key}",
                Bounce(
                    row.address,
                    Kind.FAILED,
                    BounceClass.HARD,
                    Reason(row.reason),
                    diagnostic=f"retries exhausted: {row.note}",
                    original_message_id=row.message_id,
                    detector=EXHAUSTED,
                    rule="retry",
                ),
                "retry",
                now,
            )
            for row in rows
        ]
        self.sup.store.record(incoming)
        self.rows.mark_escalated([row.id for row in rows], now)
        return len(rows) + (self.escalate() if len(rows) == CHUNK else 0)

    def _drain(self, work: Callable[[Connection], int]) -> int:
        total = 0
        while True:
            done = self.database.write(work)
            total += done
            if done < CHUNK:
                return total

    # --- dispatch -----------------------------------------------------------------------

    def claim(self, worker: str, limit: int) -> list[Due]:
        """Take up to `limit` due retries for `worker` (until claim_timeout). Plans of an
        address that has been blocked meanwhile are cancelled instead."""
        now = self.now()

        def work(conn: Connection) -> list[Due]:
            due = []
            until = now + self.settings.claim_timeout
            for row in self.rows.due(conn, PlanStatus.SCHEDULED.value, now, limit):
                if row.state not in (None, "active"):
                    note = f"address is {row.state}"
                    self._save_plan(conn, row.id, cancel(_plan(row), note))
                    continue
                due.append(
                    Due(
                        row.id,
                        row.sent_id,
                        row.address,
                        row.message_id,
                        row.subject,
                        row.attempt + 1,
                        row.due_at,
                        row.reason,
                        row.raw,
                    )
                )
            if due:
                self.rows.claim(conn, [d.plan_id for d in due], worker, until, now)
            return due

        return self.database.write(work)

    def settle(self, handovers: Sequence[Handover], worker: str, channel: str) -> int:
        """Record how claimed retries went, all in one transaction: handed over, or not
        (back off when the relay or webhook is down; cancel when trying again cannot
        help). Returns how many were handed over; a claim lost meanwhile (it timed out
        and another worker took the plan) does not count."""
        if not handovers:
            return 0
        now = self.now()

        def work(conn: Connection) -> int:
            ids = [h.due.plan_id for h in handovers]
            rows = self.rows.claimed(conn, ids, worker, PlanStatus.SCHEDULED.value)
            kept = [
                h
                for h in handovers
                if (row := rows.get(h.due.plan_id)) and row.attempt == h.due.attempt - 1
            ]
            if not kept:
                return 0
            self.rows.log_dispatches(conn, [_dispatch_row(h, now, worker, channel) for h in kept])
            plans = []
            for h in kept:
                plan = _plan(rows[h.due.plan_id])
                if h.sent:
                    new = dispatched(plan, now)
                elif h.permanent:
                    new = cancel(plan, h.detail)
                else:
                    new = dispatch_failed(plan, h.detail, self.settings, now)
                values = _plan_values(new, now) | {"claimed_by": "", "claimed_until": None}
                plans.append({"plan_id": h.due.plan_id, **values})
            self.rows.save_plans(conn, plans)
            sent = [h.due.sent_id for h in kept if h.sent]
            if sent:
                self.rows.update_sent(conn, sent, status=SentStatus.RETRYING.value, updated_at=now)
            return len(sent)

        return self.database.write(work)

    def pull(self, worker: str, limit: int) -> list[Due]:
        """Claim due retries and mark them handed to the sender (`retries due --claim`)."""
        claimed = self.claim(worker, limit)
        self.settle([Handover(due, sent=True) for due in claimed], worker, "pull")
        return claimed

    # --- admin --------------------------------------------------------------------------

    def plans(
        self, *, status: Sequence[str] = (), address: str | None = None, due: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Retry plans with their message id, filtered; `due` = scheduled and due now."""
        return self.rows.plan_rows(
            PLAN_COLUMNS,
            status=status,
            address=self.sup.normalize(address) if address else None,
            due=(PlanStatus.SCHEDULED.value, self.now()) if due else None,
        )

    def plan(self, plan_id: int) -> dict[str, Any]:
        """One plan, its message and its dispatch history."""
        found = self.rows.plan(plan_id)
        if found is None:
            raise UnknownPlan(f"no retry plan {plan_id}")
        return found

    def cancel(self, plan_ids: Sequence[int], actor: str) -> tuple[list[int], list[int]]:
        """Cancel open plans by hand (audited). Returns (cancelled, not open or unknown)."""

        def work(conn: Connection) -> list[int]:
            rows = self.rows.plans_by_id(conn, plan_ids, _OPEN)
            for row in rows:
                self._save_plan(conn, row.id, cancel(_plan(row), f"cancelled by {actor}"))
            self.sup.store.suppression.audit(
                conn, "retry_cancel", [r.address for r in rows], actor, f"plans {plan_ids}"
            )
            return [r.id for r in rows]

        done = self.database.write(work)
        return done, [i for i in plan_ids if i not in done]

    def due(self) -> int:
        """How many plans are due now and not claimed (the `bounced_retries_due` gauge)."""
        return self.rows.due_count(PlanStatus.SCHEDULED.value, self.now())

    def counts(self) -> dict[str, int]:
        """Plans per status (for the worker's log line and the benchmark)."""
        return self.rows.counts()


def _dispatch_row(out: Handover, now: datetime, worker: str, channel: str) -> dict[str, Any]:
    return {
        "plan_id": out.due.plan_id,
        "attempt": out.due.attempt,
        "at": now,
        "worker": worker,
        "channel": channel,
        "outcome": "sent" if out.sent else "failed",
        "detail": out.detail[:500],
    }
