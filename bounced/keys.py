"""Identities that make counting exact: which notice an event came from, which original
message a return is.

A return is one sent message that came back for an address, however often it
bounces; an event is one notice, however often it is delivered. Both keys are
computed here, once, and the database's unique keys hold them.
"""

from __future__ import annotations

import hashlib

from bounced.dsn import Bounce, Report

__all__ = ["message_key", "notice_id"]

#: Longer original Message-IDs are stored as their digest (an index has its limits).
_MAX_KEY = 200


def notice_id(report: Report, raw: bytes | str) -> str:
    """The identity of the returned notice itself: its Message-ID, else a digest of its
    bytes. The same notice delivered twice is one event; a resend that bounces again
    (a new notice, often word for word the same) is another."""
    if report.message_id.strip():
        return report.message_id.strip()
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    return "sha256:" + hashlib.sha256(data).hexdigest()


def message_key(bounce: Bounce, notice: str, address: str) -> str:
    """One original message for one address: the original Message-ID when the bounce
    carries it; otherwise the notice's identity (`notice_id`) with the recipient, so
    that at least the same notice ingested twice is one return."""
    original = bounce.original_message_id.strip().strip("<>").strip()
    if original:
        if len(original) <= _MAX_KEY:
            return "mid:" + original
        return "mid-sha256:" + hashlib.sha256(original.encode()).hexdigest()
    digest = hashlib.sha256(f"{notice}\0{address}".encode()).hexdigest()
    return "bounce:" + digest[:40]
