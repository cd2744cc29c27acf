"""bounced.inputs.batch: order, pass-through of unreadable inputs, a parser that fails, and
files read where they are parsed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.dsn import make_dsn

from bounced.dsn import Report
from bounced.inputs import batch
from bounced.inputs.batch import Parsed, Result, map_results, parse_sources
from bounced.inputs.sources import File, Message, Unreadable


def inputs(count: int) -> list[Message | Unreadable]:
    """Messages of very different sizes (so chunks are cut by bytes as well as by count),
    with unreadable items among them."""
    items: list[Message | Unreadable] = []
    for n in range(count):
        body = b"x" * 1_000_000 if n % 10 == 0 else b""
        items.append(Message(f"m{n}", f"Subject: {n}\n\n".encode() + body))
        if n % 50 == 0:
            items.append(Unreadable(f"u{n}", "No such file or directory"))
    return items


def summary(results: list[Parsed | Unreadable]) -> list[tuple[str, Report | str]]:
    return [
        (r.message.name, r.report) if isinstance(r, Parsed) else (r.name, r.reason) for r in results
    ]


@pytest.mark.parametrize("parse_here", [True, False], ids=["parsing here", "workers only"])
@pytest.mark.parametrize("jobs", [2, 3])
def test_worker_processes_give_the_same_results_in_the_same_order(
    jobs: int, parse_here: bool
) -> None:
    items = inputs(150)
    one = summary(list(parse_sources(items, jobs=1)))
    assert [name for name, _ in one] == [item.name for item in items]
    assert summary(list(parse_sources(items, jobs=jobs, parse_here=parse_here))) == one


def test_a_process_with_other_work_leaves_every_message_to_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`parse_here=False` (ingest records while its workers parse): not one message is
    parsed in this process, not even the last ones once the input is read."""

    def parse(raw: bytes) -> Report:  # forked workers inherit this replacement
        return Report(kind=None, message_id=str(os.getpid()))

    monkeypatch.setattr(batch, "parse", parse)
    results = list(parse_sources(inputs(600), jobs=2, parse_here=False))
    parsers = {r.report.message_id for r in results if isinstance(r, Parsed)}
    assert len(parsers) == 1
    (parser,) = parsers
    assert parser is not None and int(parser) != os.getpid()


def test_a_parser_that_raises_makes_that_message_unreadable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse(raw: bytes) -> Report:
        if b"bad" in raw:
            raise ValueError("boom")
        return Report(kind=None)

    monkeypatch.setattr(batch, "parse", parse)
    good, bad = Message("good", b"fine"), Message("bad", b"bad")
    assert list(parse_sources([good, bad, good])) == [
        Parsed(good, Report(kind=None)),
        Unreadable("bad", "parser error: ValueError: boom"),
        Parsed(good, Report(kind=None)),
    ]


def made_where(result: Result) -> tuple[int, str]:
    """The process that made this of a result, and the result's name (at module level:
    a `then` must pickle)."""
    name = result.message.name if isinstance(result, Parsed) else result.name
    return os.getpid(), name


def test_files_are_read_and_their_results_made_by_the_processes_that_parse_them(
    tmp_path: Path,
) -> None:
    """`File` items give what their bytes would, with workers too; and with
    `parse_here` False, `map_results`' `then` runs in the workers, never here."""
    paths = []
    for n in range(300):
        paths.append(tmp_path / f"{n:03d}.eml")
        paths[-1].write_bytes(make_dsn(f"user{n}@example.net"))
    files = [File(str(path), path.stat().st_size) for path in paths]
    read = [Message(str(path), path.read_bytes()) for path in paths]
    assert summary(list(parse_sources(files, jobs=2))) == summary(list(parse_sources(read)))
    made = list(map_results(made_where, files, jobs=2, parse_here=False))
    assert [name for _, name in made] == [str(path) for path in paths]
    assert os.getpid() not in {pid for pid, _ in made}
