"""Classification rules as data: the TOML files beside this module, validated
and compiled once.

Adding an MTA's phrase, a provider's quirk or a family's markers is an edit to
a TOML file here, not new code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from bounced.dsn.report import Reason
from bounced.errors import RulesError

__all__ = [
    "SCHEMA",
    "START",
    "Family",
    "FamilyMarks",
    "HardWhen",
    "Pattern",
    "PhraseRule",
    "PhraseScan",
    "ProviderRule",
    "Recast",
    "Rules",
    "RulesError",
    "check_keys",
    "load",
    "phrase_rules",
]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regular expression tried only on texts that contain `needs` (its literal
    part), so the expression itself runs rarely."""

    needs: str
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class PhraseRule:
    reason: Reason
    priority: int
    phrases: tuple[str, ...]
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """A provider's own usage, matched by suffix on the remote or reporting host,
    or on the recipient's domain."""

    name: str
    hosts: tuple[str, ...]
    domains: tuple[str, ...]
    reason: Reason
    priority: int
    reply_codes: tuple[str, ...]
    statuses: tuple[str, ...]
    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Family:
    """How to recognise one kind of non-standard notice and where its text ends."""

    name: str
    senders: tuple[str, ...]
    subjects: tuple[str, ...]
    markers: tuple[str, ...]
    headers: tuple[str, ...]
    reason: Reason | None
    priority: int
    reads: dict[Reason, Reason]
    #: The text about a recipient stands before the line naming it (a sendmail
    #: transcript: the dialogue first, then "554 <addr>... verdict").
    text_before_address: bool = False
    derived_after_command: dict[str, Reason] = field(default_factory=dict)
    temporary: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PhraseScan:
    """The phrases arranged for a fast scan of a single-spaced text.

    A phrase of three or more words occurs only where its inner words stand
    as whole words of the text, so it is tried only when its longest inner
    word does (`keyed`). A phrase of two words occurs only where a word of the
    text starts like its second word (`by_start`, on the first three letters).
    The rest are tried always (`unkeyed`), but those with letters outside
    ASCII (Japanese, most often) only in texts that have such letters
    (`unkeyed_wide`). `order` is each phrase's place in the rules files, to
    report hits in a fixed order.
    """

    unkeyed: tuple[str, ...]
    unkeyed_wide: tuple[str, ...]
    keyed: dict[str, tuple[str, ...]]
    by_start: dict[str, tuple[str, ...]]
    order: dict[str, int]

    @classmethod
    def of(cls, phrases: tuple[str, ...]) -> PhraseScan:
        unkeyed: list[str] = []
        keyed: dict[str, list[str]] = {}
        by_start: dict[str, list[str]] = {}
        for phrase in phrases:
            words = phrase.split(" ")
            if len(words) > 2:
                keyed.setdefault(max(words[1:-1], key=len), []).append(phrase)
            elif len(words) == 2 and len(words[1]) >= START:
                by_start.setdefault(words[1][:START], []).append(phrase)
            else:
                unkeyed.append(phrase)
        return cls(
            tuple(p for p in unkeyed if p.isascii()),
            tuple(p for p in unkeyed if not p.isascii()),
            {k: tuple(v) for k, v in keyed.items()},
            {k: tuple(v) for k, v in by_start.items()},
            {p: i for i, p in enumerate(phrases)},
        )


#: How many leading letters of a text's words `PhraseScan.by_start` keys on.
START = 3


@dataclass(frozen=True, slots=True)
class FamilyMarks:
    """Every family's sniffing data flat, as (mark, family index) pairs in family
    order, so one pass over each list recognises a notice; the lowest index
    wins (and a pass may stop at the first mark of a family no better than one
    already found)."""

    senders: tuple[tuple[str, int], ...]
    subjects: tuple[tuple[str, int], ...]
    headers: tuple[tuple[str, int], ...]
    markers: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, families: tuple[Family, ...]) -> FamilyMarks:
        def flat(attr: str) -> tuple[tuple[str, int], ...]:
            return tuple((m, i) for i, f in enumerate(families) for m in getattr(f, attr))

        return cls(flat("senders"), flat("subjects"), flat("headers"), flat("markers"))


@dataclass(frozen=True, slots=True)
class Recast:
    """Phrases read as another reason after a given SMTP command."""

    phrases: tuple[str, ...]
    commands: tuple[str, ...]
    becomes: Reason


@dataclass(frozen=True, slots=True)
class HardWhen:
    """A reason that is hard when the text says the state is for good (`phrases`)
    and nothing says it is passing (`unless`), with a permanent code."""

    reason: Reason
    phrases: tuple[str, ...]
    unless: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything the parser decides with, compiled. `phrase_scan` and
    `pattern_list` hold every phrase and pattern arranged for the hot loop of a
    parse, and `phrase_index` gives each its (priority, reason)."""

    phrases: tuple[PhraseRule, ...]
    statuses: dict[str, tuple[Reason, int]]
    replies: dict[str, tuple[Reason, int]]
    commands: dict[str, tuple[Reason, int]]
    kinds: dict[str, tuple[Reason, int]]
    diagnostic_types: dict[str, tuple[Reason, int]]
    diagnostic_details: dict[str, str]
    recasts: tuple[Recast, ...]
    derived: dict[Reason, int]
    providers: tuple[ProviderRule, ...]
    provider_suffixes: tuple[str, ...]
    families: tuple[Family, ...]
    family_marks: FamilyMarks
    boundaries: tuple[str, ...]
    delay_markers: tuple[str, ...]
    autoreply: dict[str, tuple[str, ...]]
    complaint: dict[str, tuple[str, ...]]
    returned: dict[str, tuple[str, ...]]
    not_recipients: tuple[str, ...]
    list_affixes: tuple[str, ...]
    footers: tuple[str, ...]
    footer_words: tuple[str, ...]
    challenge: dict[str, tuple[str, ...]]
    hard_when: tuple[HardWhen, ...]
    phrase_scan: PhraseScan
    pattern_list: tuple[Pattern, ...]
    phrase_index: dict[str, tuple[int, Reason]]

    def family(self, name: str) -> Family | None:
        return next((f for f in self.families if f.name == name), None)


def _load_toml(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files(__package__).joinpath(name).read_text("utf-8"))


#: Every table of every rules file and the keys it may hold: a misspelled key
#: (`phrase =` for `phrases =`) is refused, never silently ignored. Keys are
#: paths of table names; "[]" stands for each entry of an array of tables.
SCHEMA: dict[str, dict[str, frozenset[str]]] = {
    "reasons.toml": {
        "": frozenset({"reason", "hard_when"}),
        "reason[]": frozenset({"name", "priority", "phrases", "patterns"}),
        "reason[].patterns[]": frozenset({"needs", "regex"}),
        "hard_when[]": frozenset({"reason", "phrases", "unless"}),
    },
    "status.toml": {
        "": frozenset(
            {"status", "reply", "command", "kind", "diagnostic_type", "recast", "derived"}
        ),
        "status[]": frozenset({"priority", "codes"}),
        "reply[]": frozenset({"priority", "codes"}),
        "command[]": frozenset({"priority", "commands"}),
        "kind[]": frozenset({"priority", "kinds"}),
        "diagnostic_type[]": frozenset({"priority", "types", "details"}),
        "recast[]": frozenset({"phrases", "commands", "becomes"}),
    },
    "providers.toml": {
        "": frozenset({"rule"}),
        "rule[]": frozenset(
            {"name", "hosts", "domains", "reason", "priority", "reply_codes", "statuses", "phrases"}
        ),
    },
    "families.toml": {
        "": frozenset({"text", "returned", "autoreply", "complaint", "challenge", "family"}),
        "text": frozenset(
            {
                "boundaries",
                "delay_markers",
                "not_recipients",
                "list_affixes",
                "footers",
                "footer_words",
            }
        ),
        "returned": frozenset({"senders", "subjects", "reply_prefixes", "evidence"}),
        "autoreply": frozenset({"headers", "precedence", "subjects"}),
        "complaint": frozenset(
            {"senders", "subjects", "recipient_headers", "unsubscribe_headers", "report_fields"}
        ),
        "challenge": frozenset({"senders", "subjects", "markers"}),
        "family[]": frozenset(
            {
                "name",
                "senders",
                "subjects",
                "markers",
                "headers",
                "reason",
                "priority",
                "reads",
                "text_before_address",
                "derived_after_command",
                "temporary",
            }
        ),
    },
}


def check_keys(name: str, data: dict[str, Any]) -> None:
    """Refuse a key that the file's schema (SCHEMA) does not name, wherever it is."""
    schema = SCHEMA[name]

    def walk(path: str, table: dict[str, Any]) -> None:
        allowed = schema.get(path)
        if allowed is None:  # a table of free keys (codes, reads, ...)
            return
        unknown = sorted(set(table) - allowed)
        if unknown:
            where = path or "top level"
            raise RulesError(f"{name}: unknown key {unknown[0]!r} in {where}")
        for key, value in table.items():
            child = f"{path}.{key}" if path else key
            if isinstance(value, dict):
                walk(child, value)
            elif isinstance(value, list):
                for entry in value:
                    if isinstance(entry, dict):
                        walk(f"{child}[]", entry)

    walk("", data)


def _rules_file(name: str) -> dict[str, Any]:
    """A rules file, read and checked against its schema."""
    data = _load_toml(name)
    check_keys(name, data)
    return data


def _reason(value: str, where: str) -> Reason:
    try:
        return Reason(value)
    except ValueError:
        raise RulesError(f"{where}: unknown reason {value!r}") from None


def _lower(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.lower() for v in values or ())


def phrase_rules(data: dict[str, Any]) -> tuple[PhraseRule, ...]:
    seen: dict[str, str] = {}
    rules = []
    for entry in data["reason"]:
        reason = _reason(entry["name"], "reasons.toml")
        for phrase in entry.get("phrases", ()):
            if phrase != phrase.lower() or phrase != " ".join(phrase.split()):
                raise RulesError(f"reasons.toml: {phrase!r} must be lower-case, single-spaced")
            if phrase in seen:
                raise RulesError(f"reasons.toml: {phrase!r} under {seen[phrase]} and {reason}")
            seen[phrase] = reason
        try:
            patterns = tuple(
                Pattern(p["needs"], re.compile(p["regex"])) for p in entry.get("patterns", ())
            )
        except re.error as exc:
            raise RulesError(f"reasons.toml: {reason}: {exc}") from None
        rules.append(
            PhraseRule(reason, int(entry["priority"]), tuple(entry.get("phrases", ())), patterns)
        )
    return tuple(rules)


def _code_table(
    groups: list[dict[str, Any]], key: str, where: str
) -> dict[str, tuple[Reason, int]]:
    table: dict[str, tuple[Reason, int]] = {}
    for group in groups:
        for code, reason in group[key].items():
            if code in table:
                raise RulesError(f"{where}: {code} listed twice")
            table[code] = (_reason(reason, where), int(group["priority"]))
    return table


def _providers(data: dict[str, Any]) -> tuple[ProviderRule, ...]:
    return tuple(
        ProviderRule(
            name=row["name"],
            hosts=_lower(row.get("hosts")),
            domains=_lower(row.get("domains")),
            reason=_reason(row["reason"], "providers.toml"),
            priority=int(row.get("priority", 100)),
            reply_codes=tuple(row.get("reply_codes", ())),
            statuses=tuple(row.get("statuses", ())),
            phrases=_lower(row.get("phrases")),
        )
        for row in data.get("rule", ())
    )


def _families(data: dict[str, Any]) -> tuple[Family, ...]:
    return tuple(
        Family(
            name=row["name"],
            senders=_lower(row.get("senders")),
            subjects=_lower(row.get("subjects")),
            markers=_lower(row.get("markers")),
            headers=_lower(row.get("headers")),
            reason=_reason(row["reason"], "families.toml") if "reason" in row else None,
            priority=int(row.get("priority", 45)),
            reads={
                _reason(k, "families.toml"): _reason(v, "families.toml")
                for k, v in row.get("reads", {}).items()
            },
            text_before_address=bool(row.get("text_before_address", False)),
            derived_after_command={
                k: _reason(v, "families.toml")
                for k, v in row.get("derived_after_command", {}).items()
            },
            temporary=_lower(row.get("temporary")),
        )
        for row in data.get("family", ())
    )


@cache
def load() -> Rules:
    """The compiled rules; read from the package once per process."""
    reasons = _rules_file("reasons.toml")
    status = _rules_file("status.toml")
    providers = _rules_file("providers.toml")
    families = _rules_file("families.toml")
    phrases = phrase_rules(reasons)
    known = _families(families)
    known_providers = _providers(providers)
    index = {p: (r.priority, r.reason) for r in phrases for p in r.phrases}
    index.update((p.regex.pattern, (r.priority, r.reason)) for r in phrases for p in r.patterns)
    return Rules(
        phrases=phrases,
        phrase_scan=PhraseScan.of(tuple(p for r in phrases for p in r.phrases)),
        pattern_list=tuple(p for r in phrases for p in r.patterns),
        phrase_index=index,
        statuses=_code_table(status["status"], "codes", "status.toml"),
        replies=_code_table(status["reply"], "codes", "status.toml"),
        commands=_code_table(status["command"], "commands", "status.toml"),
        kinds=_code_table(status["kind"], "kinds", "status.toml"),
        diagnostic_types=_code_table(status["diagnostic_type"], "types", "status.toml"),
        diagnostic_details={
            k: v for group in status["diagnostic_type"] for k, v in group.get("details", {}).items()
        },
        recasts=tuple(
            Recast(
                _lower(row["phrases"]),
                tuple(row["commands"]),
                _reason(row["becomes"], "status.toml"),
            )
            for row in status.get("recast", ())
        ),
        derived={_reason(k, "status.toml"): int(v) for k, v in status["derived"].items()},
        providers=known_providers,
        provider_suffixes=tuple({n for p in known_providers for n in (*p.hosts, *p.domains)}),
        families=known,
        family_marks=FamilyMarks.of(known),
        boundaries=_lower(families["text"]["boundaries"]),
        delay_markers=_lower(families["text"]["delay_markers"]),
        autoreply={k: _lower(v) for k, v in families["autoreply"].items()},
        complaint={k: _lower(v) for k, v in families["complaint"].items()},
        returned={k: _lower(v) for k, v in families["returned"].items()},
        not_recipients=_lower(families["text"]["not_recipients"]),
        list_affixes=_lower(families["text"]["list_affixes"]),
        footers=_lower(families["text"]["footers"]),
        footer_words=_lower(families["text"]["footer_words"]),
        challenge={k: _lower(v) for k, v in families["challenge"].items()},
        hard_when=tuple(
            HardWhen(
                _reason(row["reason"], "reasons.toml"),
                _lower(row["phrases"]),
                _lower(row["unless"]),
            )
            for row in reasons.get("hard_when", ())
        ),
    )
