"""A provider's words about one recipient (`Said`) turned into a bounce row.

Every provider module reads its payload into `Said` values: the recipient, the
provider's type keys (most specific first, looked up in rules/esp.toml), and
whatever text and codes the provider passed on from the receiving server. The
decision is made here, once for all providers, by the same rules as a parsed
DSN: the server's text goes through `bounced.dsn.reply.bounce_of_reply`, and the
provider's type is one more candidate with its own priority. A specific text
("550 5.1.1 user unknown") outranks a coarse type ("Transient/General"); a type
that knows more than any text ("Permanent/Suppressed") outranks the text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from bounced.dsn import DEFAULT_HARD_REASONS, Bounce, BounceClass, Kind
from bounced.dsn.fields import failure_status, typed_value
from bounced.dsn.reply import bounce_of_reply
from bounced.providers.esp import EspType, load_esp
from bounced.rules import Rules, load

__all__ = [
    "Events",
    "NotUnderstood",
    "Notice",
    "Said",
    "Unreadable",
    "bounce_of",
    "digest",
    "from_body",
    "gather",
    "obj",
    "objects",
    "rule_priority",
    "texts",
]


class NotUnderstood(ValueError):
    """A verified event bounced cannot read (an unknown type, no recipient): kept aside."""


@dataclass(frozen=True, slots=True)
class Said:
    """What a provider said about one recipient, before the rules decide."""

    recipient: str
    keys: tuple[str, ...]
    diagnostic: str = ""
    status: str = ""
    remote_mta: str = ""
    reporting_mta: str = ""
    original_message_id: str = ""
    feedback_type: str = ""
    arrival_date: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One provider event: `notice` (provider and its event id) is its identity in the
    store, so a retried delivery of the event is recorded once."""

    notice: str
    bounces: tuple[Bounce, ...]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A verified event that could not be read, with its own JSON (for the inbox)."""

    notice: str
    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Events:
    """Everything one verified payload said."""

    notices: tuple[Notice, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()
    ignored: int = 0
    #: An SNS subscription (or unsubscription) confirmation's URL, to visit or to log.
    subscribe_url: str = ""


def obj(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (a payload's parts are read
    with .get throughout, and a part of the wrong shape simply says nothing)."""
    return value if isinstance(value, dict) else {}


def objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else in it is no recipient)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def texts(value: Any) -> list[str]:
    """The strings of a JSON list (a list of addresses)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def digest(event: Any) -> str:
    """An identity for an event that has no id of its own: its content (a provider's
    retry sends the same JSON)."""
    text = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:40]


def rule_priority(rule: str, rules: Rules) -> int:
    """The priority of the candidate a decision names in its `rule` ("phrase:user unknown",
    "status:5.1.1"); -1 for "none" (nothing in the text spoke)."""
    source, _, value = rule.partition("+")[0].partition(":")
    found: tuple[Any, int] | None = None
    if source == "phrase" and value in rules.phrase_index:
        return rules.phrase_index[value][0]
    if source == "provider":
        return next((p.priority for p in rules.providers if p.name == value), -1)
    if source == "status" and value:
        found = rules.statuses.get("x" + value[1:])
    elif source == "reply":
        found = rules.replies.get(value)
    elif source == "command":
        found = rules.commands.get(value)
    elif source == "diagnostic-type":
        found = rules.diagnostic_types.get(value)
    elif source == "kind":
        found = rules.kinds.get(value)
    return found[1] if found else -1


def _failure(esp: EspType, said: Said, detector: str) -> Bounce:
    """A failed or delayed row: the provider's type and the server's text in one contest."""
    text = " ".join(typed_value(said.diagnostic).split())
    given = failure_status(text) or said.status
    rules = load()
    read = None
    if text:
        # The provider's own status field stands in for a code the text lacks, as a
        # DSN's Status field does for its Diagnostic-Code.
        words = text if failure_status(text) or not said.status else f"{said.status} {text}"
        read = bounce_of_reply(
            said.recipient, words, message_id=said.original_message_id, command=""
        )
    assert esp.kind is not None and esp.reason is not None
    if read is not None and read.reason and rule_priority(read.rule, rules) >= esp.priority:
        reason, rule = read.reason, read.rule
    else:
        reason, rule = esp.reason, esp.rule
    if given:
        permanent = given[0] == "5"
    elif read is not None and read.reply_code:
        permanent = read.reply_code[0] == "5"
    else:
        permanent = esp.permanent
    status = given or f"{'5' if permanent else '4'}.0.{rules.derived.get(reason, 900)}"
    hard = esp.kind is Kind.FAILED and permanent and reason in DEFAULT_HARD_REASONS
    return Bounce(
        said.recipient,
        esp.kind,
        BounceClass.HARD if hard else BounceClass.SOFT,
        reason,
        status,
        read.reply_code if read is not None else "",
        text,
        said.remote_mta,
        said.reporting_mta,
        original_message_id=said.original_message_id,
        arrival_date=said.arrival_date,
        action=esp.kind.value,
        detector=detector,
        rule=rule,
    )


def bounce_of(
    provider: str, said: Said, detector: str, *, esp: EspType | None = None
) -> Bounce | None:
    """The row `said` amounts to; None for an event to ignore (opens, clicks).
    NotUnderstood for a type esp.toml does not know, or a row without a recipient.
    `esp` is the type when the caller knows it already (a taxonomy reason in a file)."""
    esp = esp or load_esp().find(provider, said.keys)
    if esp is None:
        raise NotUnderstood(f"unknown {provider} event type {said.keys[0]!r}")
    if esp.kind is None:
        return None
    said = replace(said, recipient=said.recipient.strip())
    if not said.recipient:
        raise NotUnderstood(f"{provider} {esp.name} event names no recipient")
    if esp.kind in (Kind.FAILED, Kind.DELAYED):
        return _failure(esp, said, detector)
    return Bounce(
        said.recipient,
        esp.kind,
        status=said.status,
        diagnostic=" ".join(said.diagnostic.split()),
        remote_mta=said.remote_mta,
        reporting_mta=said.reporting_mta,
        original_message_id=said.original_message_id,
        feedback_type=(esp.feedback_type or said.feedback_type or "abuse")
        if esp.kind is Kind.COMPLAINT
        else "",
        arrival_date=said.arrival_date,
        action=esp.kind.value,
        detector=detector,
        rule=esp.rule,
    )


def from_body(provider: str, body: bytes, read: Callable[[Any], Events]) -> Events:
    """The facts of a verified body that should be JSON: `read` of its document, or the
    body kept aside whole when it is none (verified, so it is kept, never refused)."""
    try:
        document = json.loads(body)
    except ValueError:
        notice = f"{provider}:sha256:{hashlib.sha256(body).hexdigest()[:40]}"
        return Events(unreadable=(Unreadable(notice, "the verified body is not JSON", body),))
    return read(document)


def gather(
    provider: str, events: Iterable[Any], read: Callable[[Any], tuple[str, list[Said]]]
) -> Events:
    """Read each event of a payload with `read` (its id and rows, or NotUnderstood):
    notices for what is understood, the rest kept aside whole, ignored ones counted.
    An event without an id of its own is known by its content (`digest`)."""
    detector = f"webhook:{provider}"
    notices, unreadable, ignored = [], [], 0
    for event in events:
        try:
            event_id, said = read(event)
            rows = [bounce_of(provider, s, detector) for s in said]
        except NotUnderstood as exc:
            raw = json.dumps(event, ensure_ascii=False).encode()
            unreadable.append(Unreadable(f"{provider}:{digest(event)}", str(exc), raw))
            continue
        kept = tuple(r for r in rows if r is not None)
        if kept:
            notices.append(Notice(f"{provider}:{event_id or digest(event)}", kept))
        else:
            ignored += 1
    return Events(tuple(notices), tuple(unreadable), ignored)
