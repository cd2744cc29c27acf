"""A cache of the compiled rules, so that a process starts without parsing TOML.

Reading and compiling the rules files takes about 10 ms, as long as the rest of
`bounced parse` of one message; unpickling the compiled rules about 2 ms. The
cache is one pickle file per set of sources in the user's cache directory
(``$XDG_CACHE_HOME/bounced``, else ``~/.cache/bounced``), holding the sources it
was compiled from: it is used only when they are byte for byte the ones read
now (the rules files, the compiling code, the Python version), so an edited
rules file is compiled and validated again. Anything that goes wrong (no home,
an unwritable or full disk, a damaged or foreign file) falls back to compiling:
the cache never changes what the rules are, only how fast they are had.
"""

from __future__ import annotations

import os
import pickle
import sys
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

__all__ = ["cache_dir", "cached"]

_T = TypeVar("_T")


def cache_dir() -> Path | None:
    """Where the cache lives; None when there is no home to put it in."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if base:
        return Path(base) / "bounced"
    try:
        return Path.home() / ".cache" / "bounced"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def cached(kind: type[_T], sources: Mapping[str, bytes], build: Callable[[], _T]) -> _T:
    """What `build()` makes of `sources`, from the cache when it holds the same
    sources (and an object of type `kind`), else built and stored for next time."""
    key = (sys.version, tuple(sorted(sources.items())))
    directory = cache_dir()
    if directory is None:
        return build()
    path = directory / f"rules-{zlib.crc32(repr(key).encode()):08x}.pickle"
    found = _read(path, key, kind)
    if found is not None:
        return found
    value = build()
    _write(path, (key, value))
    return value


def _read(path: Path, key: object, kind: type[_T]) -> _T | None:
    try:
        stored_key, value = pickle.loads(path.read_bytes())
    except Exception:  # missing, unreadable, damaged, or pickled by other code
        return None
    return value if stored_key == key and isinstance(value, kind) else None


def _write(path: Path, entry: object) -> None:
    """Written to a temporary file and renamed, so a reader never sees half a file."""
    import tempfile  # only when compiling: its imports are a twentieth of a start

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".rules-")
        try:
            with os.fdopen(fd, "wb") as out:
                pickle.dump(entry, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except (OSError, pickle.PicklingError):
        return  # a read-only or full disk: compile next time too
