#!/usr/bin/env python3
"""The serial share of `bounced parse --jobs N`: the CPU the command itself spends per
message while its workers parse every one, against one job's CPU per message.

With N jobs the command walks the input, hands the files out and writes every row.
That work is not shared, so on a machine with many cores it caps the speed-up at one
job's cost per message over the command's own (Amdahl): the ceiling printed here.
Measured in this process, over the corpus copied N times, with the calls
`bounced parse` makes (`map_results` with its `rows_of`, rows written as NDJSON to
/dev/null): once with one job, once with two workers and `parse_here=False`, so that
the command parses nothing. CPU time of this process and its threads (the pool's);
the best of --repeat turns.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import resource
import sys
import tempfile
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import DEFAULT_CORPUS, copy_corpus

from bounced.cli.parse import PARSE_COLUMNS, parse_rows, rows_of
from bounced.cli.terminal import Feedback
from bounced.formats import Format, write_rows
from bounced.inputs.batch import map_results
from bounced.inputs.sources import find_sources


def own_cpu(directory: Path, jobs: int, here: bool) -> float:
    """CPU seconds of this process (its threads included, its workers not) for one
    `bounced parse --format ndjson` of `directory`, done as the command does it."""
    feedback = Feedback(progress=False, stderr=io.StringIO())
    before = resource.getrusage(resource.RUSAGE_SELF)
    done = map_results(
        functools.partial(rows_of, False), find_sources([str(directory)]), jobs, parse_here=here
    )
    with closing(done) as results, open(os.devnull, "w") as out:
        write_rows(Format.NDJSON, PARSE_COLUMNS, parse_rows(results, feedback), out)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="dir with eml/")
    parser.add_argument("--copies", type=int, default=10, help="copies of each message (10)")
    parser.add_argument("--repeat", type=int, default=5, help="turns, best counts (5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bounced-ceiling-") as tmp:
        directory = Path(tmp)
        messages = copy_corpus(args.corpus, directory, args.copies)
        one, command = [], []
        for _ in range(args.repeat):  # in turns, so a noisy moment hits both alike
            one.append(own_cpu(directory, 1, True))
            command.append(own_cpu(directory, 3, False))
    per_one, per_command = min(one) / messages * 1e6, min(command) / messages * 1e6
    print(f"{messages} messages ({args.copies} copies); best of {args.repeat} turns")
    print(f"one job: {per_one:.1f} us of CPU a message")
    print(f"the command beside its workers: {per_command:.1f} us a message (its own share)")
    print(
        f"serial share {per_command / per_one:.3f}: --jobs N can reach at most "
        f"{per_one / per_command:.1f}x one job, however many cores"
    )


if __name__ == "__main__":
    main()
