"""`bounced serve`: an SMTP server for bounce domains, a spool, and the worker behind it.

The SMTP side is thin on purpose: RCPT is accepted only for the configured bounce
domains and addresses (550 5.7.1 otherwise: never a relay); DATA is written to the
spool (fsynced, renamed) and only then answered 250. Parsing and the database
happen later, in a worker thread of the same process (bounced.listener.spool_worker; or,
with `[listener] worker = false`, in `bounced worker --spool`), so a slow store
never slows the SMTP dialogue and a crash never loses an acknowledged message.

Stopping (SIGTERM or SIGINT): the listening socket closes at once, open sessions
get `grace` seconds to finish, the worker ingests what is in the spool, exit 0.
Whatever is left (a second signal, a kill) stays in the spool and is replayed on
the next start.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import queue
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, TextIO, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from bounced.config import ListenerSettings, Settings
from bounced.errors import ConfigError
from bounced.listener.spool import Envelope, Spool
from bounced.listener.spool_worker import SpoolWorker

__all__ = [
    "GRACE",
    "IDLE_SEAL",
    "RETENTIONS",
    "EventLog",
    "Listener",
    "ListenerSMTP",
    "accepts",
    "ensure_free",
    "serve",
]

RETENTIONS = ("archive", "delete")
#: Seconds open sessions may take to finish after a stop signal.
GRACE = 30.0
#: The spool's open segment is sealed (ready for the worker) after this long without a message.
IDLE_SEAL = 0.1


class EventLog:
    """Structured log lines on one stream: `event key=value ...` or one JSON object."""

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self.stream = stream
        self.as_json = as_json
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        if self.as_json:
            line = json.dumps({"at": at, "event": event, **fields}, default=str)
        else:
            line = " ".join([at, event, *(f"{k}={v!r}" for k, v in fields.items())])
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def accepts(address: str, domains: frozenset[str]) -> bool:
    """Is `address` one of ours: its domain, or the whole address, is configured."""
    text = address.strip().strip("<>").lower()
    domain = text.rpartition("@")[2].rstrip(".")
    return bool(domain) and (domain in domains or text in domains)


#: A message handed to the spool's writer: its bytes, envelope, and the session's future.
_Waiting = tuple[bytes, Envelope, asyncio.Future[str]]


class _GroupCommit:
    """Spool writes from many sessions, grouped: one writing thread takes everything
    sessions handed over while it wrote the previous batch and appends it at once (one
    flush, whatever the number of messages). Each session still gets its 250 only once
    its own message is durable. The thread goes from one batch straight to the next and
    hands the results to the event loop in one callback per batch, so the disk does not
    wait for the loop nor the loop for the disk. It seals the open segment when it is
    ripe or when no message came for IDLE_SEAL seconds, and wakes the worker then."""

    def __init__(self, spool: Spool, wake: Callable[[], None]) -> None:
        self.spool = spool
        self.wake = wake
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def put(self, raw: bytes, envelope: Envelope) -> str:
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write, args=(loop,), name="bounced-spool", daemon=True
            )
            self._thread.start()
        done: asyncio.Future[str] = loop.create_future()
        self._queue.put((raw, envelope, done))
        return await done

    def close(self) -> None:
        """Write what was handed over, seal, stop the thread (the sessions are over)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()

    def _write(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SEAL if self.spool.unsealed else None)
            except queue.Empty:
                self._seal()
                continue
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            last = batch[-1] is None
            waiting = [item for item in batch if item is not None]
            if waiting:
                self._commit(loop, waiting)
            if last:
                self._seal()
                return
            if self.spool.ripe:
                self._seal()

    def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Waiting]) -> None:
        try:
            result: list[str] | Exception = self.spool.append([(r, e) for r, e, _ in batch])
        except Exception as exc:  # the sessions' to answer (451 for an OSError); the thread goes on
            result = exc
        loop.call_soon_threadsafe(_settle, [done for *_, done in batch], result)

    def _seal(self) -> None:
        try:
            sealed = self.spool.seal()
        except OSError:  # left in open/; the next start seals it
            return
        if sealed:
            self.wake()


def _settle(waiting: list[asyncio.Future[str]], result: list[str] | Exception) -> None:
    """On the event loop: each session's message id, or the error that kept it out."""
    for i, done in enumerate(waiting):
        if done.done():  # the session went away meanwhile
            continue
        if isinstance(result, Exception):
            done.set_exception(result)
        else:
            done.set_result(result[i])


@dataclass
class _Counters:
    sessions: int = 0
    spooled: int = 0


class _Handler:
    """aiosmtpd hooks: RCPT against the bounce domains, DATA into the spool."""

    def __init__(
        self, spool: Spool, domains: frozenset[str], log: EventLog, wake: Callable[[], None]
    ):
        self.writer = _GroupCommit(spool, wake)
        self.domains = domains
        self.log = log
        self.counters = _Counters()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SMTPEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not accepts(address, self.domains):
            self.log("rcpt_refused", peer=_peer(session), rcpt=address)
            return "550 5.7.1 Relaying denied: not a bounce address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        meta = Envelope(
            envelope.mail_from or "",
            tuple(envelope.rcpt_tos),
            _peer(session),
            session.host_name or "",
        )
        raw = envelope.original_content or b""
        try:
            spool_id = await self.writer.put(raw, meta)
        except OSError as exc:
            self.log("spool_failed", peer=meta.client, error=str(exc))
            return "451 4.3.0 Could not store the message, try again later"
        self.counters.spooled += 1
        self.log(
            "spooled",
            id=spool_id,
            peer=meta.client,
            mail_from=meta.mail_from,
            rcpt=list(meta.rcpt_tos),
            size=len(raw),
        )
        return f"250 2.0.0 Queued as {spool_id}"


def _peer(session: Session | None) -> str:
    peer = session.peer if session is not None else None
    return peer[0] if isinstance(peer, tuple) else str(peer or "")


#: The networks a listener accepts sessions from (`[listener] allowed_networks`).
_Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _networks(specs: tuple[str, ...]) -> _Networks:
    try:
        return tuple(ipaddress.ip_network(s, strict=False) for s in specs)
    except ValueError as exc:
        raise ConfigError(f"listener.allowed_networks: {exc}") from None


class ListenerSMTP(SMTP):
    """aiosmtpd's SMTP with long lines, a session limit, allowed networks and a
    whole-session time limit; refused connections get one reply line and are closed."""

    def __init__(
        self, handler: _Handler, cfg: ListenerSettings, networks: _Networks, **kwargs: Any
    ) -> None:
        # Read by SMTP.__init__ (its stream reader's limit), so set first.
        self.line_length_limit = cfg.max_line_length
        super().__init__(handler, **kwargs)
        self._cfg = cfg
        self._networks = networks
        self._counted = False
        self._deadline: asyncio.TimerHandle | None = None

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's parsing of the MAIL FROM and RCPT TO address, the same parsers and
        results, without the `typing.Protocol` class aiosmtpd 1.4 builds on every call
        for a type hint (about 45 us each time, twice a message: a fifth of the CPU the
        whole SMTP dialogue costs)."""
        if not arg:
            return "", ""
        parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
        try:
            address, rest = parse(arg)
        except HeaderParseError:
            return None, None
        addr = address.addr_spec
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._counted:  # the same session again, after STARTTLS
            super().connection_made(transport)
            return
        handler: _Handler = self.event_handler
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else ""
        refusal = None
        if self._networks and not _in_networks(host, self._networks):
            refusal = "554 5.7.1 Access denied"
        elif handler.counters.sessions >= self._cfg.max_sessions:
            refusal = "421 4.3.2 Too many connections, try again later"
        if refusal:
            handler.log("session_refused", peer=host, reply=refusal)
            cast(asyncio.Transport, transport).write(refusal.encode() + b"\r\n")
            transport.close()
            return
        self._counted = True
        handler.counters.sessions += 1
        handler.log("session_open", peer=host, sessions=handler.counters.sessions)
        limit = self._cfg.session_timeout.total_seconds()
        self._deadline = self.loop.call_later(limit, transport.close)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._counted:
            return
        self._counted = False
        handler: _Handler = self.event_handler
        handler.counters.sessions -= 1
        if self._deadline is not None:
            self._deadline.cancel()
        handler.log("session_close", peer=_peer(self.session), error=str(error or ""))
        super().connection_lost(error)


def _in_networks(host: str, networks: _Networks) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _tls_context(cfg: ListenerSettings) -> ssl.SSLContext | None:
    if not (cfg.tls_cert and cfg.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"listener TLS certificate/key: {exc}") from None
    return context


class _Controller(Controller):
    def __init__(self, handler: _Handler, cfg: ListenerSettings) -> None:
        self.cfg = cfg
        self.networks = _networks(cfg.allowed_networks)
        self.tls = _tls_context(cfg)
        super().__init__(handler, hostname=cfg.host, port=cfg.port, ready_timeout=10)

    def factory(self) -> ListenerSMTP:
        return ListenerSMTP(
            self.handler,
            self.cfg,
            self.networks,
            data_size_limit=self.cfg.max_message_size,
            enable_SMTPUTF8=True,
            hostname=socket.gethostname(),
            tls_context=self.tls,
            timeout=self.cfg.timeout.total_seconds(),
            loop=self.loop,
        )

    def stop_accepting(self) -> None:
        """Close the listening socket; sessions already open go on."""
        server = self.server
        if server is not None:
            self.loop.call_soon_threadsafe(server.close)


class Listener:
    """The SMTP server, the spool and the worker, started and stopped together."""

    def __init__(self, settings: Settings, log: EventLog) -> None:
        cfg = settings.listener
        if cfg.retention not in RETENTIONS:
            raise ConfigError(f"listener.retention must be one of {', '.join(RETENTIONS)}")
        if not cfg.domains:
            raise ConfigError("no bounce domains: set [listener] domains or use --domain")
        self.settings = settings
        self.log = log
        self.spool = Spool(cfg.spool_dir)
        self._wake = threading.Event()
        domains = frozenset(d.strip().lower().rstrip(".") for d in cfg.domains)
        self.handler = _Handler(self.spool, domains, log, self._wake.set)
        self.controller = _Controller(self.handler, cfg)
        self.worker: SpoolWorker | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Replay the spool, start the worker (unless another process ingests), listen."""
        from bounced.listener.inbox import Inbox
        from bounced.suppressions import Suppressions

        back = self.spool.recover()
        self.log("replay", pending=len(self.spool.pending()), reclaimed=back)
        if self.settings.listener.worker:
            inbox = Inbox(Suppressions.open(self.settings))
            self.worker = SpoolWorker(
                self.spool,
                inbox,
                self.settings,
                self.log,
                busy=lambda: self.handler.counters.sessions > 0,
                wake=self._wake,
            )
            self._thread = threading.Thread(
                target=self.worker.run, name="bounced-worker", daemon=True
            )
            self._thread.start()
        self.controller.start()
        cfg = self.settings.listener
        self.log("listening", host=cfg.host, port=self.controller.port, spool=cfg.spool_dir)

    def stop(self, grace: float = GRACE) -> None:
        """Stop accepting, let sessions finish, drain the spool, close the store."""
        self.log("stopping", sessions=self.handler.counters.sessions)
        self.controller.stop_accepting()
        end = time.monotonic() + grace
        while self.handler.counters.sessions and time.monotonic() < end:
            time.sleep(0.05)
        self.controller.stop()
        self.handler.writer.close()
        if self.worker is not None and self._thread is not None:
            self.worker.stop()
            self._thread.join()
            self.worker.inbox.sup.close()
        self.log("stopped", pending=len(self.spool.pending()))


def ensure_free(host: str, port: int) -> None:
    """Fail at once, before anything is written, when the address cannot be listened on
    (a port in use, out of range, a host that is not ours): aiosmtpd's controller only
    notices after its ready timeout. Bound with SO_REUSEADDR, as asyncio binds."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"listener port {port} is out of range (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _name, address in infos:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(settings: Settings, *, stream: TextIO = sys.stderr) -> int:
    """Run until SIGTERM or SIGINT; returns the exit status."""
    ensure_free(settings.listener.host, settings.listener.port)
    log = EventLog(stream, as_json=settings.listener.log_format == "json")
    listener = Listener(settings, log)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    listener.start()
    # Everything imported and set up so far lives as long as the process: out of the
    # garbage collector's sight, its full passes stay short while sessions are open.
    gc.freeze()
    while not stop.wait(1):
        pass
    listener.stop()
    return 0
