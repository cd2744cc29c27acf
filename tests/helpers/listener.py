"""`bounced serve` as a real process on a free loopback port, and waiting for what its
worker does asynchronously."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bounced.errors import UnknownAddress
from bounced.suppressions import Suppressions
from helpers.dsn import make_dsn
from helpers.net import free_port

__all__ = ["DOMAIN", "RETURN_PATH", "SECRET", "WAIT", "Server", "burst", "events", "eventually"]

DOMAIN = "b.example.com"
SECRET = "test-secret"
RETURN_PATH = f"bounces@{DOMAIN}"
WAIT = 30.0


class Server:
    """One `bounced serve` process on a free loopback port, its log in a file."""

    def __init__(self, url: str, root: Path, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.root = root
        self.spool = root / "spool"
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
        self.env = base | {
            "BOUNCED_VERP_SECRET": SECRET,
            "BOUNCED_VERP_DOMAIN": DOMAIN,
            "BOUNCED_LISTENER_LOG_FORMAT": "json",
        }
        self.env |= env or {}
        self.proc: subprocess.Popen | None = None
        self.log = root / "serve.log"

    def start(self) -> Server:
        argv = [sys.executable, "-m", "bounced", "--database-url", self.url, "serve"]
        argv += ["--port", str(self.port), "--domain", DOMAIN, "--spool-dir", str(self.spool)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stderr=log, cwd=self.root, env=self.env)
        deadline = time.monotonic() + WAIT
        while b'"listening"' not in self.log.read_bytes().split(b'"replay"')[-1]:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "listener did not start"
            time.sleep(0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(WAIT)

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=WAIT)

    def send(self, raw: bytes, rcpt: str = RETURN_PATH) -> str:
        with self.smtp() as client:
            client.sendmail("<>", [rcpt], raw)
        return rcpt

    def folder(self, name: str) -> list[str]:
        return sorted(os.listdir(self.spool / name))


def eventually(check, what: str):
    """Poll `check` until it returns a true value (the worker ingests asynchronously)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            if result := check():
                return result
        except UnknownAddress:
            pass
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def events(store: Suppressions, address: str) -> list[dict]:
    return store.show(address)["events"]


def burst(srv: Server, count: int, start: int = 0) -> list[str]:
    """Send `count` distinct DSNs from 8 threads; return the recipients that got 250."""

    def one(i: int) -> str | None:
        rcpt = f"user{i}@example.org"
        try:
            srv.send(make_dsn(rcpt, original_id=f"<o{i}@s>", message_id=f"<d{i}@x>"))
        except (OSError, smtplib.SMTPException):
            return None
        return rcpt

    with ThreadPoolExecutor(8) as pool:
        return [r for r in pool.map(one, range(start, start + count)) if r]
