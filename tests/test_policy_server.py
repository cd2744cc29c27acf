"""The Postfix policy service over TCP, driven by a client written to the protocol, on
SQLite and PostgreSQL; and with a real Postfix when one is installed."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from policy_client import PolicyClient, rcpt

from bounced.config import load_settings
from bounced.postfix.server import PolicyServer
from bounced.suppressions import Suppressions


@contextmanager
def running(database_url, **overrides):
    """A policy server on a free loopback port, in a thread with its own event loop."""
    settings = load_settings(overrides={"database_url": database_url, **overrides})
    sup = Suppressions.open(settings, actor="test")
    loop = asyncio.new_event_loop()
    server = PolicyServer(sup, settings)
    port = loop.run_until_complete(server.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield sup, port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        sup.close()


def test_a_blocked_recipient_is_rejected_and_others_pass(database_url):
    with running(database_url) as (sup, port):
        sup.block(["gone@example.com"], note="asked")
        client = PolicyClient("127.0.0.1", port)
        try:
            refused = client.ask(**rcpt("Gone@Example.com"))
            assert refused.startswith("REJECT 5.1.1 <Gone@Example.com>:")
            assert "manual" in refused
            # The same connection serves the next request (Postfix keeps it open).
            assert client.ask(**rcpt("fresh@example.com")) == "DUNNO"
            assert client.ask(**rcpt("not an address")) == "DUNNO"
            assert client.ask(**rcpt("gone@example.com", protocol_state="DATA")) == "DUNNO"
            assert client.ask(**rcpt("gone@example.com", future_attribute="x")).startswith("REJECT")
            assert client.ask(request="smtpd_access_policy", protocol_state="RCPT") == "DUNNO"
        finally:
            client.close()


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("DEFER", "DEFER 4.1.1 <x@example.com>: recipient is on the suppression list"),
        ("HOLD", "HOLD <x@example.com>: recipient is on the suppression list"),
        ("WARN", "WARN <x@example.com>: recipient is on the suppression list"),
        ("REJECT 5.7.1 we do not mail you", "REJECT 5.7.1 we do not mail you"),
    ],
)
def test_the_action_is_configurable(tmp_path, configured, expected):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    with running(url, **{"policy_server.action": configured}) as (sup, port):
        sup.former_employee(["x@example.com"])
        client = PolicyClient("127.0.0.1", port)
        try:
            assert client.ask(**rcpt("x@example.com")).startswith(expected)
        finally:
            client.close()


def test_a_soft_bounced_or_sender_side_address_is_not_rejected(tmp_path):
    from dsn_builder import make_dsn, sender_side, soft

    with running(f"sqlite:///{tmp_path / 'b.db'}") as (sup, port):
        sup.ingest(make_dsn(soft("full@example.com")))
        sup.ingest(make_dsn(sender_side("me@example.net"), message_id="<d2@x>"))
        client = PolicyClient("127.0.0.1", port)
        try:
            assert client.ask(**rcpt("full@example.com")) == "DUNNO"
            assert client.ask(**rcpt("me@example.net")) == "DUNNO"
        finally:
            client.close()


@pytest.mark.parametrize(
    ("fail_open", "expected"), [(True, "DUNNO"), (False, "DEFER_IF_PERMIT 4.3.5")]
)
def test_a_store_that_cannot_be_reached_fails_open_or_closed(tmp_path, fail_open, expected):
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'b.db'}"
    with running(url, **{"policy_server.fail_open": fail_open}) as (sup, port):
        sup.store.engine.dispose()
        sup.store.engine = create_engine(f"sqlite:///{tmp_path / 'gone' / 'b.db'}")
        client = PolicyClient("127.0.0.1", port)
        try:
            assert client.ask(**rcpt("a@example.com")).startswith(expected)
        finally:
            client.close()


def test_many_connections_at_once_each_get_their_own_answers(database_url):
    with running(database_url) as (sup, port):
        sup.block([f"b{i}@example.com" for i in range(0, 200, 2)])
        clients = [PolicyClient("127.0.0.1", port) for _ in range(8)]
        try:
            for c in clients:  # every client's request in flight before any answer is read
                for i in range(25):
                    n = clients.index(c) * 25 + i
                    lines = "".join(f"{k}={v}\n" for k, v in rcpt(f"b{n}@example.com").items())
                    c.sock.sendall(lines.encode() + b"\n")
            for k, c in enumerate(clients):
                for i in range(25):
                    n = k * 25 + i
                    got = c.read_answer()
                    assert got.startswith("REJECT") == (n % 2 == 0), (n, got)
        finally:
            for c in clients:
                c.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postfix_config(folder, smtp_port: int, policy_port: int) -> None:
    """A private Postfix: its own config, queue and data directories, one smtpd on a
    loopback port asking the policy service at RCPT, no service chrooted."""
    import re

    (folder / "queue").mkdir(parents=True)
    (folder / "data").mkdir()
    shutil.chown(folder / "data", "postfix")
    lines = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line.startswith(("#", " ", "\t")) or len(fields) < 8:
            lines.append(line)
            continue
        if fields[0] == "smtp" and fields[1] == "inet":
            fields[0] = f"127.0.0.1:{smtp_port}"
        elif fields[1] == "inet":
            continue
        fields[4] = "n"  # not chrooted: the private queue holds no copy of /etc
        lines.append(" ".join(fields))
    (folder / "master.cf").write_text("\n".join(lines) + "\n")
    main = {
        "compatibility_level": "3.6",
        "queue_directory": str(folder / "queue"),
        "data_directory": str(folder / "data"),
        "myhostname": "relay.test",
        "mydestination": "",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "smtpd_recipient_restrictions": f"check_policy_service inet:127.0.0.1:{policy_port}",
        "smtpd_policy_service_default_action": "DEFER_IF_PERMIT 4.3.5 policy unavailable",
        "default_transport": "discard:never delivered by this test",
        "relay_transport": "discard:never delivered by this test",
        "maillog_file": str(folder / "maillog"),
        "maillog_file_prefixes": str(folder),
        "alias_maps": "",
        "alias_database": "",
        "smtputf8_enable": "no",
    }
    (folder / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
    assert not re.search(r"\s", str(folder)), "postfix paths must have no spaces"


@pytest.mark.skipif(not shutil.which("postfix"), reason="Postfix is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="Postfix's master runs as root")
def test_a_real_postfix_rejects_a_blocked_recipient_at_rcpt(tmp_path):
    import smtplib
    import subprocess
    import time

    url = f"sqlite:///{tmp_path / 'b.db'}"
    with running(url) as (sup, policy_port):
        sup.block(["gone@example.com"])
        smtp_port = _free_port()
        # Postfix's daemons drop to the postfix user, who cannot enter pytest's 0700
        # temporary folders: a folder of its own, readable on the way in.
        config = Path(tempfile.mkdtemp(prefix="bounced-postfix-"))
        config.chmod(0o755)
        _postfix_config(config, smtp_port, policy_port)
        started = subprocess.run(
            ["postfix", "-c", str(config), "start"], capture_output=True, text=True
        )
        assert started.returncode == 0, started.stderr
        try:
            for _ in range(100):  # until smtpd listens (no timing assert: just a wait)
                try:
                    smtp = smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                pytest.fail(f"Postfix did not listen; log: {(config / 'maillog').read_text()}")
            with smtp:
                smtp.ehlo("client.test")
                smtp.mail("news@sender.test")
                code, text = smtp.rcpt("gone@example.com")
                assert code == 554 and b"5.1.1" in text and b"suppression list" in text, text
                fresh = smtp.rcpt("fresh@example.com")
                assert fresh[0] == 250, fresh
        finally:
            subprocess.run(["postfix", "-c", str(config), "stop"], capture_output=True)
            shutil.rmtree(config, ignore_errors=True)
