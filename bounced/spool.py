"""A directory spool: what the SMTP listener acknowledged, kept safe until it is ingested.

A message is written to `tmp/`, fsynced, renamed into `new/` and the directory
fsynced, all before the listener answers 250: once acknowledged, it survives a
crash or a power cut. A file in `tmp/` was never acknowledged (the client saw
no 250 and will retry), so it is simply dropped on start; only whole files
ever appear in `new/`, because a rename is atomic.

The worker claims a message by renaming it into `cur/`, ingests it, and then
moves it to `done/` (or deletes it, per `retention`), or to `suspect/` when it
carried a forged VERP token. Anything still in `cur/` on start belonged to a
process that died mid-ingest: it goes back to `new/` and is ingested again,
which the store's unique keys make harmless (a message never counts twice).

One file per message: a line of JSON (the envelope), then the message bytes
exactly as received. Names sort by arrival time. One spool per listener process.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
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

    def to_json(self) -> str:
        when = self.received_at.isoformat() if self.received_at else ""
        return json.dumps(
            {
                "mail_from": self.mail_from,
                "rcpt_tos": list(self.rcpt_tos),
                "client": self.client,
                "helo": self.helo,
                "received_at": when,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        data = json.loads(text)
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
    """One claimed message: its id (the file name), envelope and bytes."""

    id: str
    envelope: Envelope
    raw: bytes


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

    def dir(self, name: str) -> Path:
        return self.root / name

    def put(self, raw: bytes, envelope: Envelope) -> str:
        """Store one message durably; returns its id. Call before acknowledging it."""
        return self.put_many([(raw, envelope)])[0]

    def put_many(self, messages: list[tuple[bytes, Envelope]]) -> list[str]:
        """Store several messages durably at once (group commit): each file is written and
        fsynced, then all are renamed and the directory is fsynced once. Most file systems
        commit their journal for the first fsync, so the others cost little."""
        now = datetime.now(UTC)
        names = []
        for raw, envelope in messages:
            if envelope.received_at is None:
                envelope = replace(envelope, received_at=now)
            spool_id = f"{time.time_ns():020d}.{os.getpid()}.{secrets.token_hex(6)}"
            with open(self.dir("tmp") / spool_id, "xb") as out:
                out.write(envelope.to_json().encode() + b"\n")
                out.write(raw)
                out.flush()
                os.fsync(out.fileno())
            names.append(spool_id)
        for spool_id in names:
            os.rename(self.dir("tmp") / spool_id, self.dir("new") / spool_id)
        _fsync_dir(self.dir("new"))
        return names

    def recover(self) -> int:
        """On start: drop never-acknowledged partial files, put back what a dead worker
        had claimed. Returns how many messages went back to `new/`."""
        for leftover in self.dir("tmp").iterdir():
            leftover.unlink(missing_ok=True)
        back = 0
        for claimed in self.dir("cur").iterdir():
            os.rename(claimed, self.dir("new") / claimed.name)
            back += 1
        if back:
            _fsync_dir(self.dir("new"))
        return back

    def pending(self) -> list[str]:
        """Ids waiting in `new/`, oldest first."""
        return sorted(p.name for p in self.dir("new").iterdir())

    def claim(self, spool_id: str) -> Spooled | None:
        """Take one message for ingesting; None when another claimer was faster."""
        cur = self.dir("cur") / spool_id
        try:
            os.rename(self.dir("new") / spool_id, cur)
        except FileNotFoundError:
            return None
        return _load(cur)

    def claim_all(self) -> Iterator[Spooled]:
        """Claim every pending message, oldest first."""
        for spool_id in self.pending():
            item = self.claim(spool_id)
            if item is not None:
                yield item

    def release(self, spool_id: str) -> None:
        """Give a claimed message back (it could not be ingested now)."""
        os.rename(self.dir("cur") / spool_id, self.dir("new") / spool_id)

    def finish(self, spool_id: str, *, keep: bool, suspect: bool = False) -> None:
        """Done with a claimed message: into `suspect/` (always kept), `done/`, or gone."""
        cur = self.dir("cur") / spool_id
        if suspect:
            os.rename(cur, self.dir("suspect") / spool_id)
        elif keep:
            os.rename(cur, self.dir("done") / spool_id)
        else:
            cur.unlink()

    def read(self, folder: str, spool_id: str) -> Spooled:
        """A message in any folder (`done`, `suspect`, ...), for looking at it."""
        return _load(self.dir(folder) / spool_id)


def _load(path: Path) -> Spooled:
    head, _, raw = path.read_bytes().partition(b"\n")
    return Spooled(path.name, Envelope.from_json(head.decode()), raw)
