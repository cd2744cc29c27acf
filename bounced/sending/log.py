"""The sending log and its retry plans in the store: what was sent, what came back,
what is resent when.

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
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from bounced.addresses import domain_of
from bounced.config import RetrySettings
from bounced.db.store import CHUNK, Incoming
from bounced.db.tables import Address, EventCursor, RetryDispatch, RetryPlan, SentMessage
from bounced.db.tables import Event as EventRow
from bounced.dsn import Bounce, BounceClass, Kind, Reason, Report
from bounced.dsn.reply import DETECTOR, bounce_of_reply
from bounced.errors import BouncedError, UnknownPlan
from bounced.keys import message_key
from bounced.policy import EXHAUSTED, Verdict, classify
from bounced.policy import Event as PolicyEvent
from bounced.sending.plans import (
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

__all__ = [
    "PLAN_COLUMNS",
    "SENT_COLUMNS",
    "Due",
    "Outcome",
    "SendingLog",
    "SentStatus",
]

SM = SentMessage.__table__  # type: ignore[attr-defined]
P = RetryPlan.__table__  # type: ignore[attr-defined]
D = RetryDispatch.__table__  # type: ignore[attr-defined]
C = EventCursor.__table__  # type: ignore[attr-defined]
A = Address.__table__  # type: ignore[attr-defined]
E = EventRow.__table__  # type: ignore[attr-defined]

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
_CURSOR = "sending-log"
#: Bounce events read per transaction. Small: on PostgreSQL, ingestion waits while
#: a batch is read and linked (see `_sync_batch`).
SYNC_BATCH = 200
_HARD_VERDICTS = frozenset({Verdict.HARD, Verdict.COMPLAINT})


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
class Outcome:
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


_PLAN_FIELDS = (
    "status",
    "reason",
    "due_at",
    "attempt",
    "last_attempt_at",
    "dispatch_failures",
    "note",
    "updated_at",
)


def _plan_values(plan: Plan, now: datetime) -> dict[str, Any]:
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
        self.store = sup.store
        self.settings = settings or sup.settings.retry
        self.spread = spread
        self._postgres = self.store.engine.dialect.name == "postgresql"

    def now(self) -> datetime:
        return self.store.clock()

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
        key = self.key(address, message_id)
        values = {
            "address": address,
            "domain": domain_of(address),
            "message_id": message_id,
            "message_key": key,
            "subject": subject,
            "status": status.value,
            "error": error,
            "reason": "",
            "raw": raw,
        }

        def work(conn: Connection) -> None:
            now = self.now()
            stmt = self.store.insert(SM).values({**values, "sent_at": now, "updated_at": now})
            changes = {k: v for k, v in values.items() if k in ("status", "error")}
            if subject:
                changes["subject"] = subject
            if raw is not None:
                changes["raw"] = raw
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["address", "message_key"], set_={**changes, "updated_at": now}
                )
            )

        self.store.write(work)
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
        key = self.key(address, message_id.strip().strip("<>").strip())
        with self.store.read() as conn:
            row = conn.execute(
                select(SM).where(SM.c.address == address, SM.c.message_key == key)
            ).first()
        if row is None:
            raise BouncedError(f"no sent message {message_id!r} to {address}")
        return _without_raw(row)

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
        query = select(*(SM.c[c] for c in SENT_COLUMNS))
        if status:
            query = query.where(SM.c.status.in_(status))
        if domain:
            query = query.where(SM.c.domain.in_([d.lower().lstrip("@") for d in domain]))
        if reason:
            query = query.where(SM.c.reason.in_(reason))
        if since is not None:
            query = query.where(SM.c.sent_at >= since)
        if until is not None:
            query = query.where(SM.c.sent_at < until)
        with self.store.read() as conn:
            result = conn.execution_options(yield_per=CHUNK).execute(query.order_by(SM.c.id))
            for row in result:
                yield dict(row._mapping)

    # --- reading the bounces ------------------------------------------------------------

    def sync(self) -> int:
        """Link bounce events recorded since the last call to their sent messages and
        move the plans on. Returns how many events were read. Safe to run from several
        workers at once: one reads while the others skip."""
        total = 0
        while True:
            read = self.store.write(self._sync_batch)
            total += read
            if read < SYNC_BATCH:
                return total

    def _sync_batch(self, conn: Connection) -> int:
        cursor = select(C.c.event_id).where(C.c.name == _CURSOR)
        first = self.store.insert(C).values(name=_CURSOR, event_id=0)
        conn.execute(first.on_conflict_do_nothing())
        if self._postgres:
            last = conn.scalar(cursor.with_for_update(skip_locked=True))
            if last is None:
                return 0  # another worker is reading them right now
            # Wait for the transactions writing events to finish, and hold new ones off
            # while reading: ids commit out of order, and a cursor must never skip one.
            conn.exec_driver_sql("LOCK TABLE event IN SHARE MODE")
        else:
            last = conn.scalar(cursor)
        events = conn.execute(
            select(
                E.c.id,
                E.c.message_key,
                E.c.kind,
                E.c.bounce_class,
                E.c.reason,
                E.c.status,
                E.c.reply_code,
                E.c.detector,
                E.c.diagnostic,
                E.c.received_at,
                A.c.address,
            )
            .join(A, A.c.id == E.c.address_id)
            .where(E.c.id > last)
            .order_by(E.c.id)
            .limit(SYNC_BATCH)
        ).all()
        for event in events:
            if event.detector != EXHAUSTED:
                self._link(conn, event)
        if events:
            conn.execute(update(C).where(C.c.name == _CURSOR).values(event_id=events[-1].id))
        return len(events)

    def _signal(self, event: Any) -> Signal:
        reason = Reason(event.reason) if event.reason in Reason._value2member_map_ else None
        bounce_class = BounceClass(event.bounce_class) if event.bounce_class else None
        verdict = classify(
            PolicyEvent(
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
            open_plans = conn.execute(
                select(P).where(P.c.address == event.address, _open()).with_for_update()
            ).all()
            for row in open_plans:
                self._save_plan(conn, row.id, on_bounce(_plan(row), signal, self.settings, now))
        sent = conn.execute(
            select(SM.c.id, SM.c.status).where(
                SM.c.address == event.address, SM.c.message_key == event.message_key
            )
        ).first()
        if sent is None:
            return
        plans = conn.execute(
            select(P).where(P.c.sent_id == sent.id).order_by(P.c.id.desc()).with_for_update()
        ).all()
        plan: Plan | None = None
        if plans:
            row = plans[0]
            plan = on_bounce(_plan(row), signal, self.settings, now, self.spread())
            self._save_plan(conn, row.id, plan)
        else:
            plan = start(signal, self.settings, now, self.spread())
            if plan is not None:
                conn.execute(
                    P.insert().values(
                        {
                            **_plan_values(plan, now),
                            "sent_id": sent.id,
                            "address": event.address,
                            "started_at": plan.started_at,
                            "claimed_by": "",
                        }
                    )
                )
        changes = {"status": _sent_status(plan, signal, sent.status), "updated_at": now}
        if event.kind == Kind.FAILED:
            changes["reason"] = event.reason
            changes["error"] = event.diagnostic
        conn.execute(update(SM).where(SM.c.id == sent.id).values(**changes))

    def _save_plan(self, conn: Connection, plan_id: int, plan: Plan, **extra: Any) -> None:
        values = _plan_values(plan, self.now()) | extra
        conn.execute(update(P).where(P.c.id == plan_id).values(**values))

    # --- the clock's work: quiet plans, exhausted plans ---------------------------------

    def close_quiet(self) -> int:
        """Plans whose last resend heard no bounce within success_after succeeded."""
        now = self.now()
        limit = now - self.settings.success_after

        def work(conn: Connection) -> int:
            rows = conn.execute(
                _skip(
                    select(P).where(
                        P.c.status == PlanStatus.AWAITING.value, P.c.last_attempt_at <= limit
                    ),
                    self._postgres,
                ).limit(CHUNK)
            ).all()
            for row in rows:
                self._save_plan(conn, row.id, quiet(_plan(row), self.settings, now))
                conn.execute(
                    update(SM)
                    .where(SM.c.id == row.sent_id)
                    .values(status=SentStatus.SENT.value, updated_at=now)
                )
            return len(rows)

        return self._drain(work)

    def escalate(self) -> int:
        """Hand exhausted plans to the policy: a retries_exhausted event per address.
        Recorded before the plan is marked, and idempotent (the event's unique key), so a
        crash in between only means the next pass records it again, once."""
        with self.store.read() as conn:
            rows = conn.execute(
                select(P.c.id, P.c.address, P.c.reason, P.c.note, SM.c.message_id, SM.c.message_key)
                .join(SM, SM.c.id == P.c.sent_id)
                .where(P.c.status == PlanStatus.EXHAUSTED.value, P.c.escalated_at.is_(None))
                .limit(CHUNK)
            ).all()
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
        self.store.record(incoming)

        def work(conn: Connection) -> None:
            ids = [row.id for row in rows]
            conn.execute(update(P).where(P.c.id.in_(ids)).values(escalated_at=now, updated_at=now))

        self.store.write(work)
        return len(rows) + (self.escalate() if len(rows) == CHUNK else 0)

    def _drain(self, work: Callable[[Connection], int]) -> int:
        total = 0
        while True:
            done = self.store.write(work)
            total += done
            if done < CHUNK:
                return total

    # --- dispatch -----------------------------------------------------------------------

    def claim(self, worker: str, limit: int) -> list[Due]:
        """Take up to `limit` due retries for `worker` (until claim_timeout). Plans of an
        address that has been blocked meanwhile are cancelled instead."""
        now = self.now()

        def work(conn: Connection) -> list[Due]:
            query = (
                select(P, SM.c.message_id, SM.c.subject, SM.c.raw, A.c.state)
                .join(SM, SM.c.id == P.c.sent_id)
                .outerjoin(A, A.c.address == P.c.address)
                .where(*_due_at(now))
                .order_by(P.c.due_at, P.c.id)
                .limit(limit)
            )
            if self._postgres:
                query = query.with_for_update(skip_locked=True, of=P)
            due = []
            until = now + self.settings.claim_timeout
            for row in conn.execute(query).all():
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
                conn.execute(
                    update(P)
                    .where(P.c.id.in_([d.plan_id for d in due]))
                    .values(claimed_by=worker, claimed_until=until, updated_at=now)
                )
            return due

        return self.store.write(work)

    def settle(self, outcomes: Sequence[Outcome], worker: str, channel: str) -> int:
        """Record how claimed retries went, all in one transaction: handed over, or not
        (back off when the relay or webhook is down; cancel when trying again cannot
        help). Returns how many were handed over; a claim lost meanwhile (it timed out
        and another worker took the plan) does not count."""
        if not outcomes:
            return 0
        now = self.now()

        def work(conn: Connection) -> int:
            owned = conn.execute(
                select(P)
                .where(
                    P.c.id.in_([o.due.plan_id for o in outcomes]),
                    P.c.claimed_by == worker,
                    P.c.status == PlanStatus.SCHEDULED.value,
                )
                .order_by(P.c.id)
                .with_for_update()
            )
            rows = {row.id: row for row in owned}
            kept = [
                o
                for o in outcomes
                if (row := rows.get(o.due.plan_id)) and row.attempt == o.due.attempt - 1
            ]
            if not kept:
                return 0
            conn.execute(D.insert(), [_dispatch_row(o, now, worker, channel) for o in kept])
            plans = []
            for o in kept:
                plan = _plan(rows[o.due.plan_id])
                if o.sent:
                    new = dispatched(plan, now)
                elif o.permanent:
                    new = cancel(plan, o.detail)
                else:
                    new = dispatch_failed(plan, o.detail, self.settings, now)
                values = _plan_values(new, now) | {"claimed_by": "", "claimed_until": None}
                plans.append({"plan_id": o.due.plan_id, **values})
            conn.execute(_UPDATE_PLAN, plans)
            sent = [o.due.sent_id for o in kept if o.sent]
            if sent:
                conn.execute(
                    update(SM)
                    .where(SM.c.id.in_(sent))
                    .values(status=SentStatus.RETRYING.value, updated_at=now)
                )
            return len(sent)

        return self.store.write(work)

    def pull(self, worker: str, limit: int) -> list[Due]:
        """Claim due retries and mark them handed to the sender (`retries due --claim`)."""
        claimed = self.claim(worker, limit)
        self.settle([Outcome(due, sent=True) for due in claimed], worker, "pull")
        return claimed

    # --- admin --------------------------------------------------------------------------

    def plans(
        self, *, status: Sequence[str] = (), address: str | None = None, due: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Retry plans with their message id, filtered; `due` = scheduled and due now."""
        query = select(*(P.c[c] for c in PLAN_COLUMNS if c != "message_id"), SM.c.message_id)
        query = query.join(SM, SM.c.id == P.c.sent_id)
        if status:
            query = query.where(P.c.status.in_(status))
        if address:
            query = query.where(P.c.address == self.sup.normalize(address))
        if due:
            now = self.now()
            query = query.where(*_due_at(now))
        with self.store.read() as conn:
            result = conn.execution_options(yield_per=CHUNK).execute(query.order_by(P.c.id))
            for row in result:
                yield dict(row._mapping)

    def plan(self, plan_id: int) -> dict[str, Any]:
        """One plan, its message and its dispatch history."""
        with self.store.read() as conn:
            row = conn.execute(select(P).where(P.c.id == plan_id)).first()
            if row is None:
                raise UnknownPlan(f"no retry plan {plan_id}")
            sent = conn.execute(select(SM).where(SM.c.id == row.sent_id)).first()
            history = conn.execute(
                select(D).where(D.c.plan_id == plan_id).order_by(D.c.at, D.c.id)
            ).all()
        return {
            "plan": dict(row._mapping),
            "sent": _without_raw(sent),
            "dispatches": [dict(h._mapping) for h in history],
        }

    def cancel(self, plan_ids: Sequence[int], actor: str) -> tuple[list[int], list[int]]:
        """Cancel open plans by hand (audited). Returns (cancelled, not open or unknown)."""

        def work(conn: Connection) -> list[int]:
            rows = conn.execute(
                select(P).where(P.c.id.in_(list(plan_ids)), _open()).with_for_update()
            ).all()
            for row in rows:
                self._save_plan(conn, row.id, cancel(_plan(row), f"cancelled by {actor}"))
            self.store.audit(
                conn, "retry_cancel", [r.address for r in rows], actor, f"plans {plan_ids}"
            )
            return [r.id for r in rows]

        done = self.store.write(work)
        return done, [i for i in plan_ids if i not in done]

    def due(self) -> int:
        """How many plans are due now and not claimed (the `bounced_retries_due` gauge)."""
        now = self.now()
        query = select(func.count()).where(*_due_at(now))
        with self.store.read() as conn:
            return int(conn.execute(query).scalar_one())

    def counts(self) -> dict[str, int]:
        """Plans per status (for the worker's log line and the benchmark)."""
        with self.store.read() as conn:
            rows = conn.execute(select(P.c.status, func.count()).group_by(P.c.status))
            return {status: n for status, n in rows}


def _dispatch_row(out: Outcome, now: datetime, worker: str, channel: str) -> dict[str, Any]:
    return {
        "plan_id": out.due.plan_id,
        "attempt": out.due.attempt,
        "at": now,
        "worker": worker,
        "channel": channel,
        "outcome": "sent" if out.sent else "failed",
        "detail": out.detail[:500],
    }


#: One statement for a batch of plan updates (executemany).
_UPDATE_PLAN = (
    update(P)
    .where(P.c.id == bindparam("plan_id"))
    .values({name: bindparam(name) for name in (*_PLAN_FIELDS, "claimed_by", "claimed_until")})
)


def _due_at(now: datetime) -> tuple[Any, ...]:
    """Scheduled, due by `now`, and not claimed (or the claim has run out)."""
    return (
        P.c.status == PlanStatus.SCHEDULED.value,
        P.c.due_at <= now,
        or_(P.c.claimed_until.is_(None), P.c.claimed_until < now),
    )


def _open() -> Any:
    return P.c.status.in_([PlanStatus.SCHEDULED.value, PlanStatus.AWAITING.value])


def _skip(query: Any, postgres: bool) -> Any:
    """Rows another worker holds are left to it (PostgreSQL; SQLite has one writer)."""
    return query.with_for_update(skip_locked=True) if postgres else query


def _without_raw(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    raw = values.pop("raw", None)
    values["raw_bytes"] = len(raw) if raw is not None else 0
    return values
