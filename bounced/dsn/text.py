"""Non-standard notices: the human-readable text that MTAs and providers write
instead of (or beside) a delivery-status part.

One generic reader serves every family: it cuts the notice at the returned
original, finds the recipients the text names, and gives each the block of
text that follows it. What differs between families (how to recognise them,
where their text ends) is data in `bounced/rules/families.toml`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from functools import cache

from bounced.dsn.address import addresses, find_addresses
from bounced.dsn.evidence import Finding
from bounced.dsn.fields import (
    failure_reply_code,
    failure_status,
    remote_host,
    smtp_command,
    unfold,
)
from bounced.dsn.mime import Headers, Mail
from bounced.rules import Family, Rules

__all__ = [
    "MAX_DIAGNOSTIC",
    "MAX_RECIPIENTS",
    "AddressVerdict",
    "Notice",
    "about",
    "address_verdicts",
    "findings",
    "notice",
    "original_message_id",
    "quoted_headers",
    "recognise",
    "without_footers",
]

#: The longest diagnostic kept per recipient; notices rarely say more that matters.
MAX_DIAGNOSTIC = 1200
#: Recipients read from one notice at the most (an MTA splits larger deliveries).
MAX_RECIPIENTS = 1000
_MAX_BLOCK_LINES = 40
_MARKER_SPAN = 4096

_TAG = re.compile(r"<[^<>]{0,2000}>")
_MESSAGE_ID = re.compile(r"^message-id:[ \t]*(<[^>\n]{1,500}>)", re.IGNORECASE | re.MULTILINE)
_STRONG_BEFORE = re.compile(r"(?:rcpt to:|to:|recipient:|address:)\s*<?$")
#: An address in angle brackets within a line is a recipient when the line goes on
#: about it ("said: 550 <a@b>: user unknown"), not when prose ends with it ("if this
#: does not help, write to <help@provider>", in whatever language).
_ANGLED_BEFORE = re.compile(r"(?<!contact )(?<!mail to )<$")
_SAID_AFTER = re.compile(r">\s*\S")
#: An address that the one before it was reached through: Postfix's and
#: sendmail's "(expanded from <alias>)", Exim's "(generated from alias)" and
#: "(ultimately generated from alias)". The alias is the address the sender mailed.
_ALIAS_BEFORE = re.compile(r"(?:expanded|generated) from:?\s*<?$")
_HEADER_START = re.compile(
    r"^(?:received|return-path|dkim-signature):[ \t]?(?:from |by |<|v=)", re.IGNORECASE
)
_NOISE_LINE = re.compile(
    r"^(?:from|to|cc|bcc|reply-to|return-path|sender|subject|date|message-id|in-reply-to"
    r"|references|delivered-to|x-original-to|envelope-to|errors-to|list-[a-z]+)\s*:",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Notice:
    """The notice text of a message, cut where the returned original begins
    (`without_footers` cuts what its mail system appended too)."""

    text: str
    rest: str
    family: str


def recognise(mail: Mail, rules: Rules, body: str) -> Family | None:
    """The family whose sender, subject, header or body marker matches first."""
    sender = mail.headers.get("from").lower()
    subject = mail.headers.get("subject").lower()
    # Markers stand in a notice's opening lines; past them is quoted mail.
    head = body[:_MARKER_SPAN].lower()
    marks = rules.family_marks
    hits = [i for s, i in marks.senders if s in sender]
    hits += [i for s, i in marks.subjects if subject.startswith(s)]
    hits += [i for h, i in marks.headers if h in mail.headers]
    found = [marks.marker_family[i] for i in marks.marker_scan.indexes(head)]
    best = min((*hits, *found), default=len(rules.families))
    return rules.families[best] if best < len(rules.families) else None


def notice(mail: Mail, rules: Rules) -> Notice:
    """The human-readable notice and what follows it (the quoted original)."""
    texts = [p.text for p in mail.parts_of("text/plain")]
    if not texts:
        texts = [_TAG.sub(" ", p.text) for p in mail.parts_of("text/html")]
    body = "\n".join(t for i, t in enumerate(texts) if i == 0 or not _looks_like_headers(t))
    second_line = body.find("\n") + 1
    start = _original_start(rules.boundaries).search(body, second_line) if second_line else None
    own, rest = (body, "") if start is None else (body[: start.start() - 1], body[start.start() :])
    family = recognise(mail, rules, body)
    return Notice(own, rest, family.name if family else "")


def without_footers(text: Notice, rules: Rules) -> Notice:
    """The notice without the footers its mail system appended (antivirus
    stamps, disclaimers), for the readers that take recipients and reasons
    from its text: each footer from the line that starts it to the end of its
    paragraph. Every footer holds one of the footer words (a rules test says
    so): a text with none of them has no footer, found with fewer searches."""
    kept = _without_footers(text.text, rules.footers, rules.footer_words)
    return text if kept is text.text else replace(text, text=kept)


def _without_footers(body: str, footers: tuple[str, ...], words: tuple[str, ...]) -> str:
    lowered = body.lower()
    if not any(w in lowered for w in words) or not any(f in lowered for f in footers):
        return body
    kept: list[str] = []
    in_footer = False
    for line in body.split("\n"):
        if not line.strip():
            in_footer = False
        elif not in_footer and any(f in line.lower() for f in footers):
            in_footer = True
        if not in_footer:
            kept.append(line)
    return "\n".join(kept)


@cache
def _original_start(boundaries: tuple[str, ...]) -> re.Pattern[str]:
    """A line that starts the returned original: a boundary line of the rules,
    or the first header of an original quoted without one."""
    marks = "|".join(re.escape(b) for b in boundaries)
    return re.compile(rf"^[ \t]*(?:{marks})|{_HEADER_START.pattern}", re.IGNORECASE | re.MULTILINE)


def _looks_like_headers(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(
        (
            "received:",
            "return-path:",
            "from:",
            "message-id:",
            "date:",
            "mime-version:",
            "x-",
            "dkim-signature:",
            "delivered-to:",
        )
    )


def findings(
    mail: Mail, rules: Rules, text: Notice, senders: Callable[[], frozenset[str]]
) -> list[Finding]:
    """One finding per recipient the notice names, with the block of text about
    it. `senders` gives the sender side's addresses; it is asked only when the
    choice depends on them (more than one address, one only mentioned, or an
    X-Failed-Recipients header to weigh against the notice)."""
    lines = text.text.split("\n")
    anchors, mailed, _ = _anchors(lines, rules)
    alone = (
        len({a for _, a, _ in anchors}) == 1
        and all(s for _, _, s in anchors)
        and "x-failed-recipients" not in mail.headers
    )
    exclude = frozenset() if alone else senders()
    order = _chosen(mail, text, anchors, exclude)
    if not order:
        return []
    wanted = set(order)
    named = [(i, a) for i, a, _ in anchors if a in wanted]  # in line order
    first_line: dict[str, int] = {}
    last_line: dict[str, int] = {}
    for position, (_, address) in enumerate(named):
        first_line.setdefault(address, position)
        last_line[address] = position
    delayed = _delayed(text, rules)
    family = rules.family(text.family)
    text_before = family is not None and family.text_before_address
    out = []
    for recipient in order:
        at = first_line.get(recipient)
        if at is None:
            block = text.text
        elif text_before:
            block = "\n".join(lines[_block_before(named, last_line[recipient])])
        else:
            block = "\n".join(lines[_block(named, at, len(lines))])
        # A notice about one recipient is evidence as a whole, including what
        # it says before naming the address.
        context = unfold(text.text)[:MAX_DIAGNOSTIC] if len(order) == 1 else ""
        finding = _finding(recipient, block, context, delayed, text.family)
        if recipient in mailed:
            finding = replace(finding, recipient=mailed[recipient], final_recipient=recipient)
        out.append(finding)
    return out


def _chosen(
    mail: Mail,
    text: Notice,
    anchors: list[tuple[int, str, bool]],
    exclude: frozenset[str] | set[str],
) -> list[str]:
    """The recipients among the addresses named: X-Failed-Recipients when it
    agrees with the notice, else those the notice sets apart (see _recipients)."""
    failed_header = addresses(mail.headers.get("x-failed-recipients"))
    strong = [a for _, a, s in anchors if s and a not in exclude]
    if failed_header and strong and not any(a in text.text.lower() for a in failed_header):
        # The header names an address the notice never mentions (one rewritten
        # before delivery): the notice's own list is the better evidence.
        failed_header = []
    return (failed_header or _recipients(anchors, exclude))[:MAX_RECIPIENTS]


@dataclass(frozen=True, slots=True)
class AddressVerdict:
    """One address a notice names, and whether it was taken as a recipient."""

    address: str
    line: int  # in the notice, from 1
    kept: bool
    why: str


def address_verdicts(
    mail: Mail, rules: Rules, text: Notice, exclude: frozenset[str] | set[str]
) -> list[AddressVerdict]:
    """Every address of the notice with the reason it was kept or dropped, by
    the same selection that `findings` makes."""
    anchors, mailed, dropped = _anchors(text.text.split("\n"), rules)
    chosen = set(_chosen(mail, text, anchors, exclude))
    stands_apart = any(s and a not in exclude for _, a, s in anchors)
    verdicts = [AddressVerdict(a, i + 1, False, why) for i, a, why in dropped]
    seen: set[str] = set()
    for index, address, strong in anchors:
        if address in seen:
            continue
        seen.add(address)
        if address in chosen:
            why = "set apart as a recipient" if strong else "mentioned, and no address stands apart"
            if address in mailed:
                why += f"; reached as {address}, mailed as {mailed[address]}"
        elif address in exclude:
            why = "the sender side's own address (From, To, the original's From or Return-Path)"
        elif _list_address(address, rules):
            why = "a mailing list's own address, set apart yet only mentioned"
        elif stands_apart and not strong:
            why = "only mentioned, while other addresses stand apart"
        else:
            why = "not in X-Failed-Recipients, which names the recipients"
        verdicts.append(AddressVerdict(address, index + 1, address in chosen, why))
    return sorted(verdicts, key=lambda v: v.line)


def _block(named: list[tuple[int, str]], position: int, total: int) -> slice:
    """The lines about the recipient named at `named[position]`: from its line to
    the next line that names another recipient, at most _MAX_BLOCK_LINES."""
    start, recipient = named[position]
    end = min(total, start + _MAX_BLOCK_LINES)
    for line, address in named[position + 1 :]:
        if line >= end:
            break
        if address != recipient and line > start:
            end = line
            break
    return slice(start, end)


def _block_before(named: list[tuple[int, str]], last: int) -> slice:
    """The lines about the recipient last named at `named[last]`, where the text
    precedes the address: from just past the line naming another recipient up
    to that last line. Its last run of lines counts, so a list of recipients
    above a transcript does not cut the transcript's text off."""
    recipient = named[last][1]
    first = last
    while first > 0 and named[first - 1][1] == recipient:
        first -= 1
    start = named[first - 1][0] + 1 if first > 0 else 0
    return slice(start, named[last][0] + 1)


def about(recipients: list[str], text: Notice, rules: Rules) -> list[Finding]:
    """The whole notice as the evidence for recipients it does not name."""
    delayed = _delayed(text, rules)
    return [_finding(r, text.text, "", delayed, text.family) for r in recipients]


def _delayed(text: Notice, rules: Rules) -> bool:
    lowered = text.text.lower()
    return any(m in lowered for m in rules.delay_markers)


def _finding(recipient: str, block: str, context: str, delayed: bool, family: str) -> Finding:
    """The facts of one recipient's block; a notice about this recipient alone
    also lends the codes it gives before naming it ("Could not be delivered
    because of 550 5.1.1 User unknown. The following recipients were affected: ...")."""
    diagnostic = unfold(block)[:MAX_DIAGNOSTIC]
    lowered = diagnostic.lower()
    return Finding(
        recipient=recipient,
        action="delayed" if delayed else "failed",
        status=failure_status(diagnostic) or failure_status(context),
        reply_code=failure_reply_code(block) or failure_reply_code(context),
        diagnostic=diagnostic,
        context=context,
        remote_mta=remote_host(lowered),
        smtp_command=smtp_command(lowered),
        source=family or "text",
    )


def _anchors(
    lines: list[str], rules: Rules
) -> tuple[list[tuple[int, str, bool]], dict[str, str], list[tuple[int, str, str]]]:
    """(line index, address, strong) for every address the notice names; the
    address each final one was reached through (final → mailed), for the
    aliases the notice names (which are no recipients of their own); and the
    addresses dropped here, (line index, address, why)."""
    found: list[tuple[int, str, bool]] = []
    mailed: dict[str, str] = {}
    dropped: list[tuple[int, str, str]] = []
    for index, line in enumerate(lines):
        if "@" not in line or _NOISE_LINE.match(line.strip()):
            continue
        for start, end, address in find_addresses(line):
            address = address.lower()
            before = line[:start].lower()
            if found and _ALIAS_BEFORE.search(before):
                mailed.setdefault(found[-1][1], address)
                dropped.append((index, address, f"the address mailed, reached as {found[-1][1]}"))
                continue
            strong = (
                not before.strip(" \t<\"'*-")
                or bool(_STRONG_BEFORE.search(before))
                or bool(_ANGLED_BEFORE.search(before) and _SAID_AFTER.match(line, end))
            )
            if _never_recipient(address, strong, rules):
                dropped.append((index, address, "a mail system's role address, only mentioned"))
                continue
            if ("-" in address or address.startswith("owner")) and _list_address(address, rules):
                if not strong:
                    dropped.append((index, address, "a mailing list's own address, mentioned"))
                    continue
                strong = False  # set apart, it is still only the list's address
            found.append((index, address, strong))
    return found, mailed, dropped


def _list_address(address: str, rules: Rules) -> bool:
    """A mailing list's own address (members-request@, owner-members@)."""
    suffixes, prefixes = _affixes(rules.list_affixes)
    local = address.partition("@")[0]
    return local.endswith(suffixes) or local.startswith(prefixes)


@cache
def _affixes(affixes: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The list affixes as (suffixes "-request", prefixes "owner-")."""
    return tuple(a for a in affixes if a[0] == "-"), tuple(a for a in affixes if a[0] != "-")


def _never_recipient(address: str, strong: bool, rules: Rules) -> bool:
    """Role addresses that notices mention (write to postmaster@...) are no
    recipients, unless the notice lists one on a line of its own."""
    local = address.partition("@")[0]
    return local.startswith("mailer-daemon") or (not strong and local in rules.not_recipients)


def _recipients(anchors: list[tuple[int, str, bool]], exclude: AbstractSet[str]) -> list[str]:
    """Addresses the notice sets apart (own line, RCPT TO) before those it only
    mentions; the sender side's own addresses only when the text names no other
    (anonymised or forwarded mail can return to the address it was sent to)."""
    strong = [a for _, a, s in anchors if s and a not in exclude]
    mentioned = [a for _, a, _ in anchors if a not in exclude]
    chosen = strong or mentioned or [a for _, a, s in anchors if s]
    return list(dict.fromkeys(chosen))


def quoted_headers(text: Notice) -> str:
    """The header block of an original quoted after the notice (past a marker line)."""
    lines = text.rest.split("\n", 1)
    rest = lines[1] if len(lines) > 1 and not _HEADER_START.match(lines[0]) else text.rest
    return rest.lstrip("\n")[:20_000]


def original_message_id(text: Notice, original: Headers) -> str:
    """The returned original's Message-ID: attached part first, else quoted text."""
    value = original.get("message-id")
    if value:
        return value
    match = _MESSAGE_ID.search(text.rest[:200_000])
    return match.group(1) if match else ""
