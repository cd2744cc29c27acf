"""The scheduler loop: read new bounces, close quiet plans, escalate exhausted ones, and
dispatch due retries. `run_once` is one pass (`bounced worker --once`, cron); `run`
repeats it until stopped.

Several workers may share one PostgreSQL store: each claims due retries with
`FOR UPDATE SKIP LOCKED`, so each retry is dispatched by exactly one of them. The
clock and the sleep are injected, so tests run days of schedule in milliseconds.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bounced.errors import DatabaseUnavailable, DispatchError
from bounced.sending.dispatch import Dispatcher
from bounced.sending.log import Handover, SendingLog

__all__ = ["Pass", "Worker", "worker_name"]


def worker_name() -> str:
    """host:pid, as the dispatch log names who sent what."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Pass:
    """What one pass did."""

    events: int = 0
    succeeded: int = 0
    escalated: int = 0
    dispatched: int = 0
    failed: int = 0
    pruned: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(
            self.events or self.succeeded or self.escalated or self.dispatched or self.pruned
        )

    def line(self) -> str:
        return (
            f"bounces read {self.events}, plans succeeded {self.succeeded}, "
            f"escalated {self.escalated}, dispatched {self.dispatched}, "
            f"dispatch failures {self.failed}, old events pruned {self.pruned}"
        )


class Worker:
    """One scheduler: a sending log, a dispatcher (None = pull), a name."""

    def __init__(
        self,
        log: SendingLog,
        dispatcher: Dispatcher | None,
        *,
        name: str | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.log = log
        self.dispatcher = dispatcher
        self.name = name or worker_name()
        self.stopping = threading.Event()
        self.sleep = sleep or self.stopping.wait

    def run_once(self) -> Pass:
        done = Pass()
        done.events = self.log.sync()
        done.succeeded = self.log.close_quiet()
        done.escalated = self.log.escalate()
        if self.dispatcher is not None:
            self._dispatch(done)
        # One batch of old events per pass: a busy pass comes again at once, so a
        # backlog goes batch by batch between the retries, never holding them up.
        # On PostgreSQL the prune also makes the coming months' event partitions.
        done.pruned = self.log.sup.prune(max_batches=1).events
        return done

    def _dispatch(self, done: Pass) -> None:
        """Claim and send due retries, a batch at a time, until none are due. A batch's
        outcomes are recorded together; a worker that dies before that leaves its claims
        to time out (claim_timeout), and those retries go out again: at least once."""
        assert self.dispatcher is not None
        batch = max(self.log.settings.batch, 1)
        while not self.stopping.is_set():
            claimed = self.log.claim(self.name, batch)
            handovers = []
            for due in claimed:
                try:
                    handovers.append(Handover(due, True, self.dispatcher.send(due)))
                except DispatchError as exc:
                    done.failed += 1
                    done.errors.append(f"plan {due.plan_id}: {exc}")
                    handovers.append(Handover(due, False, str(exc), exc.permanent))
            done.dispatched += self.log.settle(handovers, self.name, self.dispatcher.channel)
            if len(claimed) < batch:
                return

    def run(self, on_pass: Callable[[Pass], None] = lambda _: None) -> None:
        """Passes until `stop()`; sleeps poll_interval after a pass with nothing to do.
        A database that cannot be reached (restarting, network) is waited for, not a
        reason to exit: the pass is reported with the error and tried again later;
        what a failed pass had claimed is claimable again after claim_timeout."""
        interval = self.log.settings.poll_interval.total_seconds()
        try:
            while not self.stopping.is_set():
                try:
                    done = self.run_once()
                except DatabaseUnavailable as exc:
                    done = Pass(errors=[str(exc)])
                on_pass(done)
                if not done.busy:
                    self.sleep(interval)
        finally:
            if self.dispatcher is not None:
                self.dispatcher.close()

    def stop(self) -> None:
        self.stopping.set()
