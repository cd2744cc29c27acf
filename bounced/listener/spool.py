"""A directory spool: what the SMTP listener acknowledged, kept safe until it is ingested.

Messages arrive in batches (the listener's group commit: whatever several sessions
handed over while the previous write was on the disk). The listener's one writer
appends each batch to an open segment file in `open/` and fdatasyncs it before
answering 250 to any of its messages: once acknowledged, a message survives a crash
or a power cut. An append to a file already there costs one flush; a new file per
batch cost two (the file's and its directory's), and the flushes are what matters
on a busy listener. A segment is sealed (renamed into `new/`, where the worker
finds it) when it is big or old enough, or when no message came for a moment; its
bytes are durable before the rename, so the rename needs no flush of its own.

A crash can leave a torn last record in an open segment: the batch being written,
whose clients saw no 250 and will retry. On start, each segment in `open/` is cut
back to its whole records and moved to `new/`; a file in `tmp/` (a suspect copy
being written) is dropped.

The worker claims a segment by renaming it into `cur/`, ingests its messages, and
then moves it to `done/` (or deletes it, per `retention`); a message that carried
a forged VERP token is also copied, alone, into `suspect/`. Anything still in
`cur/` that no live process holds belonged to a process that died mid-ingest: on
start it goes back to `new/` and all of it is ingested again, which the store's
unique keys make harmless (a message never counts twice).

Several processes may work on one spool (the listener's own worker and a
`bounced worker --spool`, maybe on another host sharing the disk). The rename
into `cur/` is the claim: atomic, so exactly one of them gets a file. While a
process appends to a segment in `open/`, writes a file in `tmp/` or ingests one in
`cur/`, it holds an exclusive flock on it, and `recover` leaves alone what is
locked: one process starting never cuts or seals the segment another is writing,
drops a file in writing, nor takes back one being ingested. A lock dies with its
process, so a killed process's files are recovered by the next start.

A file is a sequence of records: a line of JSON (the envelope, the message's size
and CRC-32), then the message bytes exactly as received. A message's id is the
file name, a dash and its position (`<file>-0`). File names sort by creation time.
One listener process writes a spool (one thread of it); any number of workers read it.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Envelope", "Spool", "Spooled"]

_DIRS = ("tmp", "open", "new", "cur", "done", "suspect")
#: An open segment is sealed once it holds this many bytes...
SEGMENT_BYTES = 4 * 1024 * 1024
#: ...or is this many seconds old, so the worker gets to it during a long burst.
SEGMENT_SECONDS = 1.0
# Appends change the file's size, which fdatasync flushes too; the inode's times it leaves.
_datasync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What arrived with the bytes: the SMTP envelope and who sent it, when."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    client: str = ""
    helo: str = ""
    received_at: datetime | None = None

    def to_dict(self) -> dict:
        return {
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "client": self.client,
            "helo": self.helo,
            "received_at": self.received_at.isoformat() if self.received_at else "",
        }

    @classmethod
    def from_dict(cls, data: dict) -> Envelope:
        when = data.get("received_at")
        return cls(
            data.get("mail_from", ""),
            tuple(data.get("rcpt_tos", ())),
            data.get("client", ""),
            data.get("helo", ""),
            datetime.fromisoformat(when) if when else None,
        )


@dataclass(frozen=True, slots=True)
class Spooled:
    """One message of a claimed file: its id (`<file>-<position>`), envelope and bytes."""

    id: str
    envelope: Envelope
    raw: bytes


def _record(raw: bytes, envelope: Envelope) -> bytes:
    head = envelope.to_dict() | {"size": len(raw), "crc32": zlib.crc32(raw)}
    return json.dumps(head).encode() + b"\n" + raw


def _whole(data: bytes) -> tuple[list[tuple[dict, bytes]], int]:
    """The whole records at the start of `data` and where the last one ends: a record
    cut short, or whose bytes fail their CRC (a torn append), ends the scan. A head
    without `size` (the first spool format, one message a file) owns the rest."""
    found: list[tuple[dict, bytes]] = []
    at = 0
    while (eol := data.find(b"\n", at)) >= 0:
        try:
            head = json.loads(data[at:eol])
        except ValueError:
            break
        if not isinstance(head, dict):
            break
        end = eol + 1 + head.get("size", len(data) - eol - 1)
        raw = data[eol + 1 : end]
        if end > len(data) or ("crc32" in head and head["crc32"] != zlib.crc32(raw)):
            break
        found.append((head, raw))
        at = end
    return found, at


def _records(name: str, data: bytes) -> list[Spooled]:
    """The messages of one sealed file, which is whole (torn tails are cut on start)."""
    found, end = _whole(data)
    if end != len(data):
        raise ValueError(f"spool file {name} is damaged at byte {end}")
    return [
        Spooled(f"{name}-{i}", Envelope.from_dict(head), raw) for i, (head, raw) in enumerate(found)
    ]


def _lock(fd: int) -> bool:
    """Take the file's exclusive lock, without waiting: False when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _created_locked(path: Path, flags: int) -> int:
    """Create `path` and lock it. Safe against a `recover` elsewhere that saw the
    new, unlocked file and removed it in between: then it is created again."""
    while True:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return fd
        os.close(fd)


@contextmanager
def _unheld(path: Path, flags: int = os.O_RDONLY) -> Iterator[int | None]:
    """The file, open and locked for the block; None when it is gone or another
    process holds it (writing or ingesting it)."""
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        yield None
        return
    try:
        yield fd if _lock(fd) else None
    finally:
        os.close(fd)


def _move(source: Path, target: Path) -> bool:
    """Rename; False when the source is gone (another process moved it first)."""
    try:
        os.rename(source, target)
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass
class _Segment:
    """The open segment: where the next batch goes, and how much of it is durable."""

    name: str
    fd: int
    size: int = 0
    count: int = 0
    opened: float = field(default_factory=time.monotonic)


class Spool:
    """The directories under `root` (created when missing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for name in _DIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._segment: _Segment | None = None
        #: Files this object claimed, open and locked until finished or released.
        self._claimed: dict[str, int] = {}

    def dir(self, name: str) -> Path:
        return self.root / name

    def append(self, messages: list[tuple[bytes, Envelope]]) -> list[str]:
        """Store several messages durably at once (group commit): appended to the open
        segment (created when there is none), one flush. Returns the messages' ids, in
        order. After an error the next batch goes to a new segment."""
        segment = self._segment or self._open()
        now = datetime.now(UTC)
        data = b"".join(
            _record(raw, env if env.received_at else replace(env, received_at=now))
            for raw, env in messages
        )
        try:
            _write_all(segment.fd, data)
            _datasync(segment.fd)
        except OSError:
            self._abandon(segment)
            raise
        first = segment.count
        segment.size += len(data)
        segment.count += len(messages)
        return [f"{segment.name}-{i}" for i in range(first, segment.count)]

    def _abandon(self, segment: _Segment) -> None:
        """After a failed append: cut the segment back to what was durable and seal it;
        when even that fails, leave it in `open/` for the next start to cut (what it
        holds waits until then, never lost)."""
        try:
            os.ftruncate(segment.fd, segment.size)
        except OSError:
            self._segment = None
            os.close(segment.fd)
            return
        self.seal()

    def _open(self) -> _Segment:
        name = f"{time.time_ns():020d}.{os.getpid()}.{secrets.token_hex(6)}"
        fd = _created_locked(self.dir("open") / name, os.O_WRONLY | os.O_APPEND)
        try:
            _fsync_dir(self.dir("open"))  # the name itself durable before any 250
        except OSError:
            os.close(fd)
            raise
        self._segment = _Segment(name, fd)
        return self._segment

    @property
    def ripe(self) -> bool:
        """Is the open segment big or old enough to be sealed now."""
        segment = self._segment
        return segment is not None and (
            segment.size >= SEGMENT_BYTES or time.monotonic() - segment.opened >= SEGMENT_SECONDS
        )

    @property
    def unsealed(self) -> bool:
        """Is there an open segment."""
        return self._segment is not None

    def seal(self) -> bool:
        """Close the open segment and hand it to the worker (into `new/`); False when
        there was none. Its bytes are durable already: were the rename lost in a crash,
        the start would move it again."""
        segment, self._segment = self._segment, None
        if segment is None:
            return False
        try:  # moved while still locked, so no recover elsewhere takes it meanwhile
            if segment.count:
                os.rename(self.dir("open") / segment.name, self.dir("new") / segment.name)
            else:
                (self.dir("open") / segment.name).unlink()
        finally:
            os.close(segment.fd)
        return True

    def _place(self, folder: str, name: str, data: bytes) -> None:
        """Write to tmp/, fsync, rename into `folder` (whose fsync is the caller's)."""
        fd = _created_locked(self.dir("tmp") / name, os.O_WRONLY)
        try:
            _write_all(fd, data)
            os.fsync(fd)
            os.rename(self.dir("tmp") / name, self.dir(folder) / name)
        finally:
            os.close(fd)

    def recover(self) -> int:
        """On start: drop partial suspect copies, cut open segments back to their whole
        records and seal them, put back what a dead worker had claimed; what a live
        process holds locked is left to it. Returns how many files went to `new/`."""
        for leftover in self.dir("tmp").iterdir():
            with _unheld(leftover) as fd:
                if fd is not None:
                    leftover.unlink(missing_ok=True)
        back = 0
        for segment in self.dir("open").iterdir():
            with _unheld(segment, os.O_RDWR) as fd:
                if fd is not None and self._reclaim(segment, fd):
                    back += 1
        for claimed in self.dir("cur").iterdir():
            with _unheld(claimed) as fd:
                if fd is not None and _move(claimed, self.dir("new") / claimed.name):
                    back += 1
        if back:
            _fsync_dir(self.dir("new"))
        return back

    def _reclaim(self, segment: Path, fd: int) -> bool:
        """A dead writer's segment, locked: cut back to its whole records and sealed
        (True), or removed when it holds none."""
        with open(fd, "rb", closefd=False) as data:
            _, end = _whole(data.read())
        if not end:
            segment.unlink(missing_ok=True)
            return False
        if end < os.fstat(fd).st_size:
            os.ftruncate(fd, end)
            os.fsync(fd)
        return _move(segment, self.dir("new") / segment.name)

    def pending(self) -> list[str]:
        """Files waiting in `new/`, oldest first."""
        return sorted(p.name for p in self.dir("new").iterdir())

    def waiting(self) -> int:
        """Messages spooled and not yet ingested (in `new/` and `cur/`), for the metrics."""
        count = 0
        for folder in ("new", "cur"):
            for path in self.dir(folder).iterdir():
                try:
                    count += len(_whole(path.read_bytes())[0])
                except FileNotFoundError:  # ingested meanwhile
                    continue
        return count

    def claim(self, name: str) -> list[Spooled] | None:
        """Take one file's messages for ingesting; None when another process has it.
        The file stays locked until `finish` or `release`."""
        try:
            fd = os.open(self.dir("new") / name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        if not (_lock(fd) and _move(self.dir("new") / name, self.dir("cur") / name)):
            os.close(fd)
            return None
        self._claimed[name] = fd
        with open(fd, "rb", closefd=False) as data:
            return _records(name, data.read())

    def release(self, name: str) -> None:
        """Give a claimed file back (it could not be ingested now)."""
        os.rename(self.dir("cur") / name, self.dir("new") / name)
        self._unlock(name)

    def _unlock(self, name: str) -> None:
        fd = self._claimed.pop(name, None)
        if fd is not None:
            os.close(fd)

    def finish(self, name: str, *, keep: bool, suspects: Iterable[Spooled] = ()) -> None:
        """Done with a claimed file: each of `suspects` is copied alone into `suspect/`
        (always kept, each file named by the message id), then the file goes to `done/`
        or away."""
        copied = False
        for item in suspects:
            if not (self.dir("suspect") / item.id).exists():  # not kept before a crash
                self._place("suspect", item.id, _record(item.raw, item.envelope))
                copied = True
        if copied:
            _fsync_dir(self.dir("suspect"))
        cur = self.dir("cur") / name
        if keep:
            os.rename(cur, self.dir("done") / name)
        else:
            cur.unlink()
        self._unlock(name)

    def read(self, folder: str, message_id: str) -> Spooled:
        """A message in any folder (`done`, `suspect`, ...), for looking at it."""
        alone = self.dir(folder) / message_id
        if alone.exists():
            return replace(_records(message_id, alone.read_bytes())[0], id=message_id)
        name, _, position = message_id.rpartition("-")
        return _records(name, (self.dir(folder) / name).read_bytes())[int(position)]
