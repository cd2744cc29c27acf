"""The spool on real files: what is acknowledged is kept whole; partial writes never surface."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from bounced.spool import Envelope, Spool

ENV = Envelope("mailer-daemon@example.net", ("bounces+abc@b.example.com",), "127.0.0.1", "mx")


def test_put_claim_finish(tmp_path):
    spool = Spool(tmp_path)
    first = spool.put(b"one\r\nline\n", ENV)
    second = spool.put(b"two", ENV)
    assert spool.pending() == [first, second]
    items = list(spool.claim_all())
    assert [(i.id, i.raw) for i in items] == [(first, b"one\r\nline\n"), (second, b"two")]
    assert items[0].envelope.rcpt_tos == ENV.rcpt_tos
    assert items[0].envelope.received_at is not None
    assert spool.pending() == []
    spool.finish(first, keep=True)
    spool.finish(second, keep=False)
    assert os.listdir(spool.dir("done")) == [first]
    assert os.listdir(spool.dir("cur")) == []
    assert spool.read("done", first).raw == b"one\r\nline\n"


def test_suspect_is_kept(tmp_path):
    spool = Spool(tmp_path)
    sid = spool.put(b"forged", ENV)
    spool.claim(sid)
    spool.finish(sid, keep=False, suspect=True)
    assert spool.read("suspect", sid).raw == b"forged"


def test_claim_twice_gives_none(tmp_path):
    spool = Spool(tmp_path)
    sid = spool.put(b"x", ENV)
    assert spool.claim(sid) is not None
    assert spool.claim(sid) is None


def test_recover_puts_back_claimed_and_drops_partial(tmp_path):
    spool = Spool(tmp_path)
    sid = spool.put(b"claimed by a process that died", ENV)
    spool.claim(sid)
    (spool.dir("tmp") / "partial").write_bytes(b'{"mail_from": "x", "rcpt')
    assert Spool(tmp_path).recover() == 1
    assert spool.pending() == [sid]
    assert os.listdir(spool.dir("tmp")) == []


@given(st.binary(max_size=2000), st.text(max_size=30), st.lists(st.text(max_size=30), max_size=3))
@settings(max_examples=50, deadline=None)
def test_bytes_and_envelope_round_trip(tmp_path_factory, raw, sender, rcpts):
    spool = Spool(tmp_path_factory.mktemp("spool"))
    envelope = Envelope(sender, tuple(rcpts), "::1")
    item = spool.claim(spool.put(raw, envelope))
    assert item.raw == raw
    assert (item.envelope.mail_from, item.envelope.rcpt_tos) == (sender, tuple(rcpts))


WRITER = """
import sys
from bounced.spool import Envelope, Spool
spool = Spool(sys.argv[1])
body = b"x" * 200_000
i = 0
while True:
    spool.put(body + str(i).encode(), Envelope("a@b", ("c@d",)))
    print(i, flush=True)
    i += 1
"""


def test_killed_writer_leaves_only_whole_messages(tmp_path):
    """kill -9 in the middle of a burst of writes: every file in new/ is whole, every
    message reported written is there, and a restart drops the half-written one."""
    argv = [sys.executable, "-c", WRITER, str(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        done = [proc.stdout.readline() for _ in range(20)]
        time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        written = {int(line) for line in done + proc.stdout.readlines() if line.strip()}
    spool = Spool(tmp_path)
    spool.recover()
    found = set()
    for item in spool.claim_all():
        assert item.raw.startswith(b"x" * 200_000)
        found.add(int(item.raw[200_000:]))
        assert item.envelope.rcpt_tos == ("c@d",)
    assert written <= found
    assert os.listdir(spool.dir("tmp")) == []
