"""Every table of the database (sqlmodel models, one metadata), shared by the repositories
and the migrations, with the Core table objects the repositories write statements on.

The database itself enforces what must hold however many processes write:
one address row per normalised address, one event per (address, message key,
kind, status, notice) so the same notice ingested twice is refused, and at most one
*counted* return per (address, message key) so an original message counts once.
On PostgreSQL the event table is partitioned by month and those two keys are unique
indexes of `event_key` instead (bounced.db.partitions, migration 0008).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = [
    "OPEN_WHERE",
    "Address",
    "Allow",
    "ApiToken",
    "Audit",
    "BigId",
    "EventCursor",
    "EventRow",
    "InboxMessage",
    "Member",
    "RetryDispatch",
    "RetryPlan",
    "Selection",
    "SentMessage",
    "UTCDateTime",
    "address_table",
    "allow_table",
    "audit_table",
    "big_id",
    "cursor_table",
    "dispatch_table",
    "event_table",
    "inbox_table",
    "member_table",
    "metadata",
    "plan_table",
    "selection_table",
    "sent_table",
    "text_column",
    "time_column",
    "token_table",
]

metadata = SQLModel.metadata


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


#: Events and audit rows grow for years: 64-bit keys (SQLite's rowid already is).
BigId = BigInteger().with_variant(Integer, "sqlite")


def big_id() -> Any:
    return Field(default=None, sa_column=Column(BigId, primary_key=True))


def time_column(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def text_column(**kw: Any) -> Any:
    return Field(default="", sa_type=Text, **kw)


class Address(SQLModel, table=True):
    """One normalised address and its state (see bounced.policy.AddressState)."""

    __tablename__ = "address"
    #: By state in address order: a page of `list --status` reads only its rows (0006).
    __table_args__ = (Index("ix_address_state_address", "state", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(sa_type=Text, unique=True)
    domain: str = Field(sa_type=Text, index=True)
    state: str = Field(default="active", sa_type=Text)
    blocked_reason: str | None = Field(default=None, sa_type=Text, index=True)
    auto_reason: str | None = Field(default=None, sa_type=Text)
    manual: bool = False
    former_employee: bool = False
    returns: int = 0
    first_return_at: datetime | None = time_column()
    last_return_at: datetime | None = time_column()
    blocked_at: datetime | None = time_column()
    #: Returns are counted from here on (the last unmark).
    counted_since: datetime | None = time_column()
    last_reason: str = text_column()
    last_status: str = text_column()
    last_class: str = text_column()
    created_at: datetime | None = time_column(nullable=False)
    updated_at: datetime | None = time_column(nullable=False)


class EventRow(SQLModel, table=True):
    """One parsed bounce row, as received. Never changed, except `counts` by `policy apply`."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint(
            "address_id", "message_key", "kind", "status", "notice", name="uq_event_notice"
        ),
        Index(
            "uq_event_return",
            "address_id",
            "message_key",
            unique=True,
            sqlite_where=Column("counts"),
            postgresql_where=Column("counts"),
        ),
    )

    id: int | None = big_id()
    address_id: int = Field(
        sa_column=Column(Integer, ForeignKey("address.id", ondelete="CASCADE"), nullable=False)
    )
    message_key: str = Field(sa_type=Text)
    #: The notice this row came from (bounced.suppressions.notice_id): one event per notice.
    notice: str = text_column()
    kind: str = Field(sa_type=Text)
    bounce_class: str = text_column()
    reason: str = text_column()
    status: str = text_column()
    reply_code: str = text_column()
    diagnostic: str = text_column()
    remote_mta: str = text_column()
    reporting_mta: str = text_column()
    original_message_id: str = text_column()
    feedback_type: str = text_column()
    detector: str = text_column()
    #: The address the message was last handed to, when not the one mailed (Bounce).
    final_recipient: str = text_column()
    #: The recipient's domain, kept here so deliverability needs no join.
    domain: str = text_column()
    source: str = text_column()
    received_at: datetime | None = time_column(nullable=False, index=True)
    counts: bool = False


class Selection(SQLModel, table=True):
    """A named set of addresses (a project, a campaign's list)."""

    __tablename__ = "selection"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    created_at: datetime | None = time_column(nullable=False)


class Member(SQLModel, table=True):
    __tablename__ = "selection_member"

    selection_id: int = Field(
        sa_column=Column(Integer, ForeignKey("selection.id", ondelete="CASCADE"), primary_key=True)
    )
    address_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("address.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )


class Allow(SQLModel, table=True):
    """Allow-list entries kept in the store: an address, or `@domain`."""

    __tablename__ = "allow"

    id: int | None = Field(default=None, primary_key=True)
    entry: str = Field(sa_type=Text, unique=True)
    actor: str = text_column()
    created_at: datetime | None = time_column(nullable=False)


class Audit(SQLModel, table=True):
    """One admin action on one address (or on the store, with address empty)."""

    __tablename__ = "audit"

    id: int | None = big_id()
    at: datetime | None = time_column(nullable=False, index=True)
    actor: str = text_column()
    action: str = Field(sa_type=Text)
    address: str = Field(default="", sa_type=Text, index=True)
    detail: str = text_column()


# The sending log and retry plans (migration 0002).

#: Statuses in which a plan is still running (the partial unique index needs them literally).
OPEN_WHERE = text("status IN ('scheduled', 'awaiting')")


class SentMessage(SQLModel, table=True):
    """One message a sender sent (or tried to) to one address: the sending log."""

    __tablename__ = "sent_message"
    __table_args__ = (UniqueConstraint("address", "message_key", name="uq_sent_message"),)

    id: int | None = big_id()
    address: str = Field(sa_type=Text, index=True)
    domain: str = text_column()
    message_id: str = text_column()
    #: The key bounces carry for this message (see bounced.suppressions.message_key).
    message_key: str = text_column()
    subject: str = text_column()
    status: str = text_column(index=True)
    error: str = text_column()
    reason: str = text_column()
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    sent_at: datetime | None = time_column(nullable=False, index=True)
    updated_at: datetime | None = time_column(nullable=False)


class RetryPlan(SQLModel, table=True):
    """The resends of one sent message (see bounced.sending.plans.Plan)."""

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

    id: int | None = big_id()
    sent_id: int = Field(
        sa_column=Column(
            BigId, ForeignKey("sent_message.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    address: str = text_column(index=True)
    status: str = text_column()
    reason: str = text_column()
    attempt: int = 0
    started_at: datetime | None = time_column(nullable=False)
    due_at: datetime | None = time_column()
    last_attempt_at: datetime | None = time_column()
    dispatch_failures: int = 0
    note: str = text_column()
    claimed_by: str = text_column()
    claimed_until: datetime | None = time_column()
    #: When the retries_exhausted event went to the policy (None: not yet).
    escalated_at: datetime | None = time_column()
    updated_at: datetime | None = time_column(nullable=False)


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

    id: int | None = big_id()
    plan_id: int = Field(
        sa_column=Column(
            BigId, ForeignKey("retry_plan.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    attempt: int = 0
    at: datetime | None = time_column(nullable=False)
    worker: str = text_column()
    channel: str = text_column()
    outcome: str = text_column()
    detail: str = text_column()


class EventCursor(SQLModel, table=True):
    """How far the sending log has read the bounce events (one row per reader)."""

    __tablename__ = "event_cursor"

    name: str = Field(sa_type=Text, primary_key=True)
    event_id: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


# The inbox (migration 0003).


class InboxMessage(SQLModel, table=True):
    """One message kept aside (migration 0003)."""

    __tablename__ = "inbox"

    id: int | None = big_id()
    spool_id: str = Field(sa_type=Text, unique=True)
    mail_from: str = text_column()
    #: Envelope recipients, comma-separated.
    rcpt_tos: str = text_column()
    client: str = text_column()
    subject: str = text_column()
    reason: str = text_column()
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime | None = time_column(nullable=False, index=True)
    assigned_to: str = text_column()
    assigned_at: datetime | None = time_column()


# Bearer tokens of the HTTP API (migration 0005).


class ApiToken(SQLModel, table=True):
    """One API token: its public key id, the SHA-256 of its secret, its scopes (comma
    separated). The secret itself is shown once and never stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    key_id: str = Field(sa_type=Text, unique=True)
    secret_hash: str = Field(sa_type=Text)
    scopes: str = Field(sa_type=Text)
    created_at: datetime | None = time_column(nullable=False)
    revoked_at: datetime | None = time_column()


# The tables as SQLAlchemy Core objects, for the repositories' statements.
address_table = metadata.tables["address"]
event_table = metadata.tables["event"]
selection_table = metadata.tables["selection"]
member_table = metadata.tables["selection_member"]
allow_table = metadata.tables["allow"]
audit_table = metadata.tables["audit"]
sent_table = metadata.tables["sent_message"]
plan_table = metadata.tables["retry_plan"]
dispatch_table = metadata.tables["retry_dispatch"]
cursor_table = metadata.tables["event_cursor"]
inbox_table = metadata.tables["inbox"]
token_table = metadata.tables["api_token"]
