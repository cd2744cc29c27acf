"""The compiled parser (setup.py builds `bounced/dsn/` with mypyc) gives exactly the
rows of its Python source, which is what an install without a C compiler (or with
BOUNCED_PURE_PYTHON=1) runs. The rest of the suite tests whichever is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bounced

PACKAGE = Path(bounced.__file__).resolve().parent
SAMPLES = PACKAGE.parent / "fixtures" / "dsn_samples"
CORPUS = PACKAGE.parent.parent / "shared" / "corpus" / "sisimai" / "eml"

#: Parses its arguments and says on stderr which file the MIME reader came from.
_PARSE = (
    "import sys; import bounced.dsn.mime as m; print(m.__file__, file=sys.stderr);"
    " from bounced.cli import main; sys.argv[0] = 'bounced'; main()"
)


def _parse(cwd: Path, pythonpath: Path | None, *paths: Path) -> tuple[str, bytes]:
    """`python -c` looks in its working directory first, then in PYTHONPATH."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, "parse", "--format", "ndjson", *map(str, paths)],
        capture_output=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.stderr.decode().splitlines()[0], result.stdout


@pytest.mark.skipif(
    not any(PACKAGE.joinpath("dsn").glob("*.so")),
    reason="the parser is not compiled in this install (pure Python): nothing to compare",
)
def test_compiled_parser_gives_the_rows_of_its_source(tmp_path):
    inputs = [SAMPLES, *([CORPUS] if CORPUS.is_dir() else [])]

    compiled_from, compiled = _parse(tmp_path, None, *inputs)
    shutil.copytree(PACKAGE, tmp_path / "source" / "bounced", ignore=shutil.ignore_patterns("*.so"))
    source_from, source = _parse(tmp_path, tmp_path / "source", *inputs)

    assert compiled_from.endswith(".so"), compiled_from
    assert source_from == str(tmp_path / "source" / "bounced" / "dsn" / "mime.py")
    assert compiled.count(b"\n") > 300
    assert compiled == source
