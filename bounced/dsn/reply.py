"""A bare SMTP reply ("550 5.1.1 <x@y>: user unknown") read as a bounce row.

A sender whose own SMTP conversation was refused has no returned message, only
the server's words. They go through the same rules as a parsed DSN's
diagnostic (`bounced.dsn.classify.classify`), so "mailbox full" means the same
whether it came back by mail or was said during the send.
"""

from __future__ import annotations

from bounced.dsn import Bounce, Kind
from bounced.dsn.classify import classify
from bounced.dsn.evidence import Finding
from bounced.dsn.fields import failure_reply_code, failure_status, first_reply_code
from bounced.rules import load

__all__ = ["DETECTOR", "bounce_of_reply"]

#: The detector named on rows made from a sender's SMTP error.
DETECTOR = "smtp-reply"


def bounce_of_reply(
    recipient: str, text: str, *, message_id: str = "", command: str = "RCPT", remote_mta: str = ""
) -> Bounce:
    """The bounce row for `recipient` that the reply `text` amounts to."""
    words = " ".join(text.split())
    reply_code = failure_reply_code(f" {words}") or first_reply_code(words)
    finding = Finding(
        recipient,
        action="failed",
        status=failure_status(words),
        reply_code=reply_code,
        diagnostic=words,
        remote_mta=remote_mta,
        smtp_command=command.upper(),
        diagnostic_type="smtp",
    )
    decision = classify(finding, Kind.FAILED, None, load())
    return Bounce(
        recipient,
        Kind.FAILED,
        decision.bounce_class,
        decision.reason,
        decision.status,
        reply_code,
        words,
        remote_mta,
        original_message_id=message_id,
        action="failed",
        smtp_command=finding.smtp_command,
        detector=DETECTOR,
        rule=decision.rule,
    )
