"""Plain RFC 3464 delivery status notifications, built for store and CLI tests.

Real enough for the parser (multipart/report, message/delivery-status with
per-recipient fields, text/rfc822-headers with the original Message-ID), and
small enough to make thousands of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "HARD",
    "REPUTATION",
    "SOFT_FULL",
    "Rcpt",
    "delayed",
    "make_dsn",
    "sender_side",
    "soft",
]


@dataclass(frozen=True)
class Rcpt:
    address: str
    status: str = "5.1.1"
    action: str = "failed"
    diagnostic: str = "550 5.1.1 <{address}>: Recipient address rejected: User unknown"
    #: The Original-Recipient field's address (the one mailed), when not `address`.
    original: str = ""


HARD = "5.1.1"
SOFT_FULL = ("4.2.2", "452 4.2.2 <{address}>: Mailbox full")
REPUTATION = ("5.7.1", "554 5.7.1 Service unavailable; client host blocked due to poor reputation")


def make_dsn(
    *recipients: Rcpt | str,
    original_id: str | None = "<orig-1@sender.example.com>",
    message_id: str = "<dsn-1@mx.example.net>",
    remote_mta: str = "mx.example.org",
) -> bytes:
    """A DSN reporting on `recipients` (addresses or Rcpt rows) of one original message."""
    rows = [r if isinstance(r, Rcpt) else Rcpt(r) for r in recipients]
    per_recipient = "\n".join(
        (f"Original-Recipient: rfc822; {r.original}\n" if r.original else "")
        + f"Final-Recipient: rfc822; {r.address}\n"
        f"Action: {r.action}\n"
        f"Status: {r.status}\n"
        f"Remote-MTA: dns; {remote_mta}\n"
        f"Diagnostic-Code: smtp; {r.diagnostic.format(address=r.address)}\n"
        for r in rows
    )
    original = f"Message-ID: {original_id}\n" if original_id else ""
    return f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: sender@sender.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: {message_id}
Date: Mon, 1 Jan 2024 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain

This is the mail system at host mx.example.net. Your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Mon, 1 Jan 2024 09:59:00 +0000

{per_recipient}
--BOUNDARY
Content-Type: text/rfc822-headers

From: sender@sender.example.com
To: {", ".join(r.address for r in rows)}
Subject: Hello
{original}
--BOUNDARY--
""".encode()


def soft(address: str) -> Rcpt:
    status, diagnostic = SOFT_FULL
    return Rcpt(address, status, diagnostic=diagnostic)


def sender_side(address: str) -> Rcpt:
    status, diagnostic = REPUTATION
    return Rcpt(address, status, diagnostic=diagnostic)


def delayed(address: str) -> Rcpt:
    return Rcpt(address, "4.4.7", "delayed", "421 4.4.7 Connection timed out")
