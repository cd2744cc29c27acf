"""The worker loop outlives a database that goes away: PostgreSQL behind a TCP proxy on
loopback that the test cuts and restores."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid

import pytest
from helpers.clock import Clock
from helpers.postgres import pg_schema_url, postgres_base
from helpers.sending import open_log, plans
from sqlalchemy.engine import make_url

from bounced.sending.worker import Pass, Worker


class Proxy:
    """Forwards loopback connections to `target`; `cut()` drops them all and refuses new
    ones until `restore()` (same port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.pipes: list[socket.socket] = []
        self.lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.port = self.server.getsockname()[1]
        self.server.listen()
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.pipes += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown() wakes the accepting thread (close() alone leaves it listening).
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        with self.lock:
            pipes, self.pipes = self.pipes, []
        for s in pipes:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def proxied_url():
    base, why = postgres_base()
    if not base:
        pytest.skip(why)
    psycopg = pytest.importorskip("psycopg")
    url = make_url(base)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield pg_schema_url(through, schema), proxy
    finally:
        proxy.cut()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_loop_waits_for_the_database_and_carries_on(proxied_url):
    url, proxy = proxied_url
    clock = Clock()
    log = open_log(url, clock)
    plans(log, 2)
    clock.move(minutes=15)
    passes: list[Pass] = []
    worker = Worker(log, None, sleep=lambda _: steps.pop(0)())
    steps = [proxy.cut, proxy.restore, worker.stop]
    try:
        worker.run(passes.append)
        assert [bool(p.errors) for p in passes] == [False, True, False]
        assert "cannot use database" in passes[1].errors[0]
        assert len(log.pull("after", 10)) == 2  # nothing lost: both retries are still due
    finally:
        log.sup.close()
