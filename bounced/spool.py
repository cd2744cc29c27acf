"""A directory spool: what the SMTP listener acknowledged, kept safe until it is ingested.

Messages arrive in batches (the listener's group commit: whatever several sessions
handed over while the previous write was on the disk). A batch is written as ONE
file to `tmp/`, fsynced, renamed into `new/` and the directory fsynced, all before
the listener answers 250 to any of its messages: once acknowledged, a message
survives a crash or a power cut. One file per batch, not per message, because the
fsyncs are the cost that matters (each one a journal commit): on a busy listener
one fsync covers many messages. A file left in `tmp/` was never acknowledged (the
clients saw no 250 and will retry), so it is simply dropped on start; only whole
files ever appear in `new/`, because a rename is atomic.

The worker claims a batch by renaming it into `cur/`, ingests its messages, and
then moves it to `done/` (or deletes it, per `retention`); a message that carried
a forged VERP token is also copied, alone, into `suspect/`. Anything in `cur/`
that no live process holds belonged to a process that died mid-ingest: on start
it goes back to `new/` and all of it is ingested again, which the store's unique
keys make harmless (a message never counts twice).

Several processes may work on one spool (the listener's own worker and a
`bounced worker --spool`, maybe on another host sharing the disk). The rename
into `cur/` is the claim: atomic, so exactly one of them gets a file. While a
process writes a file in `tmp/` or ingests one in `cur/` it holds an exclusive
flock on it, and `recover` leaves alone what is locked: one process starting
never drops a file another is writing, nor takes back one it is ingesting. A
lock dies with its process, so a killed process's files are recovered by the next
start.

A file is a sequence of records: a line of JSON (the envelope and the message's
size), then the message bytes exactly as received. A message's id is the file
name, a dash and its position (`<file>-0`). File names sort by arrival time.
One spool per listener process (any number of workers).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Envelope", "Spool", "Spooled"]

_DIRS = ("tmp", "new", "cur", "done", "suspect")


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
    head = envelope.to_dict() | {"size": len(raw)}
    return json.dumps(head).encode() + b"\n" + raw


def _records(name: str, data: bytes) -> list[Spooled]:
    """The messages of one file. A head without `size` owns the rest of the file."""
    items: list[Spooled] = []
    at = 0
    while at < len(data):
        eol = data.index(b"\n", at)
        head = json.loads(data[at:eol])
        end = eol + 1 + head.get("size", len(data) - eol - 1)
        items.append(Spooled(f"{name}-{len(items)}", Envelope.from_dict(head), data[eol + 1 : end]))
        at = end
    return items


def _lock(fd: int) -> bool:
    """Take the file's exclusive lock, without waiting: False when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def _unheld(path: Path) -> Iterator[int | None]:
    """The file, open and locked for the block; None when it is gone or another
    process holds it (writing or ingesting it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
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


class Spool:
    """The directories under `root` (created when missing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for name in _DIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        #: Files this object claimed, open and locked until finished or released.
        self._claimed: dict[str, int] = {}

    def dir(self, name: str) -> Path:
        return self.root / name

    def put(self, raw: bytes, envelope: Envelope) -> str:
        """Store one message durably; returns its id. Call before acknowledging it."""
        return self.put_many([(raw, envelope)])[0]

    def put_many(self, messages: list[tuple[bytes, Envelope]]) -> list[str]:
        """Store several messages durably at once (group commit): one file, one fsync,
        one rename, one directory fsync. Returns the messages' ids, in order."""
        now = datetime.now(UTC)
        name = f"{time.time_ns():020d}.{os.getpid()}.{secrets.token_hex(6)}"
        data = b"".join(
            _record(raw, env if env.received_at else replace(env, received_at=now))
            for raw, env in messages
        )
        self._place("new", name, data)
        _fsync_dir(self.dir("new"))
        return [f"{name}-{i}" for i in range(len(messages))]

    def _place(self, folder: str, name: str, data: bytes) -> None:
        """Write to tmp/, fsync, rename into `folder` (whose fsync is the caller's)."""
        with open(self.dir("tmp") / name, "xb") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # not a leftover while locked: see recover
            if os.fstat(out.fileno()).st_nlink == 0:  # dropped by a recover before the lock
                return self._place(folder, name, data)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            os.rename(self.dir("tmp") / name, self.dir(folder) / name)

    def recover(self) -> int:
        """On start: drop never-acknowledged partial files, put back what a dead worker
        had claimed; files a live process holds locked are left to it. Returns how many
        files went back to `new/`."""
        for leftover in self.dir("tmp").iterdir():
            with _unheld(leftover) as fd:
                if fd is not None:
                    leftover.unlink(missing_ok=True)
        back = 0
        for claimed in self.dir("cur").iterdir():
            with _unheld(claimed) as fd:
                if fd is not None and _move(claimed, self.dir("new") / claimed.name):
                    back += 1
        if back:
            _fsync_dir(self.dir("new"))
        return back

    def pending(self) -> list[str]:
        """Files waiting in `new/`, oldest first."""
        return sorted(p.name for p in self.dir("new").iterdir())

    def claim(self, name: str) -> list[Spooled] | None:
        """Take one file's messages for ingesting; None when another process has it
        (claimed it first, or is still writing it). The file stays locked until
        `finish` or `release`."""
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

    def claim_all(self) -> Iterator[Spooled]:
        """Claim every pending file; its messages, oldest first."""
        for name in self.pending():
            yield from self.claim(name) or ()

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
