"""`bounced api` and other bounced commands as real processes, for the tests that
drive a server from outside (the HTTP API, the webhooks, health ports)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import httpx

from helpers.net import free_port

__all__ = [
    "BOUNCED_ARGV",
    "HOME",
    "api_server",
    "bounced",
    "bounced_env",
    "process",
    "token",
    "wait_for",
]

#: Where the processes run: a folder without a config.toml (the defaults apply).
HOME = tempfile.mkdtemp(prefix="bounced-api-test-")


BOUNCED_ARGV = [sys.executable, "-m", "bounced"]


def bounced(*args: str, url: str, env: dict[str, str] | None = None, cwd=None):
    return subprocess.run(
        [*BOUNCED_ARGV, "--database-url", url, *args],
        capture_output=True,
        text=True,
        env=env or bounced_env(),
        cwd=cwd or HOME,
        timeout=120,
    )


def bounced_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    return env | extra


def token(url: str, name: str, *scopes: str) -> str:
    done = bounced("token", "create", name, *(f"--scope={s}" for s in scopes), url=url)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()  # the token alone on stdout
    return line


def wait_for(proc: subprocess.Popen, base: str, path: str = "/healthz") -> None:
    for _ in range(600):  # a wait for the port, not a timing assert
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(base + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{base} never answered")


@contextmanager
def process(argv: list[str], base: str, env: dict[str, str], cwd=None):
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd or HOME,
    )
    try:
        wait_for(proc, base)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stderr.close()


@contextmanager
def api_server(url: str, *extra: str, env: dict[str, str] | None = None):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [*BOUNCED_ARGV, "--database-url", url, "api", "--port", str(port)]
    with process([*argv, *extra], base, env or bounced_env()):
        yield base
