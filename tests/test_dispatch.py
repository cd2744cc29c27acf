"""Dispatch of due retries over real sockets on loopback: a webhook receiver that checks
the signature, an aiosmtpd relay (plain, STARTTLS with a certificate made here, SMTPS,
AUTH), relays that are down, and two worker processes sharing PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from helpers.clock import Clock
from helpers.dsn import make_dsn, soft
from helpers.net import free_port
from helpers.sending import open_log, plans

from bounced.config import RelaySettings, WebhookSettings
from bounced.sending.dispatch import (
    SIGNATURE_HEADER,
    SmtpDispatcher,
    Step,
    WebhookDispatcher,
    relay_steps,
)
from bounced.sending.log import SendingLog
from bounced.sending.plans import PlanStatus
from bounced.sending.worker import Worker

SECRET = "s3cret"


# --- a store with due retries ---------------------------------------------------------------


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def log(tmp_path, clock):
    log = open_log(f"sqlite:///{tmp_path / 'b.db'}", clock)
    yield log
    log.sup.close()


# --- webhook --------------------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    """Records signed POSTs; answers 500 to the first `failures` requests."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = failures
        self.bodies: list[dict] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/retry"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"  # keeps the connection: the dispatcher reuses it

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        with self.server.lock:
            if not hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected):
                self.server.bad_signatures += 1
                code = 401
            elif self.server.failures:
                self.server.failures -= 1
                code = 500
            else:
                self.server.bodies.append(json.loads(body))
                code = 204
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        """Quiet."""


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook(receiver):
    """A dispatcher to the receiver, given a secret; closed (its kept connection) after."""
    made = []

    def webhook(secret: str = SECRET) -> WebhookDispatcher:
        made.append(WebhookDispatcher(WebhookSettings(receiver.url, secret)))
        return made[-1]

    yield webhook
    for dispatcher in made:
        dispatcher.close()


def test_webhook_posts_signed_requests_and_backs_off_while_failing(log, clock, receiver, webhook):
    (rcpt,) = plans(log, 1)
    receiver.failures = 2
    worker = Worker(log, webhook())
    clock.move(minutes=15)
    for wait in (1, 2):  # dispatch_backoff 1m, doubling
        done = worker.run_once()
        assert (done.dispatched, done.failed) == (0, 1) and "HTTP 500" in done.errors[0]
        assert worker.run_once().failed == 0  # not due again yet
        clock.move(minutes=wait)
    assert worker.run_once().dispatched == 1
    (body,) = receiver.bodies
    assert (body["recipient"], body["attempt"], body["message_id"]) == (rcpt, 1, "m0@s")
    shown = log.plan(body["plan_id"])
    assert shown["plan"]["status"] == PlanStatus.AWAITING
    assert [d["outcome"] for d in shown["dispatches"]] == ["failed", "failed", "sent"]


def test_a_wrong_secret_is_refused_by_the_receiver(log, clock, receiver, webhook):
    plans(log, 1)
    clock.move(minutes=15)
    worker = Worker(log, webhook("wrong"))
    assert worker.run_once().failed == 1
    assert receiver.bad_signatures == 1 and receiver.bodies == []


# --- SMTP relay -----------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 2.0.0 queued"


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def accept_user(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"relayuser" and auth_data.password == b"pw"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay(request, certificate):
    """An aiosmtpd relay: mode "plain", "starttls" (with AUTH) or "smtps"."""
    mode = getattr(request, "param", "plain")
    sink = Sink()
    kw: dict = {}
    if mode == "starttls":
        kw = {
            "tls_context": server_context(certificate),
            "authenticator": accept_user,
            "auth_require_tls": True,
        }
    elif mode == "smtps":
        kw = {"ssl_context": server_context(certificate)}
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kw)
    controller.start()
    yield sink, port
    controller.stop()


def dispatch_once(log: SendingLog, dispatcher: SmtpDispatcher) -> int:
    try:
        return Worker(log, dispatcher).run_once().dispatched
    finally:
        dispatcher.close()


def steps(settings: RelaySettings) -> list[Step]:
    found = []
    for item in relay_steps(settings):
        if isinstance(item, Step):
            found.append(item)
        else:
            item.quit()
    return found


def test_smtp_resends_the_stored_message_through_the_relay(log, clock, relay):
    sink, port = relay
    rcpts = plans(log, 3)
    clock.move(minutes=15)
    assert dispatch_once(log, SmtpDispatcher(RelaySettings(port=port))) == 3
    assert sorted(e.rcpt_tos[0] for e in sink.envelopes) == rcpts
    assert {e.mail_from for e in sink.envelopes} == {"bounces+x@sender.example.com"}
    assert all(b"Subject: Your invoice" in e.content for e in sink.envelopes)
    assert {p["status"] for p in log.plans()} == {PlanStatus.AWAITING}


@pytest.mark.parametrize("relay", ["starttls"], indirect=True)
def test_starttls_with_a_verified_certificate_and_auth(log, clock, relay, certificate):
    sink, port = relay
    settings = RelaySettings(
        port=port,
        security="starttls+verify",
        ca_file=str(certificate[0]),
        username="relayuser",
        password="pw",
    )
    names = [(s.name, s.ok) for s in steps(settings)]
    assert names == [("connect", True), ("EHLO", True), ("STARTTLS", True), ("AUTH", True)]
    plans(log, 1)
    clock.move(minutes=15)
    assert dispatch_once(log, SmtpDispatcher(settings)) == 1
    assert len(sink.envelopes) == 1


@pytest.mark.parametrize("relay", ["starttls"], indirect=True)
def test_smtp_test_names_the_first_failure_in_plain_words(relay, certificate):
    _, port = relay
    untrusted = steps(RelaySettings(port=port, security="starttls+verify"))
    assert untrusted[-1].name == "STARTTLS" and not untrusted[-1].ok
    assert "not trusted" in untrusted[-1].detail
    unchecked = RelaySettings(port=port, security="starttls", username="relayuser", password="x")
    failed = steps(unchecked)
    assert [s.name for s in failed] == ["connect", "EHLO", "STARTTLS", "AUTH"]
    assert "refused the username or password" in failed[-1].detail
    plain_auth = steps(RelaySettings(port=port, username="relayuser", password="pw"))
    assert plain_auth[-1].name == "AUTH" and "offers no AUTH" in plain_auth[-1].detail
    down = steps(RelaySettings(port=free_port()))
    assert (down[0].name, down[0].ok) == ("connect", False)
    assert "connection refused" in down[0].detail


@pytest.mark.parametrize("relay", ["smtps"], indirect=True)
def test_smtps(log, clock, relay, certificate):
    sink, port = relay
    settings = RelaySettings(port=port, security="smtps", ca_file=str(certificate[0]))
    connect = steps(settings)[0]
    assert connect.ok and "verified" in connect.detail
    plans(log, 1)
    clock.move(minutes=15)
    assert dispatch_once(log, SmtpDispatcher(settings)) == 1
    assert len(sink.envelopes) == 1


def test_relay_down_backs_off_and_loses_nothing(database_url, clock, certificate):
    log = open_log(database_url, clock)
    rcpts = plans(log, 4)
    clock.move(minutes=15)
    port = free_port()
    worker = Worker(log, SmtpDispatcher(RelaySettings(port=port)))
    for _ in range(3):
        done = worker.run_once()
        assert (done.dispatched, done.failed) == (0, 4)
        assert {p["attempt"] for p in log.plans()} == {0}
        clock.move(hours=1)
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert worker.run_once().dispatched == 4
    finally:
        worker.dispatcher.close()
        controller.stop()
        log.sup.close()
    assert sorted(e.rcpt_tos[0] for e in sink.envelopes) == rcpts


# --- the CLI and several workers ----------------------------------------------------------


def bounced(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bounced", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def past_clock() -> Clock:
    """A clock two hours back, so that plans made with it are due for the real one."""
    clock = Clock()
    clock.now = datetime.now(UTC) - timedelta(hours=2)
    return clock


def test_pull_hands_each_due_retry_out_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    log = open_log(url, past_clock())
    rcpts = plans(log, 3)
    log.sup.close()
    env = {"BOUNCED_DATABASE_URL": url}
    looked = bounced("retries", "due", "--format", "csv", env=env, cwd=tmp_path)
    assert len(looked.stdout.splitlines()) == 4  # a header and 3 plans, none taken
    first = bounced("retries", "due", "--claim", "--format", "ndjson", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert sorted(r["recipient"] for r in rows) == rcpts and {r["attempt"] for r in rows} == {1}
    again = bounced("retries", "due", "--claim", "--format", "ndjson", env=env, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == ""


def test_two_workers_never_dispatch_a_retry_twice(tmp_path, database_url, receiver):
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share PostgreSQL; SQLite runs one")
    log = open_log(database_url, past_clock(), batch=5)
    plans(log, 60)
    log.sup.close()
    env = {
        "BOUNCED_DATABASE_URL": database_url,
        "BOUNCED_RETRY_WEBHOOK_URL": receiver.url,
        "BOUNCED_RETRY_WEBHOOK_SECRET": SECRET,
        "BOUNCED_RETRY_BATCH": "5",
    }
    command = [sys.executable, "-m", "bounced", "worker", "--once", "--dispatch", "webhook"]
    workers = [
        subprocess.Popen(command, env={**os.environ, **env}, cwd=tmp_path, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120)[1].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    ids = [b["plan_id"] for b in receiver.bodies]
    assert len(ids) == len(set(ids)) == 60
    assert receiver.bad_signatures == 0


def test_nothing_stored_to_resend_cancels_the_plan(log, clock, relay):
    sink, port = relay
    log.record("full@example.org", "<bare@s>")  # no --raw: nothing to resend by SMTP
    log.sup.ingest(make_dsn(soft("full@example.org"), original_id="<bare@s>"))
    log.sync()
    clock.move(minutes=15)
    assert dispatch_once(log, SmtpDispatcher(RelaySettings(port=port))) == 0
    (plan,) = log.plans()
    assert plan["status"] == PlanStatus.CANCELLED and "no raw message" in plan["note"]
    assert sink.envelopes == []
