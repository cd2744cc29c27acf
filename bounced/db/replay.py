"""`bounced policy apply`: every address's history replayed under the current policy.

Each address is recomputed from its stored events and admin actions with
`bounced.policy.replay`, in chunks of addresses locked for the transaction; the
events' `counts` flags follow, so the unique return key keeps holding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, select, update

from bounced.db.database import CHUNK, batched, utc
from bounced.db.suppression import SuppressionRepository
from bounced.db.tables import address_table, audit_table, event_table
from bounced.dsn import BounceClass, Kind, Reason
from bounced.policy import EXHAUSTED, Action, AddressState, AdminAction, Event, replay

__all__ = ["Change", "ReplayRepository"]

#: The event columns a replay reads.
_REPLAYED = (
    "id",
    "address_id",
    "message_key",
    "received_at",
    "counts",
    "kind",
    "bounce_class",
    "reason",
    "status",
    "reply_code",
    "detector",
)


@dataclass(frozen=True, slots=True)
class Change:
    """An address whose state differs under the current policy (`policy apply`)."""

    address: str
    before: AddressState
    after: AddressState


class ReplayRepository:
    """Policy replays over the addresses of a `SuppressionRepository`."""

    def __init__(self, suppression: SuppressionRepository) -> None:
        self.suppression = suppression
        self.database = suppression.database

    def apply_policy(self, *, dry_run: bool) -> Iterator[Change]:
        """Recompute every address from its events and admin actions under the current
        settings; yield what differs, and write it unless `dry_run`."""
        address_id = address_table.c.id
        last = 0
        while True:
            with self.database.read() as conn:
                query = select(address_id).where(address_id > last).order_by(address_id)
                ids = list(conn.scalars(query.limit(CHUNK)))
            if not ids:
                return
            last = ids[-1]
            yield from self.database.write(
                lambda conn, ids=ids: self._reapply(conn, ids, dry_run)  # type: ignore[misc]
            )

    def _reapply(self, conn: Connection, ids: list[int], dry_run: bool) -> list[Change]:
        addresses, events, audit = address_table.c, event_table.c, audit_table.c
        suppression = self.suppression
        now = self.database.clock()
        locked = conn.execute(
            select(address_table)
            .where(addresses.id.in_(ids))
            .order_by(addresses.id)
            .with_for_update()
        )
        rows = {r.id: r for r in locked}
        stored = conn.execute(
            select(*(events[name] for name in _REPLAYED))
            .where(events.address_id.in_(ids))
            .order_by(events.address_id, events.received_at, events.id)
        )
        by_address = {k: list(g) for k, g in groupby(stored, key=lambda e: e.address_id)}
        actions = conn.execute(
            select(audit.address, audit.action, audit.at)
            .where(
                audit.address.in_([r.address for r in rows.values()]),
                audit.action.in_([a.value for a in Action]),
            )
            .order_by(audit.address, audit.at, audit.id)
        )
        admin = {k: list(g) for k, g in groupby(actions, key=lambda a: a.address)}
        changes = []
        flips: dict[bool, list[int]] = {True: [], False: []}
        allowed = suppression.allowed(conn, [r.address for r in rows.values()])
        for aid, row in rows.items():
            before = suppression.state(row, row.address in allowed)
            evs = by_address.get(aid, [])
            history: list[tuple[datetime, int, Any, Event | AdminAction]] = [
                (utc(e.received_at), 1, e, _replay_event(e)) for e in evs
            ]
            history += [
                (utc(a.at), 0, None, AdminAction(Action(a.action), utc(a.at)))
                for a in admin.get(row.address, [])
            ]
            history.sort(key=lambda t: (t[0], t[1], t[2].id if t[2] else 0))
            after, counts = replay(
                [h[3] for h in history], suppression.policy, allowed=before.allowed
            )
            events_of = [h[2] for h in history if h[2] is not None]
            for e, counted in zip(events_of, counts, strict=True):
                if e.counts != counted:
                    flips[counted].append(e.id)
            if _summary(after) != _summary(before):
                changes.append(Change(row.address, before, after))
                if not dry_run:
                    suppression.save(conn, row, after, now)
        if not dry_run:
            # Un-count first: the unique return key must hold after every statement.
            for counted in (False, True):
                for chunk in batched(flips[counted], CHUNK):
                    conn.execute(
                        update(event_table).where(events.id.in_(chunk)).values(counts=counted)
                    )
        return changes


def _summary(state: AddressState) -> tuple[Any, ...]:
    """What `policy apply` compares: the verdict and the count, not timestamps that depend
    on the order in which concurrent writers committed."""
    s = state
    return (s.state, s.blocked_reason, s.auto_reason, s.returns, s.manual, s.former_employee)


def _replay_event(row: Any) -> Event:
    return Event(
        Kind(row.kind),
        utc(row.received_at),
        BounceClass(row.bounce_class) if row.bounce_class else None,
        Reason(row.reason) if row.reason in Reason._value2member_map_ else None,
        row.status,
        row.reply_code,
        key=row.message_key,
        exhausted=row.detector == EXHAUSTED,
    )
