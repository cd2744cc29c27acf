"""The spool worker: claims what the SMTP listener spooled and ingests it into the store.

It runs as a thread of `bounced serve` (the default), or in another process:
`bounced worker --spool`, with the listener's own worker off (`[listener] worker
= false`) or beside it; the spool may be on a disk several hosts share. Each file
is claimed by exactly one worker (see bounced.listener.spool), and ingesting a message
again after a crash is harmless (see bounced.listener.intake), so any number of workers
may drain one spool.

`busy` says whether SMTP sessions are open in this process: parsing holds the GIL
the SMTP side needs, so while they are the worker pauses between messages
(accepting comes first, ingesting catches up), unless the backlog grows past
BACKLOG files. A worker in its own process has no sessions to yield to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bounced.config import Settings
from bounced.listener.inbox import Inbox
from bounced.listener.intake import Intake, intake
from bounced.listener.spool import Spool, Spooled

__all__ = [
    "BACKLOG",
    "POLL",
    "YIELD",
    "SpoolPass",
    "SpoolWorker",
]

#: The worker looks at the spool at least this often, even without a wake-up.
POLL = 1.0
#: While sessions are open the worker sleeps this long between messages...
YIELD = 0.2
#: ...unless this many sealed spool segments wait (under a steady load each holds up to
#: a second of arrivals, see spool.SEGMENT_SECONDS): the spool stays bounded.
BACKLOG = 10


@dataclass
class SpoolPass:
    """What one pass over the spool did."""

    files: int = 0
    messages: int = 0
    #: The store failed: what was left stays in the spool for the next pass.
    failed: bool = False

    def line(self) -> str:
        return f"spool: {self.messages} messages ingested from {self.files} files"


class SpoolWorker:
    """Ingests one spool into one store, logging each message as a structured event."""

    def __init__(
        self,
        spool: Spool,
        inbox: Inbox,
        settings: Settings,
        log: Callable[..., Any],
        *,
        busy: Callable[[], bool] = lambda: False,
        wake: threading.Event | None = None,
    ) -> None:
        self.spool = spool
        self.inbox = inbox
        self.settings = settings
        self.log = log
        self.busy = busy
        #: Set by whoever adds to the spool, so the worker need not wait for POLL.
        self.wake = wake or threading.Event()
        self._stopping = threading.Event()
        self._halting = threading.Event()

    def run(self) -> None:
        """Ingest spooled messages until stopped; see `stop` for what happens then."""
        while True:
            self.wake.wait(POLL)
            self.wake.clear()
            # Read before the pass: a pass begun after the SMTP side stopped sees every
            # message there will be, so it is the last one needed.
            last = self._stopping.is_set()
            self.run_once()
            if last or self._halting.is_set():
                return

    def run_once(self) -> SpoolPass:
        """One pass over the files waiting now (`bounced worker --spool --once`)."""
        done = SpoolPass()
        pending = self.spool.pending()
        for name in pending:
            if self._halting.is_set():
                break
            items = self.spool.claim(name)
            if items is None:
                continue  # another worker has it
            if not self._file(name, items, len(pending) < BACKLOG):
                done.failed = True
                break  # the store failed: what is left stays in new/ for next time
            done.files += 1
            done.messages += len(items)
        return done

    def stop(self, *, drain: bool = True) -> None:
        """End `run`: with `drain` after one last pass over what is spooled (the listener,
        once its SMTP side has stopped); without, after the file in hand (a worker of its
        own: the rest stays in new/ for the next start or another worker)."""
        if not drain:
            self._halting.set()
        self._stopping.set()
        self.wake.set()

    def _file(self, name: str, items: list[Spooled], pause: bool) -> bool:
        """Ingest one claimed file; False when the store failed (the file goes back to
        new/, and its messages ingested so far are ingested again later: harmless)."""
        suspects = []
        for item in items:
            if pause and self.busy() and not self._stopping.is_set():
                time.sleep(YIELD)
            done = self._one(item)
            if done is None:
                self.spool.release(name)
                time.sleep(POLL)
                return False
            if done.suspect:
                suspects.append(item)
        keep = self.settings.listener.retention == "archive"
        self.spool.finish(name, keep=keep, suspects=suspects)
        return True

    def _one(self, item: Spooled) -> Intake | None:
        """Ingest one message and log it; None when the store failed."""
        try:
            done = intake(item, self.inbox, self.settings.verp)
        except Exception as exc:  # a store outage: leave it for the next pass, never lose it
            self.log("ingest_failed", id=item.id, error=f"{type(exc).__name__}: {exc}")
            return None
        token = done.token
        if token is not None and not token.valid:
            self.log("verp_invalid", id=item.id, reason=token.reason, rcpt=item.envelope.rcpt_tos)
        self.log(
            "ingested",
            id=item.id,
            route=str(done.route),
            outcome=done.outcome,
            rows=done.rows,
            verp=None if token is None else token.valid,
            new_blocks=list(done.new_blocks),
            detail=done.detail,
        )
        return done
