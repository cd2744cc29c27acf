"""The parser's output: one frozen `Bounce` row per recipient, gathered in a `Report`.

These are plain, typed values so that everything downstream (store, policy, CLI,
HTTP) can rely on a fixed set of fields instead of dict keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_HARD_REASONS",
    "TEXT_FACTS",
    "Bounce",
    "BounceClass",
    "Kind",
    "Reason",
    "Report",
]


class Kind(StrEnum):
    """What happened to the message for one recipient (RFC 3464 actions plus the
    two non-DSN kinds a return path receives)."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"
    COMPLAINT = "complaint"
    AUTOREPLY = "autoreply"


class BounceClass(StrEnum):
    """Hard: the address itself is bad and will stay bad. Soft: anything else that
    failed, delays included (a transient failure). Rows of the other kinds have none."""

    HARD = "hard"
    SOFT = "soft"


class Reason(StrEnum):
    """The one reason taxonomy used everywhere (rules, store, CLI)."""

    USER_UNKNOWN = "user_unknown"
    HOST_UNKNOWN = "host_unknown"
    MAILBOX_FULL = "mailbox_full"
    HAS_MOVED = "has_moved"
    NOT_ACCEPT = "not_accept"
    BLOCKED = "blocked"
    SPAM_DETECTED = "spam_detected"
    POLICY_VIOLATION = "policy_violation"
    REJECTED = "rejected"
    FILTERED = "filtered"
    EXPIRED = "expired"
    SUSPEND = "suspend"
    EXCEED_LIMIT = "exceed_limit"
    MESG_TOO_BIG = "mesg_too_big"
    NETWORK_ERROR = "network_error"
    TOO_MANY_CONN = "too_many_conn"
    SPEEDING = "speeding"
    SYSTEM_ERROR = "system_error"
    SYSTEM_FULL = "system_full"
    MAILER_ERROR = "mailer_error"
    SECURITY_ERROR = "security_error"
    AUTH_FAILURE = "auth_failure"
    BAD_REPUTATION = "bad_reputation"
    REQUIRE_PTR = "require_ptr"
    NOT_COMPLIANT_RFC = "not_compliant_rfc"
    CONTENT_ERROR = "content_error"
    VIRUS_DETECTED = "virus_detected"
    NO_RELAYING = "no_relaying"
    SYNTAX_ERROR = "syntax_error"
    ON_HOLD = "on_hold"
    UNDEFINED = "undefined"


#: Reasons that make a permanent failure hard by default (the address is bad).
DEFAULT_HARD_REASONS = frozenset(
    {Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN, Reason.HAS_MOVED, Reason.NOT_ACCEPT}
)


@dataclass(frozen=True, slots=True)
class Bounce:
    """Everything known about what happened to one recipient of one original message."""

    #: The address the sender mailed (the DSN's Original-Recipient when it differs
    #: from the Final-Recipient): the one in the sending log and the suppression list.
    recipient: str
    kind: Kind
    bounce_class: BounceClass | None = None
    reason: Reason | None = None
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    reporting_mta: str = ""
    original_message_id: str = ""
    original_sender: str = ""
    feedback_type: str = ""
    arrival_date: str = ""
    action: str = ""
    smtp_command: str = ""
    detector: str = ""
    rule: str = ""
    #: The address the message was last handed to, when aliasing or forwarding
    #: made it another than `recipient`; empty otherwise.
    final_recipient: str = ""

    def to_dict(self) -> dict[str, str]:
        """Flat, JSON-ready mapping (enums as their values, missing as empty strings)."""
        return {k: ("" if (v := getattr(self, k)) is None else str(v)) for k in _BOUNCE_FIELDS}

    def __reduce__(self) -> tuple[type[Bounce], tuple[Any, ...]]:
        """Pickled as its field values: parse workers send thousands of rows, and the
        state pickle of a slotted dataclass is set again slot by slot in Python."""
        return (Bounce, tuple(getattr(self, k) for k in _BOUNCE_FIELDS))


_BOUNCE_FIELDS = tuple(f.name for f in fields(Bounce))

#: The plain-text facts of a row that parse output and the store's events both carry,
#: in the order they are shown.
TEXT_FACTS = (
    "final_recipient",
    "status",
    "reply_code",
    "diagnostic",
    "remote_mta",
    "reporting_mta",
    "original_message_id",
    "feedback_type",
    "detector",
)


@dataclass(frozen=True, slots=True)
class Report:
    """The parse of one message.

    `kind` is None when the message is none of the things a return path expects
    (a person writing back, a newsletter); `bounces` is then empty and
    `problems` says why, so the caller can keep the message aside.
    """

    kind: Kind | None
    bounces: tuple[Bounce, ...] = ()
    detector: str = ""
    message_id: str = ""
    subject: str = ""
    problems: tuple[str, ...] = field(default=())

    def __reduce__(self) -> tuple[type[Report], tuple[Any, ...]]:
        """Pickled as its field values (see `Bounce.__reduce__`)."""
        fields = (self.kind, self.bounces, self.detector, self.message_id, self.subject)
        return (Report, (*fields, self.problems))

    @property
    def is_bounce(self) -> bool:
        """True for anything a return path expects: DSNs, complaints and auto-replies."""
        return self.kind is not None
