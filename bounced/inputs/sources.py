"""Input sources: turn paths given on a command line into a stream of raw messages.

Everything is lazy: a directory tree is walked one entry at a time and an mbox is
split while it is read, so memory holds one message at a time however large the
input. A path that cannot be read becomes an `Unreadable` item in the same stream
instead of an exception, so one bad file never stops the rest and the caller
decides how to report it (and the order of messages and errors stays the input's).
`find_sources` is the same walk with regular files of up to 256 KiB left unread
(`File`), so that the process that parses one reads it (`read_files`).

Detection is by content and layout, never by file name:
- a file whose first bytes are ``From `` is an mbox; its entries are named
  ``PATH#N`` (N from 1), everything else is one message named ``PATH``;
- a directory with ``cur/``, ``new/`` and ``tmp/`` is a Maildir: the messages in
  ``cur/`` and ``new/`` (not ``tmp/``, which holds deliveries still being written)
  and its Maildir++ sub-folders (``.Name/``), each named by its file path;
- any other directory is walked recursively, in name order;
- ``-`` is standard input (one message, or an mbox);
- a file that is clearly no mail (a JSON document, such as the expectations kept
  beside sample messages) is a `Skipped` item, counted, not parsed.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "STDIN",
    "File",
    "Found",
    "Message",
    "Skipped",
    "Source",
    "Unreadable",
    "find_sources",
    "input_size",
    "iter_sources",
    "not_mail",
    "read_files",
    "split_mbox",
]

#: The path that means standard input.
STDIN = "-"

_MBOX_MAGIC = b"From "
_MAILDIR_PARTS = ("cur", "new", "tmp")
#: A From_ separator line as mbox writers put it: ``From <sender> <asctime date>``.
#: Requiring the weekday of the date keeps an unescaped body line that merely
#: starts with "From " (in a file that was never a real mbox) inside its message.
_FROM_LINE = re.compile(rb"From \S* +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b")
#: mboxrd quoting: a body line ``>From `` (or ``>>From `` ...) lost one ``>`` when written.
_QUOTED_FROM = re.compile(rb">+From ")


@dataclass(frozen=True, slots=True)
class Message:
    """One message's raw bytes and the name it is reported under."""

    name: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A path (or part of one) that could not be read, and why, in words for a person."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that is clearly not mail (`not_mail` says why): left out, and counted;
    its `size` still counts towards a progress bar's total."""

    name: str
    reason: str
    size: int = 0


@dataclass(frozen=True, slots=True)
class File:
    """A regular file found but not read yet (`find_sources`): `read_files` reads it
    where it is wanted, so with several jobs each worker reads its own files rather
    than the command reading them all and sending the bytes over. Only files up to
    256 KiB (_DEFERRED) are left unread: a larger one may be an mbox of many
    messages, which the finder splits so that they can be shared out."""

    name: str
    size: int


Source = Message | Unreadable | Skipped
#: What `find_sources` yields: sources, and files still to be read.
Found = Source | File
#: (device, inode) of the directories a walk has entered.
_Seen = set[tuple[int, int]]


def iter_sources(paths: Iterable[str], stdin: BinaryIO | None = None) -> Iterator[Source]:
    """Yield every message found under `paths`, in order, and an `Unreadable` for each failure.

    `stdin` is the stream read for ``-`` (default: the process's standard input).
    """
    return read_files(find_sources(paths, stdin))


def find_sources(paths: Iterable[str], stdin: BinaryIO | None = None) -> Iterator[Found]:
    """`iter_sources` without reading regular files: each is a `File` in its place.

    Standard input and whatever else is named that is no regular file (a pipe) are
    read here, as `iter_sources` would: only this process can read them.
    """
    for path in paths:
        if path == STDIN:
            yield from _read_stream(STDIN, stdin if stdin is not None else sys.stdin.buffer)
            continue
        try:
            info = os.stat(path)
        except OSError:
            yield from _read_file(path)  # which says why
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(path, set())
        else:
            yield from _found_file(path, info.st_mode, info.st_size)


def _found_file(path: str, mode: int, size: int) -> Iterator[Found]:
    """A regular file small enough to be one message (or a short mbox) as a `File`;
    anything else read here."""
    if stat.S_ISREG(mode) and size <= _DEFERRED:
        yield File(path, size)
    else:
        yield from _read_file(path)


def read_files(found: Iterable[Found]) -> Iterator[Source]:
    """`found` with each `File` read in its turn: one message, an mbox's entries, or
    why it could not be read."""
    for item in found:
        if isinstance(item, File):
            yield from _read_file(item.name)
        else:
            yield item


def input_size(paths: Iterable[str], limit: int = 100_000) -> int | None:
    """The bytes `iter_sources(paths)` will read, for a progress bar's total; None when
    that is not cheap to know: standard input, or trees of more than `limit` entries
    (counting them would be a walk as long as the work)."""
    total, entries = 0, 0
    pending = list(paths)
    while pending:
        path = pending.pop()
        if path == STDIN:
            return None
        entries += 1
        if entries > limit:
            return None
        try:
            info = os.stat(path)
            if stat.S_ISDIR(info.st_mode):
                with os.scandir(path) as scan:
                    pending.extend(entry.path for entry in scan)
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
        except OSError:
            continue  # reported by iter_sources when it gets there
    return total


def split_mbox(name: str, stream: BinaryIO) -> Iterator[Message]:
    """Split an mbox stream into its messages, named ``name#1``, ``name#2``, ...

    The From_ line and the blank line that ends each entry belong to the mbox format,
    not to the message, so both are dropped; mboxrd ``>From`` quoting is undone. A
    line starting with ``From `` separates entries only when it has the shape of a
    From_ line (see `_FROM_LINE`); otherwise it stays in the current message.
    `stream` is positioned at or inside the first From_ line (the caller has read
    some of it to detect the mbox). Read errors propagate as `OSError`.
    """
    rest = stream.readline()  # the rest of the first From_ line
    source: Iterable[bytes] = stream
    if b"\r" in rest.rstrip(b"\r\n"):
        # Classic Mac line endings (CR only): the "line" just read is the whole mbox.
        source = rest.replace(b"\r", b"\n").splitlines(keepends=True)[1:]
    lines: list[bytes] = []
    number = 0
    for line in source:
        if line.startswith(_MBOX_MAGIC) and _FROM_LINE.match(line):
            number += 1
            yield Message(f"{name}#{number}", _entry(lines))
            lines = []
        elif line.startswith(b">") and _QUOTED_FROM.match(line):
            lines.append(line[1:])
        else:
            lines.append(line)
    yield Message(f"{name}#{number + 1}", _entry(lines))


def _entry(lines: list[bytes]) -> bytes:
    """One mbox entry's bytes: its lines without the blank line that ended it."""
    if lines and lines[-1] in (b"\n", b"\r\n"):
        del lines[-1]
    return b"".join(lines)


#: Files up to this size (every real bounce) are read whole by one system call;
#: larger ones, such as a year's mbox, are streamed.
_READ_WHOLE = 4 << 20
#: Files up to this size are left to the process that parses them (see `File`).
_DEFERRED = 256 << 10


def _read_file(path: str) -> Iterator[Source]:
    """A message file in one read; an mbox split from memory, or line by line from a
    buffer when the file is large."""
    try:
        data = _read_whole(path)
    except OSError as exc:
        yield Unreadable(path, _why(exc))
        return
    if data is None:
        yield from _read_large(path)
    elif data.startswith(_MBOX_MAGIC):
        stream = io.BytesIO(data)
        stream.seek(len(_MBOX_MAGIC))
        yield from split_mbox(path, stream)
    else:
        yield _message(path, data)


def _read_whole(path: str) -> bytes | None:
    """The file's bytes (open, fstat, read, close: no file object), or None when it
    is larger than _READ_WHOLE."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size > _READ_WHOLE:
            return None
        data = os.read(fd, size + 1)
        if len(data) == size:
            return data
        # A short read (a network filesystem), a file that grew, or a pipe (size 0).
        parts = [data]
        while chunk := os.read(fd, 1 << 16):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def _read_large(path: str) -> Iterator[Source]:
    """A file too large to read whole: a message, or an mbox split line by line."""
    try:
        with open(path, "rb") as stream:
            yield from _read_stream(path, stream)
    except OSError as exc:  # opening it (reading errors are _read_stream's)
        yield Unreadable(path, _why(exc))


def _read_stream(name: str, stream: BinaryIO, read: bytes | None = None) -> Iterator[Source]:
    """One message, or an mbox's entries when the stream starts like one (`read`:
    its first bytes, when the caller has read them already).

    An error part-way through an mbox keeps the entries already read.
    """
    try:
        head = read if read is not None else stream.read(len(_MBOX_MAGIC))
        if head == _MBOX_MAGIC:
            yield from split_mbox(name, stream)
            return
        yield _message(name, head + stream.read())
    except OSError as exc:
        yield Unreadable(name, _why(exc))


def _message(name: str, raw: bytes) -> Message | Skipped:
    why = not_mail(raw)
    return Message(name, raw) if why is None else Skipped(name, why, len(raw))


def not_mail(raw: bytes) -> str | None:
    """Why `raw` is clearly not a message, or None. Only what no mail can be: a whole
    JSON document (a message starts with header fields; the parser reads JSON
    notifications only inside a message). Anything doubtful is left to the parser,
    which keeps what it cannot read: a bounce is never dropped here."""
    first = raw[:1]  # a header's first letter, most often: no copy of the message
    if first not in (b"{", b"[") and not first.isspace():
        return None
    if raw.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        json.loads(raw)
    except ValueError:
        return None
    return "a JSON document, not a message"


def _walk(path: str, seen: _Seen) -> Iterator[Found]:
    """Every message file below directory `path` (a `File` each), entries in name order.

    `seen` holds the (device, inode) of directories already walked, so a symbolic
    link that points back up the tree is followed once, not forever.
    """
    try:
        info = os.stat(path)
        if (info.st_dev, info.st_ino) in seen:
            return
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(path) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        yield Unreadable(path, _why(exc))
        return
    names = {entry.name for entry in entries if _is_dir(entry)}
    if names.issuperset(_MAILDIR_PARTS):
        yield from _walk_maildir(path, entries, seen)
        return
    ahead = (entry.path for entry in entries if entry.is_file(follow_symlinks=False))
    for file in itertools.islice(ahead, _READ_AHEAD):
        _will_need(file)
    for entry in entries:
        yield from _walk_entry(entry, seen)
        if entry.is_file(follow_symlinks=False) and (later := next(ahead, None)):
            _will_need(later)


#: Files of a directory asked ahead of their turn: the disk reads the next ones while
#: this one is parsed (a cold tree, or a page cache the system keeps small).
_READ_AHEAD = 16


def _will_need(path: str) -> None:
    """Ask the kernel to read a regular file into the page cache, without waiting."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return  # said when its turn comes
    try:
        with contextlib.suppress(OSError):  # a filesystem that does not read ahead
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)


def _walk_maildir(path: str, entries: list[os.DirEntry[str]], seen: _Seen) -> Iterator[Found]:
    """A Maildir's messages: ``cur/`` then ``new/``, then its Maildir++ sub-folders.

    Other files at a Maildir's top (index and uid lists of IMAP servers) are not mail.
    """
    for part in ("cur", "new"):
        yield from _walk(os.path.join(path, part), seen)
    for entry in entries:
        if entry.name.startswith(".") and _is_dir(entry):
            yield from _walk(entry.path, seen)


def _walk_entry(entry: os.DirEntry[str], seen: _Seen) -> Iterator[Found]:
    try:
        # The listing's file type where it is known (no system call); a symbolic
        # link is followed by a stat, which fails for a dangling one. A regular
        # file's size takes a stat (a symbolic link's is the one made already).
        mode = entry.stat().st_mode if entry.is_symlink() else _listed_mode(entry)
        size = entry.stat().st_size if stat.S_ISREG(mode) else 0
    except OSError as exc:  # a dangling symbolic link, or a file gone since the listing
        yield Unreadable(entry.path, _why(exc))
        return
    if stat.S_ISDIR(mode):
        yield from _walk(entry.path, seen)
    elif stat.S_ISREG(mode):
        yield from _found_file(entry.path, mode, size)
    # Sockets, pipes and devices inside a tree are not stored mail: opening a pipe
    # would block. (A pipe named on the command line is read: see find_sources.)


def _listed_mode(entry: os.DirEntry[str]) -> int:
    """The type bits of an entry that is no symbolic link, from the listing when it
    says (a regular file or a directory), else from a stat."""
    if entry.is_file(follow_symlinks=False):
        return stat.S_IFREG
    if entry.is_dir(follow_symlinks=False):
        return stat.S_IFDIR
    return entry.stat(follow_symlinks=False).st_mode


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _why(exc: OSError) -> str:
    """The reason an OS error gives, without the path (the caller prints that)."""
    return exc.strerror or str(exc)
