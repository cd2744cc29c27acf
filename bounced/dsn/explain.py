"""Why a message parsed as it did (`bounced explain FILE`).

An administrator who is to trust a verdict, and a developer who wants to know
why a rule fired, need the same thing: the parts the reader found, the facts
each recipient's layer read, every candidate reason with its source and
priority and which one won, and every address the notice named with why it
was or was not taken as a recipient. `explain` runs the parser's own steps
(`gather`, `report`, `candidates`) rather than a copy of them, so what it shows
is what `parse` did. Pure: bytes in, an `Explanation` out; `render` makes text.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from bounced.dsn.classify import best_status, candidates
from bounced.dsn.evidence import Finding
from bounced.dsn.mime import Mail, read
from bounced.dsn.parse import Evidence, gather, report, senders
from bounced.dsn.report import Bounce, Kind, Reason, Report
from bounced.dsn.text import AddressVerdict, address_verdicts, without_footers
from bounced.rules import Rules, load

__all__ = ["Candidate", "Explanation", "RecipientExplanation", "explain", "render"]

#: The finding's facts shown per recipient, in this order (context is shown apart).
_FACTS = tuple(f.name for f in fields(Finding) if f.name not in ("recipient", "context"))
#: Layers whose rows name their recipients in fields, not in the notice's text.
_FIELD_LAYERS = ("arf", "amazonses", "rfc3834")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One reason the evidence supports, from one source ("phrase:...", "status:5.1.1")."""

    rule: str
    reason: Reason
    priority: int
    won: bool


@dataclass(frozen=True, slots=True)
class RecipientExplanation:
    """One row: what its layer read, and the contest that decided its reason."""

    bounce: Bounce
    facts: tuple[tuple[str, str], ...]  # the finding's non-empty fields
    status_read: str  # the code the decision used (the server's own, else Status)
    context: str  # the rest of the notice, read only when the diagnostic names no reason
    candidates: tuple[Candidate, ...]  # highest priority first


@dataclass(frozen=True, slots=True)
class Explanation:
    """The whole account of one message's parse."""

    report: Report
    parts: tuple[str, ...]  # content types of the parts read
    original: bool  # whether the returned original was found
    family: str  # the notice family recognised, "" when none
    recipients: tuple[RecipientExplanation, ...]
    addresses: tuple[AddressVerdict, ...]


def explain(raw: bytes | str) -> Explanation:
    """The explanation of `parse(raw)`."""
    rules = load()
    mail = read(raw)
    try:
        evidence = gather(mail, rules)
        parsed = report(evidence, rules)
    except Exception as exc:  # parse's own contract: say it, never raise
        failed = Report(kind=None, problems=(f"parser error: {exc.__class__.__name__}: {exc}",))
        return Explanation(failed, _parts(mail), bool(mail.original), "", (), ())
    rows = tuple(
        _recipient(finding, bounce, evidence, rules)
        for finding, bounce in zip(evidence.rows, parsed.bounces, strict=True)
    )
    return Explanation(
        report=parsed,
        parts=_parts(evidence.mail),
        original=bool(evidence.mail.original),
        family=evidence.notice.family if evidence.notice else "",
        recipients=rows,
        addresses=tuple(_addresses(evidence, rules)),
    )


def _parts(mail: Mail) -> tuple[str, ...]:
    return tuple(p.content_type for p in mail.parts)


def _recipient(
    finding: Finding, bounce: Bounce, evidence: Evidence, rules: Rules
) -> RecipientExplanation:
    facts = tuple((name, v) for name in _FACTS if (v := getattr(finding, name)))
    if bounce.kind not in (Kind.FAILED, Kind.DELAYED):
        return RecipientExplanation(bounce, facts, "", finding.context, ())
    status = best_status(finding, rules)
    found = candidates(finding, status, bounce.kind, evidence.family(rules), rules)
    winner = max(found, key=lambda c: c[0]) if found else None  # as classify() takes it
    ranked = sorted(found, key=lambda c: -c[0])
    return RecipientExplanation(
        bounce,
        facts,
        status,
        finding.context,
        tuple(
            Candidate(rule, reason, p, (p, reason, rule) == winner) for p, reason, rule in ranked
        ),
    )


def _addresses(evidence: Evidence, rules: Rules) -> list[AddressVerdict]:
    """The notice's addresses with their verdicts, and the rows named by fields."""
    verdicts: list[AddressVerdict] = []
    if evidence.notice and evidence.detector not in _FIELD_LAYERS:
        notice = without_footers(evidence.notice, rules)
        exclude = senders(evidence.mail, notice)
        verdicts = address_verdicts(evidence.mail, rules, notice, exclude)
    taken = {v.address for v in verdicts if v.kept}
    for row in evidence.rows:
        if row.recipient.lower() not in taken and row.final_recipient.lower() not in taken:
            why = f"named by the {row.source or evidence.detector} layer's fields"
            if row.final_recipient:
                why += f" as the address mailed; reached as {row.final_recipient}"
            verdicts.append(AddressVerdict(row.recipient, 0, True, why))
    return verdicts


def render(explanation: Explanation) -> str:
    """The explanation as text for a terminal."""
    parsed = explanation.report
    lines = [
        f"kind: {parsed.kind or '-'}  detector: {parsed.detector or '-'}"
        f"  family: {explanation.family or '-'}",
        f"parts: {', '.join(explanation.parts) or '-'}"
        f"  returned original: {'yes' if explanation.original else 'no'}",
    ]
    lines += [f"problem: {p}" for p in parsed.problems]
    for row in explanation.recipients:
        lines += ["", *_render_row(row)]
    if explanation.addresses:
        lines += ["", "addresses considered:"]
        for v in explanation.addresses:
            where = f"line {v.line}" if v.line else "fields"
            lines.append(f"  {'kept   ' if v.kept else 'dropped'} {v.address} ({where}): {v.why}")
    return "\n".join(lines)


def _render_row(row: RecipientExplanation) -> list[str]:
    b = row.bounce
    head = f"recipient {b.recipient}" + (
        f" (final {b.final_recipient})" if b.final_recipient else ""
    )
    verdict = f"{b.kind}" + (f", {b.bounce_class}, {b.reason}, {b.status}" if b.reason else "")
    lines = [f"{head}: {verdict}", *(f"  {name}: {value}" for name, value in row.facts)]
    if row.status_read:
        lines.append(f"  status read: {row.status_read}")
    if row.context:
        lines.append(f"  context: {' '.join(row.context.split())[:300]}")
    if row.candidates:
        lines.append("  candidates (priority, reason, source):")
        for c in row.candidates:
            mark = "=>" if c.won else "  "
            lines.append(f"   {mark} {c.priority:4} {c.reason:18} {c.rule}")
    if b.rule:
        lines.append(f"  rule: {b.rule}")
    return lines
