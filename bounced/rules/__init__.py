"""Classification rules as data: the TOML files beside this module, validated
and compiled once.

Adding an MTA's phrase, a provider's quirk or a family's markers is an edit to
a TOML file here, not new code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ahocorasick_rs import AhoCorasick

from bounced.dsn.report import Reason
from bounced.errors import RulesError
from bounced.rules.compiled import cached

__all__ = [
    "SCHEMA",
    "Family",
    "FamilyMarks",
    "HardWhen",
    "Pattern",
    "PhraseRule",
    "Phrases",
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


class Phrases:
    """A fixed list of strings, all found in a text in one pass: an Aho-Corasick
    automaton (ahocorasick-rs) built once over them, instead of one substring
    search per string. `found(text)` is exactly ``[s for s in strings if s in text]``,
    in list order.

    Pickled as its strings (the automaton is rebuilt on loading: it takes about a
    millisecond for a thousand phrases and cannot be pickled itself)."""

    __slots__ = ("_automaton", "strings")

    def __init__(self, strings: Iterable[str]) -> None:
        self.strings = tuple(dict.fromkeys(strings))
        if "" in self.strings:
            raise RulesError("an empty string among the phrases or markers")
        self._automaton = AhoCorasick(list(self.strings)) if self.strings else None

    def indexes(self, text: str) -> list[int]:
        """The places in `strings` of those that occur in `text`, ascending."""
        if self._automaton is None:
            return []
        matches = self._automaton.find_matches_as_indexes(text, overlapping=True)
        return sorted({m[0] for m in matches})

    def found(self, text: str) -> list[str]:
        strings = self.strings
        return [strings[i] for i in self.indexes(text)]

    def __reduce__(self) -> tuple[type[Phrases], tuple[tuple[str, ...]]]:
        return (Phrases, (self.strings,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Phrases) and other.strings == self.strings

    def __hash__(self) -> int:
        return hash(self.strings)

    def __repr__(self) -> str:
        return f"Phrases({len(self.strings)} strings)"


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
    #: The body markers for one scan of a notice's opening lines, and the best
    #: (lowest) family index of each (a marker two families share counts for the first).
    marker_scan: Phrases
    marker_family: tuple[int, ...]

    @classmethod
    def of(cls, families: tuple[Family, ...]) -> FamilyMarks:
        def flat(attr: str) -> tuple[tuple[str, int], ...]:
            return tuple((m, i) for i, f in enumerate(families) for m in getattr(f, attr))

        markers = flat("markers")
        return cls(
            flat("senders"),
            flat("subjects"),
            flat("headers"),
            markers,
            Phrases(m for m, _ in markers),
            _first_family(markers),
        )


def _first_family(marks: tuple[tuple[str, int], ...]) -> tuple[int, ...]:
    best: dict[str, int] = {}
    for mark, i in marks:
        best.setdefault(mark, i)
    return tuple(best.values())


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
    parse (the phrases in rules-file order), and `phrase_index` gives each its
    (priority, reason)."""

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
    phrase_scan: Phrases
    pattern_list: tuple[Pattern, ...]
    phrase_index: dict[str, tuple[int, Reason]]

    def family(self, name: str) -> Family | None:
        return next((f for f in self.families if f.name == name), None)


#: The rules files that `load` compiles.
_FILES = ("reasons.toml", "status.toml", "providers.toml", "families.toml")
_HERE = Path(__file__).parent


def _load_toml(name: str, source: bytes) -> dict[str, Any]:
    import tomllib  # only when the compiled rules are not in the cache

    return tomllib.loads(source.decode("utf-8"))


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


def _rules_file(name: str, source: bytes) -> dict[str, Any]:
    """A rules file, read and checked against its schema."""
    data = _load_toml(name, source)
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
    """The compiled rules; read from the package once per process, compiled once
    per change of the rules (bounced.rules.compiled keeps them between processes)."""
    sources = {name: (_HERE / name).read_bytes() for name in (*_FILES, "__init__.py")}
    return cached(Rules, sources, lambda: _compile(sources))


def _compile(sources: dict[str, bytes]) -> Rules:
    """Every rules file read, validated and compiled."""
    reasons = _rules_file("reasons.toml", sources["reasons.toml"])
    status = _rules_file("status.toml", sources["status.toml"])
    providers = _rules_file("providers.toml", sources["providers.toml"])
    families = _rules_file("families.toml", sources["families.toml"])
    phrases = phrase_rules(reasons)
    known = _families(families)
    known_providers = _providers(providers)
    index = {p: (r.priority, r.reason) for r in phrases for p in r.phrases}
    index.update((p.regex.pattern, (r.priority, r.reason)) for r in phrases for p in r.patterns)
    return Rules(
        phrases=phrases,
        phrase_scan=Phrases(p for r in phrases for p in r.phrases),
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
