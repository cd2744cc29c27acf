"""`bounced serve` as a real process, spoken to by smtplib, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from helpers.dsn import make_dsn
from helpers.listener import DOMAIN, RETURN_PATH, SECRET, WAIT, Server, burst, events, eventually
from hypothesis import given, settings
from hypothesis import strategies as st

from bounced import verp
from bounced.errors import UnknownAddress
from bounced.listener.inbox import Inbox
from bounced.listener.server import ListenerSMTP
from bounced.suppressions import Suppressions


@pytest.fixture
def server(database_url, tmp_path):
    servers = []

    def make(**env: str) -> Server:
        srv = Server(database_url, tmp_path, env).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        if srv.proc and srv.proc.poll() is None:
            srv.stop(signal.SIGKILL)


@pytest.fixture
def store(database_url):
    with Suppressions.open(database_url) as sup:
        yield sup


def test_dsn_accepted_and_stored_reply_to_inbox(server, store):
    srv = server()
    srv.send(make_dsn("gone@example.org"))
    srv.send(b"From: a@example.com\r\nSubject: Re: hello\r\n\r\nThanks, but stop.\r\n")
    # On PostgreSQL the address row commits before its events (bounced.db.suppression
    # `record`): ingested means an event shown.
    shown = eventually(
        lambda: (found := store.show("gone@example.org")) and found["events"] and found,
        "DSN ingested",
    )
    assert shown["address"]["state"] == "blocked"
    assert shown["events"][0]["source"].startswith("smtp:")
    inbox = eventually(lambda: Inbox(store).list(), "reply in the inbox")
    assert [m["subject"] for m in inbox] == ["Re: hello"]
    assert inbox[0]["rcpt_tos"] == RETURN_PATH
    assert srv.stop() == 0
    archived = b"".join((srv.spool / "done" / name).read_bytes() for name in srv.folder("done"))
    assert b"gone@example.org" in archived and b"Re: hello" in archived
    assert srv.folder("new") == srv.folder("cur") == srv.folder("open") == []


def test_smtp_limits(tmp_path):
    srv = Server(
        f"sqlite:///{tmp_path / 'b.db'}", tmp_path, {"BOUNCED_LISTENER_MAX_MESSAGE_SIZE": "200000"}
    )
    srv.start()
    try:
        with srv.smtp() as client:
            _code, features = client.ehlo()
            assert b"SIZE 200000" in features
            client.mail("<>")
            assert client.rcpt("someone@elsewhere.example")[0] == 550
            assert client.rcpt(f"x@sub.{DOMAIN}")[0] == 550
            assert client.rcpt(RETURN_PATH)[0] == 250
            long_line = b"X-Long: " + b"y" * 2000 + b"\r\n"
            assert (
                client.data(long_line + b"Subject: long\r\n\r\n" + b"z" * 2000 + b"\r\n")[0] == 250
            )
            client.mail("<>")
            client.rcpt(RETURN_PATH)
            assert client.data(b"Subject: big\r\n\r\n" + b"0123456789\r\n" * 30000)[0] == 552
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            srv.send(b"Subject: relay\r\n\r\nrelay me\r\n", "victim@example.net")
        assert refused.value.recipients["victim@example.net"][0] == 550
    finally:
        assert srv.stop() == 0


def _bounced(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bounced", *args], capture_output=True, text=True, env=env
    )


def test_verp_round_trip_and_forged_token(server, store):
    srv = server()
    made = _bounced("verp", "encode", "Real@Example.com", "--message-id", "<m1@s>", env=srv.env)
    assert made.returncode == 0, made.stderr
    address = made.stdout.strip()
    assert address.startswith("bounces+") and address.endswith("@" + DOMAIN)
    read = _bounced("verp", "decode", address.upper(), "-f", "csv", env=srv.env)
    assert read.returncode == 0 and "Real@Example.com,<m1@s>,True" in read.stdout

    # The body names someone else (a forwarding, a rewritten address): the token wins.
    srv.send(make_dsn("alias@example.net", original_id="<other@s>"), address)
    rows = eventually(lambda: events(store, "real@example.com"), "VERP bounce ingested")
    assert [r["original_message_id"] for r in rows] == ["m1@s"]
    with pytest.raises(UnknownAddress):
        store.show("alias@example.net")

    token = address.partition("+")[2].partition("@")[0]
    forged = address.replace(token, token[:5] + ("a" if token[5] != "a" else "b") + token[6:])
    assert _bounced("verp", "decode", forged, env=srv.env).returncode == 1
    srv.send(make_dsn("victim@example.org", message_id="<f@x>"), forged)
    # Not strict: counted from the body, but kept aside as suspect.
    eventually(lambda: events(store, "victim@example.org"), "forged-token bounce ingested")
    eventually(lambda: srv.folder("suspect"), "suspect kept")
    assert srv.stop() == 0


def test_strict_verp_counts_only_valid_tokens(server, store):
    srv = server(BOUNCED_VERP_STRICT="true")
    valid = verp.encode("kept@example.org", "<k@s>", secret=SECRET, prefix="bounces", domain=DOMAIN)
    srv.send(make_dsn("forged@example.org", message_id="<a@x>"), RETURN_PATH)
    srv.send(make_dsn("kept@example.org", message_id="<b@x>"), valid)
    eventually(lambda: events(store, "kept@example.org"), "valid token counted")
    eventually(lambda: srv.folder("suspect"), "unsigned bounce kept as suspect")
    assert srv.stop() == 0
    with pytest.raises(UnknownAddress):
        store.show("forged@example.org")


def test_kill_during_burst_then_restart_ingests_each_acknowledged_once(server, store):
    srv = server()
    acked: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(burst, srv, 150)
        eventually(lambda: srv.log.read_bytes().count(b'"spooled"') >= 10, "a burst")
        srv.stop(signal.SIGKILL)
        acked = sending.result()
    assert acked
    srv.start()
    for rcpt in acked:
        rows = eventually(lambda rcpt=rcpt: events(store, rcpt), f"{rcpt} ingested")
        assert len(rows) == 1
    assert srv.stop() == 0
    for rcpt in acked:
        assert len(events(store, rcpt)) == 1


def test_sigterm_drains_the_spool(server, store):
    srv = server()
    acked = burst(srv, 40)
    assert srv.stop() == 0
    assert srv.folder("open") == srv.folder("new") == srv.folder("cur") == srv.folder("tmp") == []
    for rcpt in acked:
        assert len(events(store, rcpt)) == 1
    assert len(acked) == 40


def test_two_listeners_share_one_store(database_url, tmp_path, store):
    """Each listener has its own spool; the same bounces sent to both count once."""
    roots = [tmp_path / "a", tmp_path / "b"]
    servers = []
    try:
        for root in roots:
            root.mkdir()
            servers.append(Server(database_url, root).start())
        for i in range(10):
            raw = make_dsn(f"twice{i}@example.org", original_id=f"<t{i}@s>")
            for srv in servers:
                srv.send(raw)
        for srv in servers:
            assert srv.stop() == 0
        for i in range(10):
            assert len(events(store, f"twice{i}@example.org")) == 1
    finally:
        for srv in servers:
            if srv.proc.poll() is None:
                srv.stop(signal.SIGKILL)


def test_inbox_commands(server, store, database_url):
    srv = server()
    srv.send(b"From: a@example.com\r\nSubject: Re: news\r\n\r\nJane left the company.\r\n")
    (waiting,) = eventually(lambda: Inbox(store).list(), "reply in the inbox")
    assert srv.stop() == 0
    db = ("--database-url", database_url)
    listed = _bounced(*db, "inbox", "list", "-f", "csv", env=srv.env)
    assert listed.returncode == 0 and "Re: news" in listed.stdout
    shown = _bounced(*db, "inbox", "show", str(waiting["id"]), env=srv.env)
    assert "Jane left the company." in shown.stdout and "mail_from: <>" in shown.stdout
    assigned = _bounced(
        *db, "inbox", "assign", str(waiting["id"]), "--to", "Jane@Example.org", env=srv.env
    )
    assert assigned.returncode == 0, assigned.stderr
    assert [e["source"] for e in events(store, "jane@example.org")] == [f"inbox:{waiting['id']}"]
    assert Inbox(store).list() == []
    assert _bounced(*db, "inbox", "delete", str(waiting["id"]), env=srv.env).returncode == 0
    gone = _bounced(*db, "inbox", "delete", str(waiting["id"]), env=srv.env)
    assert gone.returncode == 1 and "no inbox message" in gone.stderr


def _sqlite_server(tmp_path: Path, **env: str) -> Server:
    """A listener on a SQLite store, for what the SMTP side does (not the store)."""
    return Server(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, env).start()


def test_starttls_with_a_self_signed_certificate(tmp_path, certificate):
    cert, key = certificate
    srv = _sqlite_server(
        tmp_path, BOUNCED_LISTENER_TLS_CERT=str(cert), BOUNCED_LISTENER_TLS_KEY=str(key)
    )
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        with srv.smtp() as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert client.starttls(context=trusting)[0] == 220
            assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
            client.ehlo()
            assert not client.has_extn("starttls")  # once is enough
            assert client.sendmail("<>", [RETURN_PATH], make_dsn("tls@example.org")) == {}
        with srv.smtp() as client, pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())  # not a trusted CA
    finally:
        assert srv.stop() == 0
    (done,) = srv.folder("done")
    assert b"tls@example.org" in (srv.spool / "done" / done).read_bytes()


def test_only_allowed_networks_may_connect(tmp_path):
    """Loopback has a whole /8: the listener allows 127.0.0.1 only, 127.0.0.2 is outside."""
    srv = _sqlite_server(tmp_path, BOUNCED_LISTENER_ALLOWED_NETWORKS="127.0.0.1/32,::1")
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", srv.port, timeout=WAIT, source_address=("127.0.0.2", 0))
        assert refused.value.smtp_code == 554
        with srv.smtp() as client:
            assert client.noop()[0] == 250
    finally:
        assert srv.stop() == 0


def test_sessions_beyond_the_limit_are_refused(tmp_path):
    srv = _sqlite_server(tmp_path, BOUNCED_LISTENER_MAX_SESSIONS="2")
    try:
        first, second = srv.smtp(), srv.smtp()
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            srv.smtp()
        assert refused.value.smtp_code == 421
        first.quit()
        # A session that ended frees its place (the server notices the close a moment later).
        third = eventually(_connected(srv), "a place freed by the closed session")
        assert second.noop()[0] == third.noop()[0] == 250
        second.quit()
        third.quit()
    finally:
        assert srv.stop() == 0


def _connected(srv: Server):
    def attempt() -> smtplib.SMTP | None:
        try:
            return srv.smtp()
        except smtplib.SMTPConnectError:
            return None

    return attempt


def test_a_silent_connection_is_closed_after_the_idle_timeout(tmp_path):
    srv = _sqlite_server(tmp_path, BOUNCED_LISTENER_TIMEOUT="1s")
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) as sock:
            assert sock.recv(1024).startswith(b"220 ")
            # Nothing is sent: the server closes (recv returns b"") instead of waiting for us.
            assert sock.recv(1024) == b""
        with srv.smtp() as client:  # a talking client is not affected
            assert client.noop()[0] == 250
    finally:
        assert srv.stop() == 0


_ADDRESS_ARGS = st.one_of(
    st.text(alphabet='<>@."\\ ()[]:,;ab-+=\x00\u00e9', max_size=40),
    st.emails().map(lambda a: f"<{a}>"),
    st.tuples(st.emails(), st.sampled_from(["", " SIZE=100", " BODY=8BITMIME"])).map("".join),
)


@given(_ADDRESS_ARGS, st.sampled_from([0, 5, 64]))
@settings(max_examples=300, deadline=None)
def test_address_parsing_is_aiosmtpds(arg, limit):
    """The listener's MAIL FROM / RCPT TO parsing (aiosmtpd's, without its per-call class)
    gives what aiosmtpd's own gives, for any argument."""
    ours, theirs = object.__new__(ListenerSMTP), object.__new__(SMTP)
    ours.local_part_limit = theirs.local_part_limit = limit
    assert _outcome(ours._getaddr, arg) == _outcome(theirs._getaddr, arg)


def _outcome(parse, arg: str):
    """What `parse(arg)` gives, or the type of what it raises (the stdlib parser raises
    IndexError for a lone `<`, in aiosmtpd too: aiosmtpd answers it with a 500)."""
    try:
        return parse(arg)
    except Exception as exc:
        return type(exc)
