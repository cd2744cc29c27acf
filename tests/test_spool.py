"""The spool on real files: what is acknowledged is kept whole; partial writes never surface."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounced.listener.spool import Envelope, Spool, Spooled

ENV = Envelope("mailer-daemon@example.net", ("bounces+abc@b.example.com",), "127.0.0.1", "mx")


def sealed(spool: Spool, messages: list[tuple[bytes, Envelope]]) -> list[str]:
    """Messages spooled in a file of their own, ready for a worker: their ids."""
    ids = spool.append(messages)
    spool.seal()
    return ids


def claim_all(spool: Spool) -> list[Spooled]:
    """Claim every pending file, as a worker does; their messages, oldest first."""
    return [item for name in spool.pending() for item in spool.claim(name) or ()]


def test_put_claim_finish(tmp_path):
    spool = Spool(tmp_path)
    first = sealed(spool, [(b"one\r\nline\n", ENV)])[0]
    second = sealed(spool, [(b"two", ENV)])[0]
    files = spool.pending()
    assert [f"{name}-0" for name in files] == [first, second]
    items = list(claim_all(spool))
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
    ids = sealed(spool, [(b"first\n", ENV), (b"", other), (b"third", ENV)])
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


def test_appends_share_a_segment_until_it_is_sealed(tmp_path):
    """The listener's batches go to one open segment, one flush each; the worker sees
    the segment once it is sealed."""
    spool = Spool(tmp_path)
    first = spool.append([(b"a", ENV)])
    second = spool.append([(b"b", ENV), (b"c", ENV)])
    assert spool.unsealed and not spool.ripe
    assert spool.pending() == []
    assert spool.seal() and not spool.seal()
    (name,) = spool.pending()
    assert first + second == [f"{name}-0", f"{name}-1", f"{name}-2"]
    assert [i.raw for i in spool.claim(name)] == [b"a", b"b", b"c"]
    assert os.listdir(spool.dir("open")) == []


def _torn(tmp_path, tail: bytes) -> tuple[Spool, list[str], str]:
    """A segment with two whole records and `tail` after them, as a writer process that
    died mid-append leaves it (its lock gone with it); then a start."""
    script = (
        "import os, sys\n"
        "from bounced.listener.spool import Envelope, Spool\n"
        "spool = Spool(sys.argv[1])\n"
        f"ids = spool.append([(b'kept one', {ENV!r}), (b'kept two', {ENV!r})])\n"
        "print(' '.join(ids), flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True)
    ids = out.stdout.decode().split()
    (name,) = os.listdir(Spool(tmp_path).dir("open"))
    with open(Spool(tmp_path).dir("open") / name, "ab") as torn:
        torn.write(tail)
    return Spool(tmp_path), ids, name


@pytest.mark.parametrize(
    "tail",
    [
        b'{"mail_from": "<>", "rcpt',  # the head cut short
        b'{"mail_from": "<>", "size": 100, "crc32": 1}\nonly part of the',  # the bytes
        b'{"mail_from": "<>", "size": 4, "crc32": 1}\n\0\0\0\0',  # size set, data not
        b"\0" * 64,  # the file grew, nothing written
    ],
)
def test_recover_cuts_a_torn_segment_back_to_its_whole_records(tmp_path, tail):
    spool, ids, name = _torn(tmp_path, tail)
    whole = (spool.dir("open") / name).stat().st_size - len(tail)
    assert spool.recover() == 1
    assert (spool.dir("new") / name).stat().st_size == whole
    kept = [(i.id, i.raw) for i in claim_all(spool)]
    assert kept == [(ids[0], b"kept one"), (ids[1], b"kept two")]


def test_recover_drops_a_segment_with_nothing_whole(tmp_path):
    spool = Spool(tmp_path)
    (spool.dir("open") / "00000000000000000001.1.abc").write_bytes(b'{"mail_from"')
    assert spool.recover() == 0
    assert os.listdir(spool.dir("open")) == os.listdir(spool.dir("new")) == []


def test_suspect_is_kept(tmp_path):
    spool = Spool(tmp_path)
    _fine, forged = sealed(spool, [(b"fine", ENV), (b"forged", ENV)])
    (name,) = spool.pending()
    items = spool.claim(name)
    spool.finish(name, keep=False, suspects=[items[1]])
    assert os.listdir(spool.dir("suspect")) == [forged]
    assert spool.read("suspect", forged).raw == b"forged"
    assert spool.read("suspect", forged).id == forged
    assert os.listdir(spool.dir("done")) == []


def test_claim_twice_gives_none(tmp_path):
    spool = Spool(tmp_path)
    sealed(spool, [(b"x", ENV)])[0]
    (name,) = spool.pending()
    assert spool.claim(name) is not None
    assert spool.claim(name) is None


CLAIMER = """
import sys
from bounced.listener.spool import Spool
spool = Spool(sys.argv[1])
print(*[i.id for name in spool.pending() for i in spool.claim(name) or ()], flush=True)
sys.stdin.read()  # holds its claims until told to end (or killed)
"""


def _claimer(root) -> tuple[subprocess.Popen, list[str]]:
    """A process that claims every pending file and holds them; and the ids it got."""
    argv = [sys.executable, "-c", CLAIMER, str(root)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().split()


def test_recover_puts_back_claimed_and_drops_partial(tmp_path):
    spool = Spool(tmp_path)
    sid = sealed(spool, [(b"claimed by a process that died", ENV)])[0]
    (name,) = spool.pending()
    proc, ids = _claimer(tmp_path)
    assert ids == [sid]
    proc.kill()
    proc.communicate()
    (spool.dir("tmp") / "partial").write_bytes(b'{"mail_from": "x", "rcpt')
    assert os.listdir(spool.dir("cur")) == [name]
    assert Spool(tmp_path).recover() == 1
    assert spool.pending() == [name]
    assert [i.id for i in claim_all(spool)] == [sid]
    assert os.listdir(spool.dir("tmp")) == []


def test_recover_leaves_alone_what_a_live_process_holds(tmp_path):
    """A worker starting beside another (a listener's, or a second `bounced worker
    --spool`) takes back only what nobody holds: never a file being ingested."""
    spool = Spool(tmp_path)
    held = sealed(spool, [(b"held by a live worker", ENV)])[0]
    proc, ids = _claimer(tmp_path)
    try:
        assert ids == [held]
        free = sealed(spool, [(b"claimed here, by this process", ENV)])[0]
        (name,) = spool.pending()
        assert [i.id for i in spool.claim(name)] == [free]
        assert Spool(tmp_path).recover() == 0  # both held: one elsewhere, one here
        assert spool.pending() == [] and len(os.listdir(spool.dir("cur"))) == 2
        assert Spool(tmp_path).claim(held.rpartition("-")[0]) is None
    finally:
        proc.communicate("")
    assert Spool(tmp_path).recover() == 1  # the claimer ended without finishing
    assert [i.id for i in claim_all(Spool(tmp_path))] == [held]


APPENDER = """
import sys
from bounced.listener.spool import Envelope, Spool
spool = Spool(sys.argv[1])
env = Envelope("mailer-daemon@example.net", ("b@b.example.com",))
print(*spool.append([(b"one", env), (b"two", env)]), flush=True)
sys.stdin.read()  # a listener between batches: its segment open, not yet sealed
"""


def test_recover_leaves_a_live_listeners_open_segment_alone(tmp_path):
    argv = [sys.executable, "-c", APPENDER, str(tmp_path)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ids = proc.stdout.readline().split()
        (name,) = os.listdir(Spool(tmp_path).dir("open"))
        size = (Spool(tmp_path).dir("open") / name).stat().st_size
        assert Spool(tmp_path).recover() == 0  # a worker starting beside the listener
        assert os.listdir(Spool(tmp_path).dir("open")) == [name]
        assert (Spool(tmp_path).dir("open") / name).stat().st_size == size
    finally:
        proc.communicate("")  # ends without sealing, as a killed listener would
    assert Spool(tmp_path).recover() == 1
    assert [i.id for i in claim_all(Spool(tmp_path))] == ids


def test_processes_claiming_one_spool_take_each_file_once(tmp_path):
    spool = Spool(tmp_path)
    written = {sealed(spool, [(str(i).encode(), ENV)])[0] for i in range(300)}
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
    (item,) = claim_all(spool)
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
    sealed(spool, [(raw, envelope)])
    (item,) = claim_all(spool)
    assert item.raw == raw
    assert (item.envelope.mail_from, item.envelope.rcpt_tos) == (sender, tuple(rcpts))


WRITER = """
import sys
from bounced.listener.spool import Envelope, Spool
spool = Spool(sys.argv[1])
body = b"x" * 200_000
i = 0
while True:
    spool.append([(body + str(i).encode(), Envelope("a@b", ("c@d",)))])
    print(i, flush=True)
    if spool.ripe:
        spool.seal()
    i += 1
"""


def test_killed_writer_leaves_only_whole_messages(tmp_path):
    """kill -9 in the middle of a burst of appends (segments sealed as they fill): every
    message reported written is there after a restart, whole, and nothing else is."""
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
    for item in claim_all(spool):
        assert item.raw.startswith(b"x" * 200_000)
        found.add(int(item.raw[200_000:]))
        assert item.envelope.rcpt_tos == ("c@d",)
    assert written <= found <= written | {max(written) + 1}
    assert os.listdir(spool.dir("open")) == []


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=12), st.floats(0, 1))
@settings(max_examples=60, deadline=None)
def test_a_segment_cut_anywhere_gives_back_the_whole_records(tmp_path_factory, messages, at):
    """A crash may stop an append at any byte: what comes back on start is every
    message whose record was wholly on the disk, in order, and nothing else."""
    root = tmp_path_factory.mktemp("spool")
    spool = Spool(root)
    ids, ends = [], []
    for raw in messages:
        ids += spool.append([(raw, ENV)])
        (name,) = os.listdir(spool.dir("open"))
        ends.append((spool.dir("open") / name).stat().st_size)
    spool.seal()
    cut = round(ends[-1] * at)
    # The segment as a writer that died mid-append leaves it: in open/, cut short.
    os.rename(spool.dir("new") / name, spool.dir("open") / name)
    os.truncate(spool.dir("open") / name, cut)
    Spool(root).recover()
    whole = sum(end <= cut for end in ends)
    expected = list(zip(ids, messages, strict=True))[:whole]
    assert [(item.id, item.raw) for item in claim_all(Spool(root))] == expected
