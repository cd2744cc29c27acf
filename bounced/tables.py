"""The store's tables (sqlmodel), shared by the store's queries and the migrations.

The database itself enforces what must hold however many processes write:
one address row per normalised address, one event per (address, message key,
kind, status, notice) so the same notice ingested twice is refused, and at most one
*counted* return per (address, message key) so an original message counts once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = ["Address", "Allow", "Audit", "Event", "Member", "Selection", "UTCDateTime", "metadata"]

metadata = SQLModel.metadata


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


#: Events and audit rows grow for years: 64-bit keys (SQLite's rowid already is).
BigId = BigInteger().with_variant(Integer, "sqlite")


def _big_id():
    return Field(default=None, sa_column=Column(BigId, primary_key=True))


def _time(*, nullable: bool = True, index: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _text(**kw):
    return Field(default="", sa_type=Text, **kw)


class Address(SQLModel, table=True):
    """One normalised address and its state (see bounced.policy.AddressState)."""

    __tablename__ = "address"

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(sa_type=Text, unique=True)
    domain: str = Field(sa_type=Text, index=True)
    state: str = Field(default="active", sa_type=Text, index=True)
    blocked_reason: str | None = Field(default=None, sa_type=Text, index=True)
    auto_reason: str | None = Field(default=None, sa_type=Text)
    manual: bool = False
    former_employee: bool = False
    returns: int = 0
    first_return_at: datetime | None = _time()
    last_return_at: datetime | None = _time()
    blocked_at: datetime | None = _time()
    #: Returns are counted from here on (the last unmark).
    counted_since: datetime | None = _time()
    last_reason: str = _text()
    last_status: str = _text()
    last_class: str = _text()
    created_at: datetime | None = _time(nullable=False)
    updated_at: datetime | None = _time(nullable=False)


class Event(SQLModel, table=True):
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

    id: int | None = _big_id()
    address_id: int = Field(
        sa_column=Column(Integer, ForeignKey("address.id", ondelete="CASCADE"), nullable=False)
    )
    message_key: str = Field(sa_type=Text)
    #: The notice this row came from (bounced.api.notice_id): one event per notice.
    notice: str = _text()
    kind: str = Field(sa_type=Text)
    bounce_class: str = _text()
    reason: str = _text()
    status: str = _text()
    reply_code: str = _text()
    diagnostic: str = _text()
    remote_mta: str = _text()
    reporting_mta: str = _text()
    original_message_id: str = _text()
    feedback_type: str = _text()
    detector: str = _text()
    #: The address the message was last handed to, when not the one mailed (Bounce).
    final_recipient: str = _text()
    #: The recipient's domain, kept here so deliverability needs no join.
    domain: str = _text()
    source: str = _text()
    received_at: datetime | None = _time(nullable=False, index=True)
    counts: bool = False


class Selection(SQLModel, table=True):
    """A named set of addresses (a project, a campaign's list)."""

    __tablename__ = "selection"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    created_at: datetime | None = _time(nullable=False)


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
    actor: str = _text()
    created_at: datetime | None = _time(nullable=False)


class Audit(SQLModel, table=True):
    """One admin action on one address (or on the store, with address empty)."""

    __tablename__ = "audit"

    id: int | None = _big_id()
    at: datetime | None = _time(nullable=False, index=True)
    actor: str = _text()
    action: str = Field(sa_type=Text)
    address: str = Field(default="", sa_type=Text, index=True)
    detail: str = _text()


# The sending log and retry plans (bounced.sending_tables) share this metadata.
from bounced import sending_tables  # noqa: E402, F401
