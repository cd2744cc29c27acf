"""Whatever a verified payload holds, reading it never fails: each event is facts, kept
aside, or ignored (a verified payload is never lost and never a 500). And any change of
a signed SendGrid body's bytes fails its verification."""

from __future__ import annotations

import json

from helpers.webhook_signing import Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from bounced.errors import WebhookRefused
from bounced.providers.auth import Request
from bounced.providers.registry import READERS, WEBHOOK_PROVIDERS, verifier

SIGNER = Signer()
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_KEYS = st.sampled_from(
    [
        "event",
        "type",
        "email",
        "recipient",
        "RecordType",
        "Type",
        "msys",
        "message_event",
        "bounce",
        "bouncedRecipients",
        "emailAddress",
        "notificationType",
        "eventType",
        "delivery-status",
        "message",
        "headers",
        "event-data",
        "bounce_class",
        "reason",
        "Message",
        "MessageId",
        "status",
        "diagnosticCode",
        "rcpt_to",
        "Email",
    ]
) | st.text(max_size=8)
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(provider=st.sampled_from(WEBHOOK_PROVIDERS), document=JSON)
def test_reading_any_verified_payload_never_fails(provider: str, document) -> None:
    """(SES and Mailgun readers get the parsed document their signature lives in, the
    others the verified body.)"""
    if provider == "ses":
        payload = {"Type": "Notification", "MessageId": "m", "Message": json.dumps(document)}
    elif provider == "mailgun":
        payload = {"event-data": document}
    else:
        payload = json.dumps(document).encode()
    events = READERS[provider](payload)
    for notice in events.notices:
        assert notice.notice.startswith(provider + ":")
        assert notice.bounces and all(b.recipient for b in notice.bounces)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(min_size=1, max_size=200), flip=st.integers(min_value=0))
def test_any_changed_byte_of_a_signed_body_fails(body: bytes, flip: int) -> None:
    headers = SIGNER.sendgrid_headers(body)
    check = verifier("sendgrid", SIGNER.settings())
    assert check.verify(Request(body, headers)) == body
    index = flip % len(body)
    changed = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
    try:
        check.verify(Request(changed, headers))
    except WebhookRefused as exc:
        assert exc.reason == "bad signature"
    else:
        raise AssertionError("a changed body verified")
