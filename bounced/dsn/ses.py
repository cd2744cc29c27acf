"""Amazon SES notifications: JSON documents (bounce, complaint, delivery) that
SES publishes through SNS, often delivered by mail to the sender's topic."""

from __future__ import annotations

import json
import re
from typing import Any

from bounced.dsn.evidence import Finding
from bounced.dsn.fields import failure_reply_code, first_reply_code, first_status, typed_value
from bounced.dsn.mime import Mail

__all__ = ["findings"]

_OPENER = re.compile(r'\{\s{0,20}"(?:notificationType|eventType|Type)"\s{0,20}:')


def findings(mail: Mail) -> list[Finding]:
    """Rows of the first SES notification found in a text part; empty otherwise."""
    for part in mail.parts_of("text/plain", "application/json"):
        document = _document(part.text)
        if document is not None:
            return _rows(document)
    return []


def _document(text: str) -> dict[str, Any] | None:
    opener = _OPENER.search(text)
    if opener is None:
        return None
    try:
        document, _ = json.JSONDecoder().raw_decode(text[opener.start() :].replace("\n", ""))
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("Message"), str):
        try:  # an SNS envelope: the notification is its Message, itself JSON
            document = json.loads(document["Message"])
        except ValueError:
            return None
    return document if isinstance(document, dict) else None


def _rows(document: dict[str, Any]) -> list[Finding]:
    kind = str(document.get("notificationType") or document.get("eventType") or "").lower()
    mail_part = document.get("mail") or {}
    reporting = str(mail_part.get("sourceArn", "") and "amazonses.com")
    if kind == "bounce":
        bounce = document.get("bounce") or {}
        # SES sends a Bounce notification when it has stopped trying, Transient or
        # Permanent alike: the message failed (a Transient one is soft by its code and
        # words), as the SES webhook reads it (bounced.providers.ses); delays are
        # DeliveryDelay events, not bounces.
        return [
            _finding(r, "failed", reporting, bounce.get("timestamp"))
            for r in bounce.get("bouncedRecipients") or ()
            if isinstance(r, dict)
        ]
    if kind == "complaint":
        complaint = document.get("complaint") or {}
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        return [
            Finding(
                recipient=str(r.get("emailAddress", "")).lower(),
                feedback_type=feedback,
                arrival_date=str(complaint.get("timestamp", "")),
                source="amazonses",
            )
            for r in complaint.get("complainedRecipients") or ()
            if isinstance(r, dict) and r.get("emailAddress")
        ]
    if kind == "delivery":
        delivery = document.get("delivery") or {}
        response = str(delivery.get("smtpResponse", ""))
        return [
            Finding(
                recipient=str(r).lower(),
                action="delivered",
                status=first_status(response) or "2.0.0",
                reply_code=first_reply_code(response),
                diagnostic=response,
                remote_mta=str(delivery.get("reportingMTA", "")),
                source="amazonses",
            )
            for r in delivery.get("recipients") or ()
        ]
    return []


def _finding(row: dict[str, Any], action: str, reporting: str, when: Any) -> Finding:
    diagnostic = typed_value(str(row.get("diagnosticCode", "")))
    return Finding(
        recipient=str(row.get("emailAddress", "")).lower(),
        action=action,
        status=str(row.get("status", "")),
        reply_code=failure_reply_code(diagnostic),
        diagnostic=diagnostic,
        reporting_mta=reporting,
        arrival_date=str(when or ""),
        source="amazonses",
    )
