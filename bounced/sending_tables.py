"""Tables of the sending log and the retry plans (migration 0002), beside bounced.tables.

The database holds what must hold however many workers run: one sent row per
(address, message key); at most one open plan per sent message; at most one
successful dispatch per (plan, attempt), so no retry is ever handed out twice
even if the claiming logic had a hole.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from bounced.tables import BigId, _big_id, _text, _time

__all__ = ["EventCursor", "RetryDispatch", "RetryPlan", "SentMessage"]

#: Statuses in which a plan is still running (the partial unique index needs them literally).
OPEN_WHERE = text("status IN ('scheduled', 'awaiting')")


class SentMessage(SQLModel, table=True):
    """One message a sender sent (or tried to) to one address: the sending log."""

    __tablename__ = "sent_message"
    __table_args__ = (UniqueConstraint("address", "message_key", name="uq_sent_message"),)

    id: int | None = _big_id()
    address: str = Field(sa_type=Text, index=True)
    domain: str = _text()
    message_id: str = _text()
    #: The key bounces carry for this message (see bounced.api.message_key).
    message_key: str = _text()
    subject: str = _text()
    status: str = _text(index=True)
    error: str = _text()
    reason: str = _text()
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    sent_at: datetime | None = _time(nullable=False, index=True)
    updated_at: datetime | None = _time(nullable=False)


class RetryPlan(SQLModel, table=True):
    """The resends of one sent message (see bounced.retry.Plan)."""

    __tablename__ = "retry_plan"
    __table_args__ = (
        Index(
            "uq_retry_plan_open",
            "sent_id",
            unique=True,
            sqlite_where=OPEN_WHERE,
            postgresql_where=OPEN_WHERE,
        ),
        Index("ix_retry_plan_due", "status", "due_at"),
    )

    id: int | None = _big_id()
    sent_id: int = Field(
        sa_column=Column(
            BigId, ForeignKey("sent_message.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    address: str = _text(index=True)
    status: str = _text()
    reason: str = _text()
    attempt: int = 0
    started_at: datetime | None = _time(nullable=False)
    due_at: datetime | None = _time()
    last_attempt_at: datetime | None = _time()
    dispatch_failures: int = 0
    note: str = _text()
    claimed_by: str = _text()
    claimed_until: datetime | None = _time()
    #: When the retries_exhausted event went to the policy (None: not yet).
    escalated_at: datetime | None = _time()
    updated_at: datetime | None = _time(nullable=False)


class RetryDispatch(SQLModel, table=True):
    """Each hand-over of a retry (and each failed try to hand it over)."""

    __tablename__ = "retry_dispatch"
    __table_args__ = (
        Index(
            "uq_retry_dispatch_sent",
            "plan_id",
            "attempt",
            unique=True,
            sqlite_where=text("outcome = 'sent'"),
            postgresql_where=text("outcome = 'sent'"),
        ),
    )

    id: int | None = _big_id()
    plan_id: int = Field(
        sa_column=Column(
            BigId, ForeignKey("retry_plan.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    attempt: int = 0
    at: datetime | None = _time(nullable=False)
    worker: str = _text()
    channel: str = _text()
    outcome: str = _text()
    detail: str = _text()


class EventCursor(SQLModel, table=True):
    """How far the sending log has read the bounce events (one row per reader)."""

    __tablename__ = "event_cursor"

    name: str = Field(sa_type=Text, primary_key=True)
    event_id: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
