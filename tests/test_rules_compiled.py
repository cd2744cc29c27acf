"""The cache of compiled rules: used only for the very sources it was compiled
from, and never in the way (an unwritable or damaged cache means compiling)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bounced.rules import Rules, load
from bounced.rules.compiled import cache_dir, cached


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "bounced"


def _counting():
    calls = []

    def build() -> str:
        calls.append(1)
        return f"built {len(calls)}"

    return calls, build


def test_the_second_process_reads_what_the_first_compiled(cache_home) -> None:
    calls, build = _counting()
    sources = {"a.toml": b"x = 1"}
    assert cached(str, sources, build) == "built 1"
    assert cached(str, sources, build) == "built 1"
    assert len(calls) == 1
    assert len(list(cache_home.glob("rules-*.pickle"))) == 1


def test_changed_sources_are_compiled_again(cache_home) -> None:
    _, build = _counting()
    cached(str, {"a.toml": b"x = 1"}, build)
    assert cached(str, {"a.toml": b"x = 2"}, build) == "built 2"
    assert cached(str, {"a.toml": b"x = 1", "b.toml": b""}, build) == "built 3"


def test_a_damaged_cache_file_is_compiled_over(cache_home) -> None:
    _, build = _counting()
    sources = {"a.toml": b"x = 1"}
    cached(str, sources, build)
    (path,) = cache_home.glob("rules-*.pickle")
    path.write_bytes(b"\x80\x05 not a pickle")
    assert cached(str, sources, build) == "built 2"
    assert cached(str, sources, build) == "built 2"  # and stored again


def test_a_cached_object_of_another_type_is_not_taken(cache_home) -> None:
    sources = {"a.toml": b"x = 1"}
    cached(str, sources, lambda: "text")
    assert cached(int, sources, lambda: 7) == 7


def test_a_cache_path_that_is_a_file_only_means_compiling(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # bounced/ cannot be made under it
    _, build = _counting()
    assert cached(str, {"a": b""}, build) == "built 1"
    assert cached(str, {"a": b""}, build) == "built 2"


def test_the_cache_directory_follows_xdg(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "bounced"


def test_rules_from_the_cache_equal_the_compiled_ones(tmp_path) -> None:
    """Two processes: the first compiles and stores, the second reads the cache;
    both see the same rules (compared through their pickled form and a parse)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = (
        "import pickle, sys; from bounced.rules import load; from bounced.dsn import parse; "
        "r = load(); sys.stdout.buffer.write(pickle.dumps((r.phrase_scan.strings, "
        "sorted(r.statuses), r.families, parse(sys.stdin.buffer.read()).bounces)))"
    )
    notice = (
        b"From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\n\n"
        b"<nobody@example.net>: host mx.example.net said: 550 5.1.1 user unknown\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], input=notice, env=env, capture_output=True)
        for _ in range(2)
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert list((tmp_path / "bounced").glob("rules-*.pickle"))
    assert isinstance(load(), Rules)
