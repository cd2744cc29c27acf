#!/usr/bin/env python3
"""Throughput of `bounced parse` against Sisimai and flufl.bounce, in one run.

The corpus messages are copied N times into a temporary directory, then each
tool parses that directory in a whole process of its own (start-up included),
writing one JSON line per result to a file: `bounced parse --format ndjson`
with one and with two jobs, Sisimai through benches/sisimai_driver.pl, and
flufl.bounce through benches/flufl_driver.py. Each tool is timed until its
process exits; CPU time and peak RSS come from the rusage of it and of every
descendant (os.wait4; this process adopts orphans, so a forkserver's workers
count too). With --repeat K the tools take turns K times; the best wall time
counts. A tool that is not installed
is reported as missing; one that fails is reported with its exit status.
"""

from __future__ import annotations

import argparse
import compileall
import ctypes
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
BENCHES = Path(__file__).resolve().parent
DEFAULT_CORPUS = BENCHES.parent.parent / "shared" / "corpus" / "sisimai"


@dataclass(frozen=True, slots=True)
class Run:
    """One timed process."""

    wall: float
    cpu: float
    max_rss: int  # bytes, of the largest single process
    processes: int  # the tool's own process and the orphans it left to us
    exit_code: int
    lines: int  # results written to stdout
    stderr: str


@dataclass(slots=True)
class Tool:
    """A command to time, or why it cannot be (`missing`)."""

    key: str  # bounced-1, bounced-2, sisimai, flufl
    name: str
    argv: list[str]
    missing: str = ""
    runs: list[Run] = field(default_factory=list)

    @property
    def best(self) -> Run | None:
        good = [r for r in self.runs if r.exit_code == 0]
        return min(good, key=lambda r: r.wall) if good else None

    @property
    def failure(self) -> Run | None:
        return next((r for r in self.runs if r.exit_code != 0), None)


def _count_lines(handle) -> int:
    handle.seek(0)
    return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux prctl), so that a tool's helper processes
    that outlive it, like a forkserver and its workers, are still reaped and counted."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap_descendants(deadline: float) -> list[resource.struct_rusage]:
    """The rusage of every adopted descendant, once each has exited (bounded wait)."""
    usages = []
    while time.monotonic() < deadline:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            usages.append(usage)
        else:
            time.sleep(0.005)
    return usages


def run_once(argv: Sequence[str], env: dict[str, str]) -> Run:
    """Run one tool to completion: wall time until it exits; CPU time summed, and the
    largest peak RSS, over it and every descendant (each rusage covers the process
    and the children it reaped itself)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        usages = [usage, *_reap_descendants(time.monotonic() + 30)]
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        return Run(
            wall=wall,
            cpu=sum(u.ru_utime + u.ru_stime for u in usages),
            max_rss=max(u.ru_maxrss for u in usages) * 1024,  # Linux reports KiB
            processes=len(usages),
            exit_code=proc.returncode,
            lines=_count_lines(out),
            stderr=stderr,
        )


def compile_bytecode() -> None:
    """Compile bounced's modules as pip does when it installs a package: the tools run
    with PYTHONDONTWRITEBYTECODE, and a checkout without __pycache__ (an editable
    install in an environment that sets it) would compile every module in every
    process, about 30 ms a start, which no installed copy pays."""
    spec = importlib.util.find_spec("bounced")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(folder, quiet=1)


def _probe(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)


def bounced_tools(directory: Path, env: dict[str, str]) -> list[Tool]:
    """`bounced parse` with one and two jobs, as far as the installed CLI allows."""
    local = Path(sys.executable).parent / "bounced"
    exe = str(local) if local.exists() else shutil.which("bounced")
    jobs = {"bounced-1": "1", "bounced-2": "2"}
    if exe is None:
        return [Tool(k, f"bounced --jobs {n}", [], "no `bounced` command") for k, n in jobs.items()]
    base = [exe, "parse", "--format", "ndjson"]
    probe = _probe([exe, "parse", "--help"], env)
    if probe.returncode != 0:
        reason = f"`bounced parse --help` exits {probe.returncode}: {_tail(probe.stderr)}"
        return [Tool(k, f"bounced --jobs {n}", [], reason) for k, n in jobs.items()]
    if "--jobs" not in probe.stdout:
        return [
            Tool("bounced-1", "bounced (no --jobs)", [*base, str(directory)]),
            Tool("bounced-2", "bounced --jobs 2", [], "the CLI has no --jobs option yet"),
        ]
    return [
        Tool(k, f"bounced --jobs {n}", [*base, "--jobs", n, str(directory)])
        for k, n in jobs.items()
    ]


def sisimai_tool(directory: Path, env: dict[str, str]) -> Tool:
    argv = ["perl", str(BENCHES / "sisimai_driver.pl"), str(directory)]
    if shutil.which("perl") is None:
        return Tool("sisimai", "sisimai", argv, missing="perl is not installed")
    probe = _probe(["perl", "-MSisimai", "-MJSON", "-e", "print Sisimai->version"], env)
    if probe.returncode != 0:
        return Tool("sisimai", "sisimai", argv, f"Sisimai not loadable: {_tail(probe.stderr)}")
    return Tool("sisimai", f"sisimai {probe.stdout.strip()}", argv)


def flufl_tool(directory: Path) -> Tool:
    argv = [sys.executable, str(BENCHES / "flufl_driver.py"), str(directory)]
    if (
        importlib.util.find_spec("flufl") is None
        or importlib.util.find_spec("flufl.bounce") is None
    ):
        return Tool(
            "flufl", "flufl.bounce", argv, f"flufl.bounce not installed for {sys.executable}"
        )
    from flufl.bounce import __version__

    return Tool("flufl", f"flufl.bounce {__version__}", argv)


def _tail(text: str, lines: int = 2) -> str:
    return " / ".join(text.strip().splitlines()[-lines:]) or "(no message)"


def copy_corpus(corpus: Path, target: Path, copies: int) -> int:
    """Copy every corpus message `copies` times, flat, under distinct names."""
    sources = sorted((corpus / "eml").glob("*.eml"))
    for n in range(copies):
        for source in sources:
            shutil.copyfile(source, target / f"{n:03d}-{source.name}")
    return len(sources) * copies


@dataclass(frozen=True, slots=True)
class Figures:
    """What is printed for one tool."""

    key: str
    name: str
    messages_per_s: float | None
    wall: float | None
    cpu: float | None
    max_rss_mb: float | None
    processes: int | None
    results: int | None
    note: str  # missing/failed reason, or the tool's own stderr summary


def figures(tool: Tool, messages: int) -> Figures:
    """Best run's figures; a failure (even after a good run) or absence goes in the note."""
    best, failed = tool.best, tool.failure
    if failed:
        note = f"failed: exit {failed.exit_code}: {_tail(failed.stderr)}"
    elif tool.missing:
        note = f"missing: {tool.missing}"
    else:
        note = _tail(best.stderr, 1) if best and best.stderr.strip() else ""
    if best is None:
        return Figures(tool.key, tool.name, None, None, None, None, None, None, note)
    peak = max(r.max_rss for r in tool.runs) / 2**20
    rate = messages / best.wall
    return Figures(
        tool.key, tool.name, rate, best.wall, best.cpu, peak, best.processes, best.lines, note
    )


def ratios(table: list[Figures]) -> dict[str, float | None]:
    """bounced (1 job) messages/s over each reference tool's, and bounced with two
    jobs over one ("jobs"); None where one is missing."""
    rate = {f.key: f.messages_per_s for f in table}
    ours = rate.get("bounced-1")
    by = {
        other: ours / rate[other] if ours and rate.get(other) else None
        for other in ("sisimai", "flufl")
    }
    two = rate.get("bounced-2")
    by["jobs"] = two / ours if two and ours else None
    return by


def _cell(value: float | int | None, spec: str, width: int = 0) -> str:
    return ("-" if value is None else format(value, spec)).rjust(width)


#: Issue 16's goals: bounced with one job against each reference tool, in messages/s,
#: and two jobs against one (issue 3 asked 2.0 and 1.5 of the tools).
TARGETS = {"sisimai": 3.0, "flufl": 1.6, "jobs": 1.7}


def summary_line(table: list[Figures]) -> str:
    rate = {f.key: _cell(f.messages_per_s, ".0f") for f in table}
    by = ratios(table)
    ratio_text = " ".join(
        f"{k} {'n/a' if v is None else f'{v:.2f}x'} (>= {TARGETS[k]})" for k, v in by.items()
    )
    return (
        f"bounced {rate.get('bounced-1', '-')} msg/s (2 jobs {rate.get('bounced-2', '-')})"
        f" | sisimai {rate.get('sisimai', '-')} | flufl {rate.get('flufl', '-')}"
        f" | ratios {ratio_text}"
    )


def parser_build() -> str:
    """How the installed parser was built (setup.py compiles it with mypyc where it can)."""
    spec = importlib.util.find_spec("bounced.dsn.mime")
    origin = spec.origin if spec else None
    if origin is None:
        return "not installed"
    return "compiled (mypyc)" if origin.endswith((".so", ".pyd")) else "pure Python"


def render(table: list[Figures], messages: int, copies: int, repeat: int) -> list[str]:
    """The table, a note on RSS, and the one-line summary last."""
    lines = [
        f"{messages} messages ({messages // copies} x {copies}); best wall time of {repeat} run(s);"
        f" bounced's parser: {parser_build()}",
        f"{'tool':22} {'msg/s':>8} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12}"
        f" {'procs':>5} {'results':>8}",
    ]
    for f in table:
        note = f.note or ("no results written" if f.results == 0 else "")
        cells = (
            _cell(f.messages_per_s, ".0f", 8),
            _cell(f.wall, ".2f", 8),
            _cell(f.cpu, ".2f", 8),
            _cell(f.max_rss_mb, ".1f", 12),
            _cell(f.processes, "d", 5),
            _cell(f.results, "d", 8),
        )
        lines.append(f"{f.name:22} {' '.join(cells)}" + (f"  {note}" if note else ""))
    lines.append("cpu: all processes of a run; peak RSS: its largest process; procs: reaped here")
    return [*lines, summary_line(table)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="dir with eml/")
    parser.add_argument("--copies", type=int, default=10, help="copies of each message (10)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool, best counts (1)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    args = parser.parse_args(argv)
    if args.copies < 1 or args.repeat < 1:
        parser.error("--copies and --repeat must be at least 1")
    if not (args.corpus / "eml").is_dir():
        parser.error(f"no eml/ in {args.corpus}")
    # Plain output and no terminal: no colours, no progress bar in any tool.
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1"}
    if not become_subreaper():
        print(
            "note: cannot adopt orphans; helpers outliving a tool are not counted", file=sys.stderr
        )
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="bounced-throughput-") as tmp:
        directory = Path(tmp)
        messages = copy_corpus(args.corpus, directory, args.copies)
        tools = [
            *bounced_tools(directory, env),
            sisimai_tool(directory, env),
            flufl_tool(directory),
        ]
        for _ in range(args.repeat):  # take turns, so a noisy moment hits every tool alike
            for tool in tools:
                if not tool.missing and tool.failure is None:
                    tool.runs.append(run_once(tool.argv, env))
    table = [figures(tool, messages) for tool in tools]
    if args.json:
        tools_json = {f.key: asdict(f) for f in table}
        print(json.dumps({"messages": messages, "tools": tools_json, "ratios": ratios(table)}))
    else:
        print("\n".join(render(table, messages, args.copies, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
