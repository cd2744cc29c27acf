"""`bounced policy-server`: Postfix asks, for every RCPT TO, whether the recipient may
be mailed.

An asyncio TCP server, one task per connection (Postfix keeps them open and reuses
them). Lookups are batched: the recipients that arrive while the store answers
the previous batch go to it together, in one `check_many` on a worker thread, so
many connections cost one query each turn rather than one each. A store that cannot
be reached is answered per `[policy_server] fail_open`, and logged.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress

from bounced.config import Settings
from bounced.errors import BouncedError
from bounced.metrics import POLICY_REQUESTS
from bounced.postfix.protocol import DUNNO, answer, parse, recipient_of, refusal, unavailable
from bounced.suppressions import Check, Suppressions

__all__ = ["PolicyServer", "serve"]

log = logging.getLogger("bounced.postfix")
#: A request larger than this is no Postfix request: the connection is closed.
MAX_REQUEST = 64 * 1024
_BATCH = 1000


class PolicyServer:
    """The policy service over one `Suppressions` (its store's pool)."""

    def __init__(self, sup: Suppressions, settings: Settings) -> None:
        self.sup = sup
        self.cfg = settings.policy_server
        self._waiting: list[tuple[str, asyncio.Future[str]]] = []
        self._wake = asyncio.Event()
        self._batcher: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._batcher = asyncio.create_task(self._batches())
        self._server = await asyncio.start_server(
            self._connection,
            host or self.cfg.host,
            self.cfg.port if port is None else port,
            limit=MAX_REQUEST,
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._batcher is not None:
            self._batcher.cancel()
            with suppress(asyncio.CancelledError):
                await self._batcher

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        timeout = self.cfg.timeout.total_seconds() or None
        try:
            while True:
                block = await asyncio.wait_for(reader.readuntil(b"\n\n"), timeout)
                action = await self.decide(parse(block))
                POLICY_REQUESTS.labels(action.split(" ", 1)[0].upper()).inc()
                writer.write(answer(action))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client went away, sent garbage, or idled past the timeout
        except ConnectionError:
            pass
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    async def decide(self, attrs: dict[str, str]) -> str:
        """The action for one request."""
        recipient = recipient_of(attrs)
        if recipient is None:
            return DUNNO
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append((recipient, future))
        self._wake.set()
        return await future

    async def _batches(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[:_BATCH], self._waiting[_BATCH:]
                try:
                    actions = await loop.run_in_executor(None, self._actions, [r for r, _ in batch])
                except BouncedError as exc:
                    log.error("policy: %s; answering %s", exc, unavailable(self.cfg.fail_open))
                    actions = [unavailable(self.cfg.fail_open)] * len(batch)
                for (_, future), action in zip(batch, actions, strict=True):
                    if not future.done():
                        future.set_result(action)

    def _actions(self, recipients: list[str]) -> list[str]:
        return [self._action(check) for check in self.sup.check_many(recipients)]

    def _action(self, check: Check) -> str:
        if check.sendable or check.normalized is None:  # not an address: Postfix decides
            return DUNNO
        return refusal(self.cfg.action, check)


async def _run(sup: Suppressions, settings: Settings) -> None:
    server = PolicyServer(sup, settings)
    port = await server.start()
    log.info("policy service on %s:%s", settings.policy_server.host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def serve(sup: Suppressions, settings: Settings) -> None:
    """Run until SIGTERM or SIGINT."""
    asyncio.run(_run(sup, settings))
