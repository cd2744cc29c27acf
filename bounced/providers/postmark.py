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

from bounced.config import BasicAuthWebhook
from bounced.providers.auth import BasicAuthVerifier
from bounced.providers.facts import Events, NotUnderstood, Said, gather, obj

__all__ = ["NAME", "read", "verifier"]

NAME = "postmark"


def verifier(settings: BasicAuthWebhook) -> BasicAuthVerifier:
    return BasicAuthVerifier(NAME, settings)


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


def read(payload: Any) -> Events:
    """The facts of one verified Postmark record."""
    return gather(NAME, [obj(payload)], _read_record)
