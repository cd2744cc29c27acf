"""SparkPost webhooks: a JSON array of `{"msys": {"<category>": {event}}}` (basic auth).

Reading: bounce and out_of_band events by their `bounce_class` (type keys
"bounce:<class>", then "bounce:*": SparkPost's classes say the same thing for
both), others "<type>:<class>" then "<type>:*"; the other categories (track_event,
gen_event, ...) by their category. `raw_reason` holds the server's words,
`event_id` is the event's identity. SparkPost's test post (`{"msys": {}}`) is ignored.
"""

from __future__ import annotations

from typing import Any

from bounced.providers.facts import Events, NotUnderstood, Said, from_body, gather, obj, objects

__all__ = ["NAME", "read"]

NAME = "sparkpost"

#: Categories whose events concern delivery; the others are tracking and the like.
_READ = ("message_event", "unsubscribe_event")


def _read_item(item: dict[str, Any]) -> tuple[str, list[Said]]:
    msys = obj(item.get("msys"))
    if not msys:
        return "", []
    category, event = next(iter(msys.items()))
    event = obj(event)
    if category not in _READ:
        return str(event.get("event_id", "")), [Said("", (str(category),))]
    name = str(event.get("type", ""))
    if not name:
        raise NotUnderstood(f"{category} without a type")
    group = "bounce" if name == "out_of_band" else name
    said = Said(
        str(event.get("rcpt_to") or event.get("raw_rcpt_to") or ""),
        (f"{group}:{event.get('bounce_class', '')}", f"{group}:*"),
        diagnostic=str(event.get("raw_reason") or event.get("reason") or ""),
        remote_mta=str(event.get("remote_mta", "") or ""),
        original_message_id=str(event.get("message_id", "")),
        feedback_type=str(event.get("fbtype", "") or ""),
        arrival_date=str(event.get("timestamp", "")),
    )
    return str(event.get("event_id", "")), [said]


def read(body: bytes) -> Events:
    """The facts of one verified SparkPost post."""
    return from_body(NAME, body, lambda document: gather(NAME, _items(document), _read_item))


def _items(document: Any) -> list[dict[str, Any]]:
    return objects(document if isinstance(document, list) else [document])
