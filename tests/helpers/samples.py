"""What a sample's expectations say: the keys of an expected row and the `Bounce`
attribute each one checks (DSN samples and provider webhook fixtures alike)."""

from __future__ import annotations

__all__ = ["ROW_FIELDS"]

#: Expectation keys and the `Bounce` attribute each one checks.
ROW_FIELDS = {
    "recipient": "recipient",
    "final_recipient": "final_recipient",
    "kind": "kind",
    "class": "bounce_class",
    "reason": "reason",
    "status": "status",
    "reply_code": "reply_code",
    "original_message_id": "original_message_id",
    "feedback_type": "feedback_type",
}
