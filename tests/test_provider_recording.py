"""Provider events are recorded like parsed DSNs: the same policy, store and counting.
A retried webhook event is recorded once; a bounce reported by webhook and by DSN
for the same original message is one return."""

from __future__ import annotations

import json

from helpers.dsn import make_dsn, soft

from bounced import Suppressions
from bounced.providers.facts import Events
from bounced.providers.registry import READERS
from bounced.suppressions import Outcome

ORIGINAL = "<orig-1@sender.example.com>"


def ses_bounce(recipient: str, sub_type: str, diagnostic: str, message_id: str) -> Events:
    document = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Transient",
            "bounceSubType": sub_type,
            "bouncedRecipients": [{"emailAddress": recipient, "diagnosticCode": diagnostic}],
        },
        "mail": {"messageId": "ses-1", "commonHeaders": {"messageId": ORIGINAL}},
    }
    message = {"Type": "Notification", "MessageId": message_id, "Message": json.dumps(document)}
    return READERS["ses"](message)


def record(sup: Suppressions, events: Events):
    return list(sup.ingest_bounces(("webhook:ses", n.notice, n.bounces) for n in events.notices))


def test_a_retried_event_is_recorded_once(database_url: str) -> None:
    events = ses_bounce("jane@example.com", "MailboxFull", "smtp; 452 4.2.2 Mailbox full", "m-1")
    with Suppressions.open(database_url) as sup:
        (first,) = record(sup, events)
        (again,) = record(sup, events)
        shown = sup.show("jane@example.com")
    assert (first.outcome, again.outcome) == (Outcome.RECORDED, Outcome.DUPLICATE)
    assert len(shown["events"]) == 1
    assert shown["address"]["returns"] == 1


def test_webhook_and_dsn_of_one_message_are_one_return(database_url: str) -> None:
    address = "jane@example.com"
    events = ses_bounce(address, "MailboxFull", "smtp; 452 4.2.2 Mailbox full", "m-2")
    with Suppressions.open(database_url) as sup:
        record(sup, events)
        dsn = sup.ingest(make_dsn(soft(address), original_id=ORIGINAL), source="mailbox")
        shown = sup.show(address)
    assert dsn.outcome is Outcome.RECORDED  # a new notice: recorded...
    assert len(shown["events"]) == 2
    assert shown["address"]["returns"] == 1  # ...but the same message: one return


def test_another_message_is_another_return(database_url: str) -> None:
    address = "jane@example.com"
    with Suppressions.open(database_url) as sup:
        record(sup, ses_bounce(address, "MailboxFull", "smtp; 452 4.2.2 Mailbox full", "m-3"))
        sup.ingest(make_dsn(soft(address), original_id="<orig-2@sender.example.com>"))
        assert sup.show(address)["address"]["returns"] == 2


def test_a_hard_webhook_bounce_blocks_through_the_policy(database_url: str) -> None:
    events = ses_bounce("mary@example.com", "General", "smtp; 550 5.1.1 user unknown", "m-4")
    with Suppressions.open(database_url) as sup:
        (result,) = record(sup, events)
        check = sup.check("mary@example.com")
    assert result.new_blocks == ["mary@example.com"]
    assert (check.sendable, check.reason) == (False, "hard")
