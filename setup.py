"""Build hook: the parser (`bounced/dsn/`) is compiled to C extensions by mypyc.

Everything else is in pyproject.toml. The parser's modules are plain, fully typed
Python (mypy --strict checks them as it checks the rest); mypyc turns them into
extension modules that parse a message in about four fifths of the time, the way
black and mypy ship themselves. The `.py` files stay the source and the fallback:
with `BOUNCED_PURE_PYTHON=1` in the environment, or where no C compiler is found,
the package is installed as pure Python and behaves the same (the tests run on
either).

An editable install (`pip install -e .`) builds the extensions next to their
sources: after editing a parser module, run the install again (the test suite
refuses to run against an extension older than its source, see tests/conftest.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: The compiled modules: the parser package but its package file and its data model.
#: `report.py` (Report, Bounce and their enums) stays plain Python: the providers,
#: the sending log and the listener build those records too, and a compiled class
#: would check every field's type where the rest of the package never did.
PLAIN = frozenset({"__init__.py", "report.py"})
COMPILED = sorted(str(p) for p in Path("bounced/dsn").glob("*.py") if p.name not in PLAIN)


class OptionalBuildExt(build_ext):
    """Builds the extensions where a compiler works; pure Python where none does."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: the .py files still work
            self._fall_back(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fall_back(exc)

    @staticmethod
    def _fall_back(exc: Exception) -> None:
        print(f"bounced: the parser is not compiled ({exc}); pure Python", file=sys.stderr)


def ext_modules() -> list[Extension]:
    if os.environ.get("BOUNCED_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # a build without mypy (see [build-system] requires)
        return []
    # Imports outside the parser are not needed to compile it (a build environment
    # holds only the build requirements): what mypy cannot find is typed Any.
    return list(
        mypycify(["--ignore-missing-imports", *COMPILED], opt_level="3", group_name="bounced_dsn")
    )


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
