"""bounced.inputs.batch: order, pass-through of unreadable inputs, and a parser that fails."""

from __future__ import annotations

import pytest

from bounced.dsn import Report
from bounced.inputs import batch
from bounced.inputs.batch import Parsed, parse_sources
from bounced.inputs.sources import Message, Unreadable


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


def test_worker_processes_give_the_same_results_in_the_same_order() -> None:
    items = inputs(150)
    one = summary(list(parse_sources(items, jobs=1)))
    assert [name for name, _ in one] == [item.name for item in items]
    assert summary(list(parse_sources(items, jobs=2))) == one


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
