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
    files = spool.pending()
    assert [f"{name}-0" for name in files] == [first, second]
    items = list(spool.claim_all())
    assert [(i.id, i.raw) for i in items] == [(first, b"one\r\nline\n"), (second, b"two")]
    assert items[0].envelope.rcpt_tos == ENV.rcpt_tos
    assert items[0].envelope.received_at is not None
    assert spool.pending() == []
    spool.finish(files[0], keep=True)
    spool.finish(files[1], keep=False)
    assert os.listdir(spool.dir("done")) == [files[0]]
    assert os.listdir(spool.dir("cur")) == []
    assert spool.read("done", first).raw == b"one\r\nline\n"


def test_a_batch_is_one_file(tmp_path):
    """Group commit: several messages, one file (one fsync), each with its own id."""
    spool = Spool(tmp_path)
    other = Envelope("<>", ("bounces@b.example.com",), "192.0.2.1")
    ids = spool.put_many([(b"first\n", ENV), (b"", other), (b"third", ENV)])
    (name,) = spool.pending()
    assert ids == [f"{name}-0", f"{name}-1", f"{name}-2"]
    items = spool.claim(name)
    assert [(i.id, i.raw, i.envelope.client) for i in items] == [
        (ids[0], b"first\n", "127.0.0.1"),
        (ids[1], b"", "192.0.2.1"),
        (ids[2], b"third", "127.0.0.1"),
    ]
    spool.finish(name, keep=True)
    assert spool.read("done", ids[2]).raw == b"third"


def test_suspect_is_kept(tmp_path):
    spool = Spool(tmp_path)
    _fine, forged = spool.put_many([(b"fine", ENV), (b"forged", ENV)])
    (name,) = spool.pending()
    items = spool.claim(name)
    spool.finish(name, keep=False, suspects=[items[1]])
    assert os.listdir(spool.dir("suspect")) == [forged]
    assert spool.read("suspect", forged).raw == b"forged"
    assert spool.read("suspect", forged).id == forged
    assert os.listdir(spool.dir("done")) == []


def test_claim_twice_gives_none(tmp_path):
    spool = Spool(tmp_path)
    spool.put(b"x", ENV)
    (name,) = spool.pending()
    assert spool.claim(name) is not None
    assert spool.claim(name) is None


CLAIMER = """
import sys
from bounced.spool import Spool
spool = Spool(sys.argv[1])
print(*[item.id for item in spool.claim_all()], flush=True)
sys.stdin.read()  # holds its claims until told to end (or killed)
"""


def _claimer(root) -> tuple[subprocess.Popen, list[str]]:
    """A process that claims every pending file and holds them; and the ids it got."""
    argv = [sys.executable, "-c", CLAIMER, str(root)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().split()


def test_recover_puts_back_claimed_and_drops_partial(tmp_path):
    spool = Spool(tmp_path)
    sid = spool.put(b"claimed by a process that died", ENV)
    (name,) = spool.pending()
    proc, ids = _claimer(tmp_path)
    assert ids == [sid]
    proc.kill()
    proc.communicate()
    (spool.dir("tmp") / "partial").write_bytes(b'{"mail_from": "x", "rcpt')
    assert os.listdir(spool.dir("cur")) == [name]
    assert Spool(tmp_path).recover() == 1
    assert spool.pending() == [name]
    assert [i.id for i in spool.claim_all()] == [sid]
    assert os.listdir(spool.dir("tmp")) == []


def test_recover_leaves_alone_what_a_live_process_holds(tmp_path):
    """A worker starting beside another (a listener's, or a second `bounced worker
    --spool`) takes back only what nobody holds: never a file being ingested."""
    spool = Spool(tmp_path)
    held = spool.put(b"held by a live worker", ENV)
    proc, ids = _claimer(tmp_path)
    try:
        assert ids == [held]
        free = spool.put(b"claimed here, by this process", ENV)
        (name,) = spool.pending()
        assert [i.id for i in spool.claim(name)] == [free]
        assert Spool(tmp_path).recover() == 0  # both held: one elsewhere, one here
        assert spool.pending() == [] and len(os.listdir(spool.dir("cur"))) == 2
        assert Spool(tmp_path).claim(held.rpartition("-")[0]) is None
    finally:
        proc.communicate("")
    assert Spool(tmp_path).recover() == 1  # the claimer ended without finishing
    assert [i.id for i in Spool(tmp_path).claim_all()] == [held]


def test_processes_claiming_one_spool_take_each_file_once(tmp_path):
    spool = Spool(tmp_path)
    written = {spool.put(str(i).encode(), ENV) for i in range(300)}
    argv = [sys.executable, "-c", CLAIMER, str(tmp_path)]
    procs = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    claimed = [proc.communicate("")[0].split() for proc in procs]
    together = [sid for ids in claimed for sid in ids]
    assert sorted(together) == sorted(written)  # each once, none lost


def test_recover_never_drops_a_file_being_written(tmp_path):
    """Another process starting (and cleaning tmp/) while the listener writes: no write
    loses its file (the writer would fail on its rename)."""
    argv = [sys.executable, "-c", WRITER, str(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        proc.stdout.readline()
        for _ in range(300):
            Spool(tmp_path).recover()
        lines = [proc.stdout.readline() for _ in range(5)]
        assert proc.poll() is None and all(line.strip() for line in lines)
        proc.kill()


def test_reads_a_file_of_the_one_message_format(tmp_path):
    """Spools written before batches (an envelope line without `size`, then the bytes)
    are replayed as they are."""
    spool = Spool(tmp_path)
    head = b'{"mail_from": "<>", "rcpt_tos": ["bounces@b.example.com"], "client": "::1"}'
    (spool.dir("new") / "00000000000000000001.1.abc").write_bytes(head + b"\nbody\n{x}\n")
    (item,) = spool.claim_all()
    assert (item.id, item.raw, item.envelope.client) == (
        "00000000000000000001.1.abc-0",
        b"body\n{x}\n",
        "::1",
    )


@given(st.binary(max_size=2000), st.text(max_size=30), st.lists(st.text(max_size=30), max_size=3))
@settings(max_examples=50, deadline=None)
def test_bytes_and_envelope_round_trip(tmp_path_factory, raw, sender, rcpts):
    spool = Spool(tmp_path_factory.mktemp("spool"))
    envelope = Envelope(sender, tuple(rcpts), "::1")
    spool.put(raw, envelope)
    (item,) = spool.claim_all()
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
