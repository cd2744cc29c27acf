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
            # All or none: a module's extension without the group library beside
            # it would not import.
            for path in self.get_outputs():
                Path(path).unlink(missing_ok=True)
            fall_back(exc)


def fall_back(exc: BaseException) -> None:
    print(f"bounced: the parser is not compiled ({exc}); pure Python", file=sys.stderr)


def ext_modules() -> list[Extension]:
    if os.environ.get("BOUNCED_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # a build without mypy (see [build-system] requires)
        return []
    # A build environment holds only the build requirements, not the dependencies:
    # what mypy cannot find is typed Any, and the modules it reads without compiling
    # them (bounced.db and the rest, which use SQLModel) are not judged. No config
    # file: pyproject's strict mode is for `mypy` itself, which checks every module
    # with every dependency installed.
    flags = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]
    try:
        return list(mypycify([*flags, *COMPILED], opt_level="3", group_name="bounced_dsn"))
    except (Exception, SystemExit) as exc:  # mypyc exits on what it cannot compile
        fall_back(exc)
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
