#!/usr/bin/env python3
"""Accuracy of `bounced.parse` on the shared Sisimai corpus.

Implements the scoring rule of ../shared/corpus/README.md and the checks on its
`sisimai-extra` sibling (err: no crash, not: no failure, dos/mac: the same rows
as with LF line endings). The scoring is importable (`score_corpus`,
`check_extras`, `metrics`, `shortfalls`) so that tests/test_corpus_accuracy.py
holds the acceptance floors with exactly the numbers this bench prints.

Run `benches/accuracy.py --help`; the last line of output is a one-line summary.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from bounced import Bounce, Kind, Report, parse
from bounced.inputs.sources import split_mbox

REPO = Path(__file__).resolve().parent.parent
#: `../shared/corpus` of the repository, or of a folder above it (a git worktree
#: under `wt/` reads the same corpus as the main checkout beside it).
DEFAULT_CORPUS = next(
    (
        found
        for folder in REPO.parents
        if (found := folder / "shared" / "corpus" / "sisimai").is_dir()
    ),
    REPO.parent / "shared" / "corpus" / "sisimai",
)

#: Acceptance of issue 3: each ratio must reach its floor ...
FLOORS = {
    "recipient_recall": 0.99,
    "class_agreement": 0.97,
    "reason_agreement": 0.93,
    "status_agreement": 0.97,
}
#: ... and each count stay within its ceiling (a crash on the corpus itself is
#: as much a defect as one on `err`: parse must never raise).
CEILINGS = {
    "extra_rows": 10,
    "crashes": 0,
    "err_crashes": 0,
    "not_failures": 0,
    "dos_mismatches": 0,
    "mac_mismatches": 0,
}

# The labels name complaints, auto-replies and deliveries by Sisimai's reason;
# we say the same thing with the row's kind.
_LABEL_CLASS_BY_REASON = {
    "feedback": "complaint",
    "vacation": "autoreply",
    "delivered": "delivered",
}
_OUR_CLASS_BY_KIND = {
    Kind.COMPLAINT: "complaint",
    Kind.AUTOREPLY: "autoreply",
    Kind.DELIVERED: "delivered",
}
_OUR_REASON_BY_KIND = {
    Kind.COMPLAINT: "feedback",
    Kind.AUTOREPLY: "vacation",
    Kind.DELIVERED: "delivered",
}
_NONE = "-"
_MISSING = "(missing)"


def normal_reason(name: str) -> str:
    """Sisimai writes `userunknown`, we write `user_unknown`: compare without underscores."""
    return name.replace("_", "").lower()


def our_class(row: Bounce) -> str:
    """The class of one of our rows, in the labels' vocabulary."""
    if row.kind in _OUR_CLASS_BY_KIND:
        return _OUR_CLASS_BY_KIND[row.kind]
    return str(row.bounce_class) if row.bounce_class else f"none({row.kind})"


def our_reason(row: Bounce) -> str:
    """The reason of one of our rows, in the labels' vocabulary."""
    if row.kind in _OUR_REASON_BY_KIND:
        return _OUR_REASON_BY_KIND[row.kind]
    return normal_reason(row.reason) if row.reason else _NONE


@dataclass(frozen=True, slots=True)
class Label:
    """One row of labels.json: what Sisimai's own tests expect for one recipient."""

    status: str
    reply_code: str
    reason: str
    hard: bool
    feedback_type: str
    recipient: str  # lower-cased; "" where the reference tool saw another recipient count

    @property
    def klass(self) -> str:
        return _LABEL_CLASS_BY_REASON.get(self.reason, "hard" if self.hard else "soft")


@dataclass(frozen=True, slots=True)
class Metric:
    """One compared field: its value in a label, in our row, and which labels it covers."""

    name: str
    expected: Callable[[Label], str]
    got: Callable[[Bounce], str]
    covers: Callable[[Label], bool] = lambda label: True


METRICS = (
    Metric("class", lambda label: label.klass, our_class),
    Metric("reason", lambda label: normal_reason(label.reason), our_reason),
    Metric(
        "status",
        lambda label: label.status,
        lambda row: row.status or _NONE,
        lambda label: bool(label.status),
    ),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}


@dataclass(frozen=True, slots=True)
class Parsed:
    """The outcome of one parse; `crash` holds the traceback when parse raised (it must not)."""

    report: Report
    crash: str = ""


def parse_safely(raw: bytes) -> Parsed:
    """Parse the file's messages as `bounced parse` reads it (a file that starts
    with a From_ line is an mbox), turning an exception into a counted crash so
    one bug cannot hide the others. The rows of all its messages are the file's."""
    try:
        messages = (
            [m.raw for m in split_mbox("-", io.BytesIO(raw))] if raw.startswith(b"From ") else [raw]
        )
        reports = [parse(m) for m in messages]
    except Exception:
        return Parsed(Report(kind=None), traceback.format_exc())
    kind = next((r.kind for r in reports if r.kind is not None), None)
    bounces = tuple(b for r in reports for b in r.bounces)
    return Parsed(replace(reports[0], kind=kind, bounces=bounces))


@dataclass(frozen=True, slots=True)
class Pair:
    """A labelled recipient and the row we gave for it (None when we gave none)."""

    label: Label
    row: Bounce | None

    def got(self, metric: Metric) -> str:
        return _MISSING if self.row is None else metric.got(self.row)

    def agrees(self, metric: Metric) -> bool:
        return self.got(metric) == metric.expected(self.label)

    def misses(self) -> list[Metric]:
        """The metrics covering this label on which we disagree."""
        return [m for m in METRICS if m.covers(self.label) and not self.agrees(m)]


@dataclass(frozen=True, slots=True)
class FileScore:
    """One corpus message: its labels, our parse, the matched pairs and our unmatched rows."""

    name: str
    labels: tuple[Label, ...]
    parsed: Parsed
    pairs: tuple[Pair, ...]
    extra: tuple[Bounce, ...]
    absorbed: tuple[Bounce, ...] = ()  # rows standing for labels without a recipient

    @property
    def clean(self) -> bool:
        return not (self.parsed.crash or self.extra or any(p.misses() for p in self.pairs))


def _names_address(row: Bounce, address: str) -> bool:
    """The labels name the final address after aliasing; our rows name the one
    mailed, and the final one beside it when they differ: either matches."""
    return address in (row.recipient.lower(), row.final_recipient.lower())


def score_file(name: str, labels: tuple[Label, ...], parsed: Parsed) -> FileScore:
    """Match each labelled recipient, in order, to the first unused row for that
    address (its `recipient` or its `final_recipient`).

    Rows left over are extra, except that a label with an empty recipient (the
    reference tool saw a different recipient count) stands for one row whose
    address is unknown: it absorbs one leftover row and is not scored.
    """
    unused = list(parsed.report.bounces)
    pairs = []
    for label in labels:
        if not label.recipient:
            continue
        index = next((i for i, r in enumerate(unused) if _names_address(r, label.recipient)), None)
        pairs.append(Pair(label, None if index is None else unused.pop(index)))
    blanks = sum(1 for label in labels if not label.recipient)
    return FileScore(
        name, labels, parsed, tuple(pairs), tuple(unused[blanks:]), tuple(unused[:blanks])
    )


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True, slots=True)
class CorpusScore:
    """Every file of the labelled corpus, scored."""

    corpus: Path
    files: tuple[FileScore, ...] = field(repr=False)  # keeps test failures readable
    seconds: float = 0.0

    def pairs(self) -> Iterator[tuple[FileScore, Pair]]:
        return ((f, p) for f in self.files for p in f.pairs)

    @property
    def rows(self) -> int:
        return sum(len(f.pairs) for f in self.files)

    @property
    def found(self) -> int:
        return sum(1 for _, p in self.pairs() if p.row is not None)

    def counts(self, metric: Metric) -> tuple[int, int]:
        """(agreeing, covered) labelled rows for one metric; missing rows disagree."""
        covered = [p for _, p in self.pairs() if metric.covers(p.label)]
        return sum(1 for p in covered if p.agrees(metric)), len(covered)

    def agreement(self, metric: Metric) -> float:
        return ratio(*self.counts(metric))

    @property
    def extra_rows(self) -> int:
        return sum(len(f.extra) for f in self.files)

    @property
    def crashes(self) -> int:
        return sum(1 for f in self.files if f.parsed.crash)

    def disagreements(
        self, metric: Metric, *, missing: bool = True
    ) -> list[tuple[tuple[str, str], list[str]]]:
        """(expected, ours) → file names, most frequent first; `missing`: with unfound rows."""
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for f, p in self.pairs():
            if (missing or p.row) and metric.covers(p.label) and not p.agrees(metric):
                groups[(metric.expected(p.label), p.got(metric))].append(f.name)
        return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def family_of(name: str) -> str:
    """`lhost-exim-07` → `lhost-exim`: the format and the family of a corpus name."""
    return name.rsplit("-", 1)[0]


@dataclass(frozen=True, slots=True)
class FamilyScore:
    """The figures of one family's files (class and reason over its labelled rows)."""

    family: str
    rows: int
    found: int
    agree: dict[str, int]

    def ratio(self, metric: str) -> float:
        return ratio(self.agree[metric], self.rows)


def family_scores(score: CorpusScore) -> list[FamilyScore]:
    """Per family, worst first: lowest reason agreement, then class, then the larger family."""
    pairs: dict[str, list[Pair]] = defaultdict(list)
    for f, p in score.pairs():
        pairs[family_of(f.name)].append(p)
    families = [
        FamilyScore(
            name,
            len(rows),
            sum(1 for p in rows if p.row is not None),
            {m.name: sum(1 for p in rows if m.covers(p.label) and p.agrees(m)) for m in METRICS},
        )
        for name, rows in pairs.items()
    ]
    return sorted(families, key=lambda f: (f.ratio("reason"), f.ratio("class"), -f.rows, f.family))


def load_labels(corpus: Path) -> dict[str, tuple[Label, ...]]:
    rows = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    return {
        name: tuple(
            Label(str(s), str(c), str(r), bool(h), str(x), str(rcpt).lower())
            for s, c, r, h, x, rcpt in labelled
        )
        for name, labelled in rows.items()
    }


def score_corpus(corpus: Path = DEFAULT_CORPUS) -> CorpusScore:
    """Parse every labelled message of `corpus` (a dir with eml/ and labels.json) and score it."""
    labels = load_labels(corpus)
    started = time.perf_counter()
    files = tuple(
        score_file(name, labels[name], parse_safely((corpus / "eml" / f"{name}.eml").read_bytes()))
        for name in sorted(labels)
    )
    return CorpusScore(corpus, files, time.perf_counter() - started)


# --- sisimai-extra --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtraCheck:
    """One message of sisimai-extra; `problem` is empty when it passed its check."""

    key: str  # "<group>/<name>", e.g. "dos/lhost-exim-01"
    parsed: Parsed
    problem: str = ""
    reference: Parsed | None = None  # the same message with LF endings (dos, mac)
    failed_rows: int = 0  # rows of kind failed (counted for `not`)


def _facts(parsed: Parsed) -> tuple[object, ...]:
    return (parsed.report.kind, tuple(tuple(b.to_dict().items()) for b in parsed.report.bounces))


def _differences(got: Parsed, want: Parsed) -> str:
    """Which facts differ, as a short phrase ('' when none)."""
    if got.crash or want.crash:
        return "crash" if got.crash else "crash on the LF reference"
    if got.report.kind != want.report.kind:
        return f"kind {want.report.kind} with LF, {got.report.kind} here"
    ours, theirs = got.report.bounces, want.report.bounces
    if len(ours) != len(theirs):
        return f"{len(theirs)} rows with LF, {len(ours)} here"
    fields = sorted(
        {
            k
            for a, b in zip(ours, theirs, strict=True)
            for k, v in a.to_dict().items()
            if b.to_dict()[k] != v
        }
    )
    return f"differs from LF in {', '.join(fields)}" if fields else ""


def _check_err(key: str, raw: bytes) -> ExtraCheck:
    parsed = parse_safely(raw)
    return ExtraCheck(key, parsed, "crash" if parsed.crash else "")


def _check_not(key: str, raw: bytes) -> ExtraCheck:
    parsed = parse_safely(raw)
    failed = sum(1 for b in parsed.report.bounces if b.kind == Kind.FAILED)
    if parsed.crash:  # a crash cannot show that nothing failed: count it as one failure
        return ExtraCheck(key, parsed, "crash", failed_rows=1)
    return ExtraCheck(key, parsed, f"{failed} failed rows" if failed else "", failed_rows=failed)


def _check_line_endings(key: str, raw: bytes) -> ExtraCheck:
    """Compare with the same bytes converted to LF.

    That reference equals sisimai/eml/<name>.eml byte for byte wherever the LF
    twin is the same message; for a few names the twin is absent or carries
    differently encoded headers, so the file's own LF form is the fair one.
    """
    parsed = parse_safely(raw)
    reference = parse_safely(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    same = _facts(parsed) == _facts(reference) and not parsed.crash
    problem = "" if same else _differences(parsed, reference) or "differs from LF"
    return ExtraCheck(key, parsed, problem, reference)


_EXTRA_CHECKS = {
    "err": _check_err,
    "not": _check_not,
    "dos": _check_line_endings,
    "mac": _check_line_endings,
}


@dataclass(frozen=True, slots=True)
class ExtrasScore:
    """The sisimai-extra checks (`checks` is empty when the directory is absent)."""

    directory: Path
    checks: tuple[ExtraCheck, ...] = field(repr=False)

    def group(self, name: str) -> list[ExtraCheck]:
        return [c for c in self.checks if c.key.startswith(f"{name}/")]

    def failures(self, name: str) -> list[ExtraCheck]:
        return [c for c in self.group(name) if c.problem]

    @property
    def present(self) -> bool:
        return bool(self.checks)


def check_extras(directory: Path) -> ExtrasScore:
    """Run the err/not/dos/mac checks over `directory` (sisimai-extra)."""
    checks = []
    for group, check in _EXTRA_CHECKS.items():
        for path in sorted((directory / group).glob("*.eml")):
            checks.append(check(f"{group}/{path.stem}", path.read_bytes()))
    return ExtrasScore(directory, tuple(checks))


def metrics(score: CorpusScore, extras: ExtrasScore) -> dict[str, float | int | None]:
    """The acceptance figures; the sisimai-extra ones are None when that directory is absent."""
    figures: dict[str, float | int | None] = {
        "recipient_recall": ratio(score.found, score.rows),
        **{f"{m.name}_agreement": score.agreement(m) for m in METRICS},
        "extra_rows": score.extra_rows,
        "crashes": score.crashes,
    }
    present = extras.present
    figures["err_crashes"] = len(extras.failures("err")) if present else None
    figures["not_failures"] = sum(c.failed_rows for c in extras.group("not")) if present else None
    figures["dos_mismatches"] = len(extras.failures("dos")) if present else None
    figures["mac_mismatches"] = len(extras.failures("mac")) if present else None
    return figures


def shortfalls(figures: dict[str, float | int | None]) -> list[str]:
    """The figures that miss their floor or ceiling, as readable phrases (empty: all met)."""
    low = [f"{k} {figures[k]:.3f} < {v}" for k, v in FLOORS.items() if (figures[k] or 0.0) < v]
    high = [
        f"{k} {figures[k]} > {v}"
        for k, v in CEILINGS.items()
        if figures[k] is not None and figures[k] > v
    ]
    return low + high


def summary_line(figures: dict[str, float | int | None]) -> str:
    line = (
        f"recall {figures['recipient_recall']:.3f} class {figures['class_agreement']:.3f}"
        f" reason {figures['reason_agreement']:.3f} status {figures['status_agreement']:.3f}"
        f" extra {figures['extra_rows']}"
    )
    if figures["crashes"]:
        line += f" crashes {figures['crashes']}"
    if figures["err_crashes"] is None:
        return line + " | sisimai-extra absent"
    line_endings = (figures["dos_mismatches"] or 0) + (figures["mac_mismatches"] or 0)
    return (
        f"{line} | err crashes {figures['err_crashes']} | not failures {figures['not_failures']}"
        f" | dos/mac mismatches {line_endings}"
    )


# --- human-readable report ------------------------------------------------------------------


def _columns(recipient: str, klass: str, reason: str, status: str, reply_code: str) -> str:
    shown = recipient or "(recipient unknown)"
    return f"{shown:40} {klass:13} {reason:16} {status or _NONE:8} {reply_code or _NONE}"


def _one_line(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe_row(tag: str, row: Bounce) -> list[str]:
    """Our row as the label columns, then what decided it and the server's words."""
    head = _columns(
        row.recipient or "(empty)", our_class(row), our_reason(row), row.status, row.reply_code
    )
    decided = f"{row.kind} · detector {row.detector or _NONE} · rule {row.rule or _NONE}"
    lines = [f"   {tag:6} {head}  [{decided}]"]
    if row.diagnostic:
        lines.append(f"          diagnostic: {_one_line(row.diagnostic)}")
    return lines


def _describe_label(label: Label) -> str:
    head = _columns(label.recipient, label.klass, label.reason, label.status, label.reply_code)
    return f"   {'label':6} {head}" + (
        f"  [feedback {label.feedback_type}]" if label.feedback_type else ""
    )


def _describe_report(key: str, parsed: Parsed, note: str = "") -> list[str]:
    report = parsed.report
    head = f"== {key} · kind {report.kind or _NONE} · detector {report.detector or _NONE}"
    lines = [f"{head} · {len(report.bounces)} rows" + (f" · {note}" if note else "")]
    if report.problems:
        lines.append(f"   problems: {'; '.join(report.problems)}")
    if parsed.crash:
        lines += [f"   {line}" for line in parsed.crash.rstrip().splitlines()]
    return lines


def describe_file(f: FileScore) -> list[str]:
    """Expected against got, row by row, with what disagrees."""
    lines = _describe_report(f.name, f.parsed)
    for pair in f.pairs:
        lines.append(_describe_label(pair.label))
        lines += (
            describe_row("ours", pair.row)
            if pair.row
            else ["   ours   (no row for this recipient)"]
        )
        misses = [f"{m.name} {m.expected(pair.label)} → {pair.got(m)}" for m in pair.misses()]
        if misses and pair.row:
            lines.append(f"   !! {'; '.join(misses)}")
    for label in f.labels:
        if not label.recipient:
            lines.append(_describe_label(label))
    for row in f.absorbed:
        lines += describe_row("ours?", row)
    for row in f.extra:
        lines += describe_row("EXTRA", row)
    return lines


def describe_check(check: ExtraCheck) -> list[str]:
    lines = _describe_report(check.key, check.parsed, check.problem or "ok")
    for row in check.parsed.report.bounces:
        lines += describe_row("got", row)
    if check.reference and check.problem:
        for row in check.reference.report.bounces:
            lines += describe_row("LF", row)
    return lines


def _names(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" (+{len(names) - most})" if len(names) > most else "")


def _disagreement_lines(score: CorpusScore, top: int) -> list[str]:
    """Reasons first, with missing rows; class and status only for rows we found."""
    lines = []
    for metric in sorted(METRICS, key=lambda m: m.name != "reason"):
        groups = score.disagreements(metric, missing=metric.name == "reason")
        if not groups:
            continue
        total = sum(len(names) for _, names in groups)
        scope = "" if metric.name == "reason" else " among rows found"
        lines.append(f"{metric.name} disagreements{scope} (expected → ours), {total} rows:")
        for (expected, got), names in groups[:top]:
            lines.append(f"  {len(names):3}  {expected or _NONE} → {got}: {_names(names)}")
        if len(groups) > top:
            lines.append(f"       … {len(groups) - top} more groups (--top N)")
    return lines


def _family_lines(score: CorpusScore, top: int) -> list[str]:
    """The worst families, so that a rule fitted to one family's samples shows up
    as that family's figures, not as a hundredth of the total."""
    families = family_scores(score)
    worst = [f for f in families if f.ratio("reason") < 1 or f.ratio("class") < 1][:top]
    if not worst:
        return []
    lines = [f"worst families ({len(families)} families; recall, class, reason over rows):"]
    for f in worst:
        lines.append(
            f"  {f.family:24} {f.rows:3} rows  recall {ratio(f.found, f.rows):.2f}"
            f"  class {f.ratio('class'):.2f}  reason {f.ratio('reason'):.2f}"
        )
    return lines


def _extra_lines(score: CorpusScore, top: int) -> list[str]:
    worst = sorted((f for f in score.files if f.extra), key=lambda f: (-len(f.extra), f.name))
    if not worst:
        return []
    lines = [f"extra rows, worst files ({score.extra_rows} rows in {len(worst)} files):"]
    for f in worst[:top]:
        rows = ", ".join(f"{r.recipient or '(empty)'} ({r.kind})" for r in f.extra[:4])
        lines.append(f"  {len(f.extra):3}  {f.name}: {rows}")
    return lines


def _tail_lines(
    score: CorpusScore, extras: ExtrasScore, figures: dict[str, float | int | None]
) -> list[str]:
    """The last eight lines: what the repository's stop hook shows."""
    counted = {"recipient_recall": (score.found, score.rows, "labelled recipients found")}
    for metric in METRICS:
        counted[f"{metric.name}_agreement"] = (*score.counts(metric), "")
    counted["status_agreement"] = (*counted["status_agreement"][:2], "labels with a status")
    ratios = [
        f"{name:17} {figures[name]:.3f}  {part}/{whole} {note}".rstrip()
        for name, (part, whole, note) in counted.items()
    ]
    with_extra = sum(1 for f in score.files if f.extra)
    missed = shortfalls(figures)
    return [
        *ratios,
        f"{'extra_rows':17} {score.extra_rows} in {with_extra} files · crashes {score.crashes}",
        _extras_line(extras, figures),
        ("below acceptance: " + ", ".join(missed)) if missed else "acceptance: all floors met",
        summary_line(figures),
    ]


def _extras_line(extras: ExtrasScore, figures: dict[str, float | int | None]) -> str:
    if not extras.present:
        return f"sisimai-extra     absent ({extras.directory})"
    sizes = {group: len(extras.group(group)) for group in _EXTRA_CHECKS}
    return (
        f"sisimai-extra     err {figures['err_crashes']}/{sizes['err']} crashed"
        f" · not {figures['not_failures']} failed rows in {sizes['not']}"
        f" · dos {figures['dos_mismatches']}/{sizes['dos']} differ"
        f" · mac {figures['mac_mismatches']}/{sizes['mac']} differ"
    )


def _selected(key: str, patterns: list[str]) -> bool:
    """--show takes names, globs, substrings or paths (…/eml/NAME.eml, …/dos/NAME.eml)."""
    for pattern in patterns:
        path = Path(pattern)
        if path.suffix == ".eml":
            pattern = path.stem if path.parent.name == "eml" else f"{path.parent.name}/{path.stem}"
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(key, pattern):
            return True
        if pattern in key:
            return True
    return False


def render(
    score: CorpusScore, extras: ExtrasScore, *, verbose: bool, show: list[str], top: int
) -> list[str]:
    """The whole human-readable report; detail first, the summary last."""
    figures = metrics(score, extras)
    lines: list[str] = []
    for f in score.files:
        if (verbose and not f.clean) or _selected(f.name, show):
            lines += [*describe_file(f), ""]
    for check in extras.checks:
        if (verbose and check.problem) or _selected(check.key, show):
            lines += [*describe_check(check), ""]
    labels = sum(len(f.labels) for f in score.files)
    each = 1000 * score.seconds / max(len(score.files), 1)
    lines.append(
        f"{score.corpus}: {len(score.files)} messages parsed in {score.seconds:.2f} s"
        f" ({each:.1f} ms each); {labels} labels, {score.rows} with a recipient"
    )
    lines += _disagreement_lines(score, top)
    lines += _family_lines(score, top)
    lines += _extra_lines(score, top)
    problems = [c for c in extras.checks if c.problem]
    if problems:
        lines.append(f"sisimai-extra problems ({len(problems)}):")
        lines += [f"  {c.key}: {c.problem}" for c in problems[: top * 2]]
    return [*lines, *_tail_lines(score, extras, figures)]


def as_json(score: CorpusScore, extras: ExtrasScore) -> dict[str, object]:
    figures = metrics(score, extras)
    return {
        **figures,
        "rows": score.rows,
        "found": score.found,
        "seconds": round(score.seconds, 3),
        "shortfalls": shortfalls(figures),
        "disagreements": {
            m.name: [
                {"expected": e, "got": g, "count": len(n), "files": n}
                for (e, g), n in score.disagreements(m)
            ]
            for m in METRICS
        },
        "families": {
            f.family: {"rows": f.rows, "found": f.found, **f.agree} for f in family_scores(score)
        },
        "extra": {f.name: [r.recipient for r in f.extra] for f in score.files if f.extra},
        "extra_problems": {c.key: c.problem for c in extras.checks if c.problem},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="dir with eml/ and labels.json"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="details of every file that disagrees"
    )
    parser.add_argument(
        "--show",
        action="append",
        default=[],
        metavar="NAME",
        help="details of matching files (repeatable): name, glob, substring or path;"
        " dos/NAME, err/NAME ... for sisimai-extra",
    )
    parser.add_argument("--top", type=int, default=10, help="disagreement groups listed per metric")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a figure misses the acceptance"
    )
    args = parser.parse_args(argv)
    if not (args.corpus / "labels.json").is_file():
        parser.error(f"no labels.json in {args.corpus}")
    score = score_corpus(args.corpus)
    extras = check_extras(args.corpus.parent / "sisimai-extra")
    if args.json:
        print(json.dumps(as_json(score, extras), indent=2))
    else:
        print("\n".join(render(score, extras, verbose=args.verbose, show=args.show, top=args.top)))
    return 1 if args.check and shortfalls(metrics(score, extras)) else 0


if __name__ == "__main__":
    sys.exit(main())
