"""Health of a bounced process: is it up, can it do its work, what has it done.

`readiness(store)` is what every /readyz answers (the API's, and the small HTTP
server `serve_health` gives the listener and the worker when `[metrics] port` is set):
the database answers and its schema is the one this bounced needs. The small server
is the standard library's, in a daemon thread: the listener and the worker need no
web framework for three fixed paths.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from bounced.db.store import SCHEMA_REVISION
from bounced.errors import BouncedError

if TYPE_CHECKING:
    from bounced.config import MetricsSettings, Settings
    from bounced.db.store import Store

__all__ = ["readiness", "serve_health", "serving"]


def readiness(store: Store) -> tuple[bool, str]:
    """(ready, why): the database is reachable and at the schema revision needed."""
    try:
        with store.read() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except BouncedError as exc:
        return False, str(exc)
    except Exception as exc:  # no alembic_version table, or anything the driver says
        return False, f"cannot read the schema revision: {type(exc).__name__}"
    if current != SCHEMA_REVISION:
        return False, f"schema at revision {current}, this bounced needs {SCHEMA_REVISION}"
    return True, "ready"


def serve_health(cfg: MetricsSettings, store: Store, *, spool_dir: str = "") -> ThreadingHTTPServer:
    """Serve /healthz, /readyz and /metrics on `cfg.host:cfg.port` in a daemon thread;
    call `shutdown()` on the result to stop."""
    from bounced.metrics import CONTENT_TYPE_LATEST, exposition

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, "text/plain", b"ok\n")
            elif self.path == "/readyz":
                ready, why = readiness(store)
                self._send(200 if ready else 503, "text/plain", why.encode() + b"\n")
            elif self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, exposition(store, spool_dir))
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:  # probes every few seconds: no log
            return

    server = ThreadingHTTPServer((cfg.host, cfg.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


@contextmanager
def serving(settings: Settings, *, spool_dir: str = "") -> Iterator[ThreadingHTTPServer | None]:
    """The health server of a listener or worker while the block runs, when
    `[metrics] port` is set (on a pool of its own: probes never wait for the work)."""
    if not settings.metrics.port:
        yield None
        return
    from bounced.db.store import Store

    store = Store.open(settings, migrate=False)
    server = serve_health(settings.metrics, store, spool_dir=spool_dir)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        store.close()
