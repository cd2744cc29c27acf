"""The words of a cleaning verdict (status, reason, what an optional check does, the
output formats): plain enums, importable without the checks' libraries, so the
command line can name them in its options and start fast."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CleanReason", "Mode", "OutputFormat", "Status"]


class Status(StrEnum):
    """What to do with the address: mail it (ok), think first (risky), try later
    (unknown: DNS did not answer), or drop it (reject)."""

    OK = "ok"
    RISKY = "risky"
    UNKNOWN = "unknown"
    REJECT = "reject"


class CleanReason(StrEnum):
    """Why a row is not ok (the `reason` column)."""

    UNREADABLE_ROW = "unreadable_row"  # the row itself could not be read
    INVALID_ADDRESS = "invalid_address"  # not an address (email-validator says why)
    LIKELY_TYPO = "likely_typo"  # one edit away from a common domain; the fix in detail
    DUPLICATE = "duplicate"  # the same address (normalised) on an earlier line
    BLOCKED = "blocked"  # blocked in the suppression store (hard, returns, manual, ...)
    COMPLAINT = "complaint"  # the recipient reported mail as spam
    FORMER_EMPLOYEE = "former_employee"  # marked as gone from the organisation
    SOFT_RETURNS = "soft_returns"  # not blocked, but mail to it came back recently
    ROLE_ACCOUNT = "role_account"  # info@, admin@, noreply@...
    DISPOSABLE_DOMAIN = "disposable_domain"  # a throw-away mailbox provider
    NO_SUCH_DOMAIN = "no_such_domain"  # NXDOMAIN
    NULL_MX = "null_mx"  # the domain says it accepts no mail (RFC 7505)
    NO_MAIL_SERVER = "no_mail_server"  # the domain exists, with no MX, A or AAAA
    DNS_TIMEOUT = "dns_timeout"  # no answer in time, or SERVFAIL: unknown, not a reject


class Mode(StrEnum):
    """What an optional check does with a match: nothing, risky, or reject."""

    OFF = "off"
    RISKY = "risky"
    REJECT = "reject"


class OutputFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"
    XLSX = "xlsx"
