"""Brevo (formerly Sendinblue) transactional webhooks: one JSON event, or an array of
them from a batched webhook. Authenticated by a bearer token or basic credentials.

Reading: type keys are the event names (hard_bounce, soft_bounce, blocked, spam,
invalid_email, deferred, delivered, ...); `reason` holds the server's words. Brevo
gives an event no id of its own, so an event is known by its message, name,
recipient and time (a retry sends the same).
"""

from __future__ import annotations

from typing import Any

from bounced.providers.facts import Events, NotUnderstood, Said, from_body, gather, objects

__all__ = ["NAME", "read"]

NAME = "brevo"


def _read_event(event: dict[str, Any]) -> tuple[str, list[Said]]:
    name = str(event.get("event", ""))
    if not name:
        raise NotUnderstood("no event name")
    message_id = str(event.get("message-id", ""))
    when = str(event.get("ts_event") or event.get("date") or "")
    said = Said(
        str(event.get("email", "")),
        (name,),
        diagnostic=str(event.get("reason", "") or ""),
        original_message_id=message_id,
        arrival_date=when,
    )
    identity = f"{message_id}:{name}:{said.recipient}:{when}" if message_id else ""
    return identity, [said]


def read(body: bytes) -> Events:
    """The facts of one verified Brevo post."""
    return from_body(NAME, body, lambda document: gather(NAME, _items(document), _read_event))


def _items(document: Any) -> list[dict[str, Any]]:
    return objects(document if isinstance(document, list) else [document])
