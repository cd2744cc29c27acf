"""Postmark webhooks: bounce, spam complaint and delivery records (one JSON object).

Postmark signs nothing, so the webhook URL carries basic credentials that are
checked in constant time, and a source-network allow-list may be configured.

Reading: type keys "<RecordType>:<Type>", then "<RecordType>:*" (`Type` is the
bounce's type: HardBounce, SoftBounce, Transient, DnsError, SpamComplaint,
AutoResponder, Blocked, DMARCPolicy, ManuallyDeactivated, ...). The record's `ID`
is its identity; `Details` holds the server's words.
"""

from __future__ import annotations

from typing import Any

from bounced.providers.facts import Events, NotUnderstood, Said, from_body, gather, obj

__all__ = ["NAME", "read"]

NAME = "postmark"


def _read_record(record: dict[str, Any]) -> tuple[str, list[Said]]:
    kind = str(record.get("RecordType", ""))
    if not kind:
        raise NotUnderstood("no RecordType")
    said = Said(
        str(record.get("Email") or record.get("Recipient") or ""),
        (f"{kind}:{record.get('Type', '')}", f"{kind}:*"),
        diagnostic=str(record.get("Details", "") or ""),
        remote_mta=str(record.get("ServerHost", "") or ""),
        original_message_id=str(record.get("MessageID", "")),
        arrival_date=str(record.get("BouncedAt") or record.get("DeliveredAt") or ""),
    )
    record_id = record.get("ID")
    return (f"{kind}-{record_id}" if record_id else ""), [said]


def read(body: bytes) -> Events:
    """The facts of one verified Postmark record."""
    return from_body(NAME, body, lambda record: gather(NAME, [obj(record)], _read_record))
