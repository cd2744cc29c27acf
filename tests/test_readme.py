"""The README's Python examples run as written, and the Python API reads files the way
the command line does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bounced import Suppressions

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """`code` as a script of its own, in `cwd` (which holds the samples), with no
    BOUNCED_* settings from the test environment: the README's reader has none."""
    (cwd / "fixtures").symlink_to(ROOT / "fixtures", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    script = cwd / "example.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs_as_written(block, tmp_path):
    result = _run(block, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_check_many_reads_lines_as_check_file_does(tmp_path):
    lines = ["# customers\n", "Gone@Example.com\n", "\n", "   \n", "  ok@example.org \r\n"]
    with Suppressions.open(f"sqlite:///{tmp_path / 'b.db'}") as sup:
        sup.block(["gone@example.com"])
        verdicts = [(c.address, c.verdict) for c in sup.check_many(lines)]
    assert verdicts == [("Gone@Example.com", "blocked"), ("ok@example.org", "send")]


def test_parse_sources_with_workers_from_a_guarded_script(tmp_path):
    """What the README says of `parse_sources(items, jobs)`: from a script guarded by
    `if __name__ == "__main__":` it runs in worker processes and closes in order."""
    code = textwrap.dedent(
        """
        from contextlib import closing

        from bounced.inputs.batch import parse_sources
        from bounced.inputs.sources import iter_sources

        if __name__ == "__main__":
            with closing(parse_sources(iter_sources(["fixtures/dsn_samples"]), 2)) as results:
                kinds = [type(r).__name__ for r in results]
            print(kinds.count("Parsed"), kinds.count("Skipped"))
        """
    )
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    samples = Path(__file__).parent.parent / "fixtures" / "dsn_samples"
    messages, expectations = len(list(samples.glob("*.eml"))), len(list(samples.glob("*.json")))
    assert result.stdout == f"{messages} {expectations}\n"
