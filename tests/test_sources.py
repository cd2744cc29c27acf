"""bounced.inputs.sources against real files, directories, mboxes, Maildirs and streams."""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounced.inputs.sources import (
    File,
    Message,
    Unreadable,
    find_sources,
    iter_sources,
    read_files,
    split_mbox,
)

FROM_LINE = b"From MAILER-DAEMON Thu Apr 29 23:34:45 2015\n"


def message(n: int) -> bytes:
    return f"From: a{n}@example.com\nSubject: message {n}\n\nbody {n}\n".encode()


def mbox_of(*messages: bytes) -> bytes:
    """What an mboxrd writer produces: From_ line, quoted body, blank line."""
    quoted = (re.sub(rb"(?m)^(>*From )", rb">\1", m) for m in messages)
    return b"".join(FROM_LINE + m + b"\n" for m in quoted)


def sources(*paths: Path | str, stdin: bytes = b"") -> list[Message | Unreadable]:
    return list(iter_sources([str(p) for p in paths], stdin=io.BytesIO(stdin)))


def names(items: list[Message | Unreadable]) -> list[str]:
    return [item.name for item in items]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_file_is_one_message_with_its_exact_bytes(tmp_path: Path) -> None:
    raw = b"Subject: x\r\n\r\nFrom the start\r\n\x00\xff"
    path = write(tmp_path / "one.eml", raw)
    assert sources(path) == [Message(str(path), raw)]


def test_a_directory_is_walked_recursively_in_name_order(tmp_path: Path) -> None:
    for rel in ("b/2.eml", "a/z/1.eml", "a/0.eml", "c.eml", "a/y.eml"):
        write(tmp_path / rel, message(len(rel)))
    expected = ["a/0.eml", "a/y.eml", "a/z/1.eml", "b/2.eml", "c.eml"]
    assert names(sources(tmp_path)) == [str(tmp_path / rel) for rel in expected]


def test_an_mbox_is_split_into_named_unquoted_entries(tmp_path: Path) -> None:
    first = b"Subject: one\n\n>From the quoted line\nFrom here on, not a separator\n"
    second = b"Subject: two\n\n>>From twice quoted\n\nlast line after a blank\n"
    third = b"Subject: three\n\nFrom: header-like body line\n"
    path = write(tmp_path / "box", mbox_of(first, second, third))
    assert sources(path) == [
        Message(f"{path}#1", first),
        Message(f"{path}#2", second),
        Message(f"{path}#3", third),
    ]


def test_mbox_entries_split_without_a_blank_line_and_with_crlf(tmp_path: Path) -> None:
    # Some writers concatenate entries without the blank line; some write CRLF.
    data = (
        b"From a@example.com Mon Jan  1 00:00:00 2024\r\nSubject: one\r\n\r\nbody\r\n"
        b"From b@example.com Tue Jan  2 00:00:00 2024\r\nSubject: two\r\n\r\nbody\r\n\r\n"
        b"From - Wed Jan  3 00:00:00 2024\r\nSubject: three\r\n"
    )
    path = write(tmp_path / "crlf.mbox", data)
    assert [item.raw for item in sources(path)] == [
        b"Subject: one\r\n\r\nbody\r\n",
        b"Subject: two\r\n\r\nbody\r\n",
        b"Subject: three\r\n",
    ]


def test_a_single_message_starting_with_a_from_line_is_an_mbox_of_one(tmp_path: Path) -> None:
    path = write(tmp_path / "saved.eml", FROM_LINE + message(1))
    assert sources(path) == [Message(f"{path}#1", message(1))]


line = st.one_of(
    st.sampled_from(
        [b"From x@example.com Mon Jan  1 00:00:00 2024", b"From ", b">From ", b">>From x", b""]
    ),
    st.binary(max_size=20).filter(lambda b: b"\n" not in b),
)
mail = st.lists(line, max_size=6).map(lambda lines: b"".join(x + b"\n" for x in lines))


@given(st.lists(mail, min_size=1, max_size=5))
def test_split_mbox_gives_back_what_an_mboxrd_writer_wrote(messages: list[bytes]) -> None:
    stream = io.BytesIO(mbox_of(*messages))
    assert [m.raw for m in split_mbox("box", stream)] == messages


def test_a_maildir_gives_cur_and_new_and_subfolders_not_tmp(tmp_path: Path) -> None:
    box = tmp_path / "Maildir"
    cur = write(box / "cur" / "1700000000.1.host:2,S", message(1))
    new = write(box / "new" / "1700000001.2.host", message(2))
    write(box / "tmp" / "1700000002.3.host", b"half-written")
    write(box / "dovecot-uidlist", b"3 V1 N4\n")
    for part in ("new", "tmp"):
        (box / ".Sent" / part).mkdir(parents=True)
    sent = write(box / ".Sent" / "cur" / "1700000003.4.host:2,S", message(3))
    assert sources(tmp_path) == [
        Message(str(cur), message(1)),
        Message(str(new), message(2)),
        Message(str(sent), message(3)),
    ]


def test_stdin_is_one_message_or_an_mbox() -> None:
    assert sources("-", stdin=message(1)) == [Message("-", message(1))]
    assert sources("-", stdin=mbox_of(message(1), message(2))) == [
        Message("-#1", message(1)),
        Message("-#2", message(2)),
    ]


def test_unreadable_paths_are_reported_in_place_and_the_rest_is_read(tmp_path: Path) -> None:
    good = write(tmp_path / "d" / "a.eml", message(1))
    (tmp_path / "d" / "b-dangling").symlink_to(tmp_path / "gone")
    later = write(tmp_path / "d" / "c.eml", message(2))
    missing = tmp_path / "missing.eml"
    items = sources(missing, tmp_path / "d")
    assert items == [
        Unreadable(str(missing), "No such file or directory"),
        Message(str(good), message(1)),
        Unreadable(str(tmp_path / "d" / "b-dangling"), "No such file or directory"),
        Message(str(later), message(2)),
    ]


def test_files_and_directories_without_permission_are_unreadable(tmp_path: Path) -> None:
    locked_file = write(tmp_path / "a.eml", message(1))
    locked_dir = tmp_path / "b"
    write(locked_dir / "x.eml", message(2))
    locked_file.chmod(0)
    locked_dir.chmod(0)
    if os.access(locked_file, os.R_OK):
        pytest.skip("this user reads files whatever their mode (root with CAP_DAC_OVERRIDE)")
    try:
        assert sources(tmp_path) == [
            Unreadable(str(locked_file), "Permission denied"),
            Unreadable(str(locked_dir), "Permission denied"),
        ]
    finally:
        locked_dir.chmod(0o755)


def test_a_symlink_loop_is_walked_once_and_a_fifo_is_not_opened(tmp_path: Path) -> None:
    path = write(tmp_path / "d" / "a.eml", message(1))
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    os.mkfifo(tmp_path / "d" / "pipe")
    assert sources(tmp_path / "d") == [Message(str(path), message(1))]


def test_a_fifo_named_on_the_command_line_is_read_to_its_end(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    data = mbox_of(message(1), message(2)) * 20_000  # several times the pipe's buffer

    def feed() -> None:
        with pipe.open("wb") as out:
            out.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        found = sources(pipe)
    finally:
        writer.join()
    assert len(found) == 40_000
    assert found[-1] == Message(f"{pipe}#40000", message(2))


def test_a_large_mbox_is_split_as_a_small_one_is(tmp_path: Path) -> None:
    """Files up to 4 MiB are read whole, larger ones streamed: the same entries."""
    entries = [message(n) + b"x" * 1000 + b"\n" for n in range(6000)]  # about 6 MiB
    large = write(tmp_path / "large.mbox", mbox_of(*entries))
    small = write(tmp_path / "small.mbox", mbox_of(*entries[:100]))
    assert large.stat().st_size > 4 << 20 > small.stat().st_size
    assert [m.raw for m in sources(large)][:100] == [m.raw for m in sources(small)]
    assert [m.raw for m in sources(large)] == entries


class FailingStream(io.BytesIO):
    """A stream whose device fails after its first `good` bytes have been read."""

    def __init__(self, good: bytes) -> None:
        super().__init__(good)
        self.good = len(good)

    def readline(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.good:
            raise OSError(5, "Input/output error")
        return super().readline(size)

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def test_a_read_error_inside_an_mbox_keeps_the_entries_already_read() -> None:
    stream = FailingStream(mbox_of(message(1), message(2)))
    items = list(iter_sources(["-"], stdin=stream))
    assert items == [
        Message("-#1", message(1)),
        Unreadable("-", "Input/output error"),
    ]


def test_sources_are_produced_lazily(tmp_path: Path) -> None:
    first = write(tmp_path / "a.eml", message(1))
    later = tmp_path / "b.eml"
    stream = iter_sources([str(first), str(later)])
    assert next(stream) == Message(str(first), message(1))
    write(later, message(2))  # written after the first message was handed out
    assert list(stream) == [Message(str(later), message(2))]


def test_small_files_are_found_unread_and_large_ones_are_read_where_found(
    tmp_path: Path,
) -> None:
    """`find_sources` leaves a file of up to 256 KiB to whoever parses it; a larger one
    (an mbox of many messages, to be shared out) is read in place; what `read_files`
    makes of it all is what `iter_sources` reads, item for item."""
    small = write(tmp_path / "d" / "a.eml", message(1))
    short_mbox = write(tmp_path / "d" / "b.mbox", mbox_of(message(2), message(3)))
    entries = [message(n) + b"x" * 1000 + b"\n" for n in range(300)]  # about 300 KiB
    long_mbox = write(tmp_path / "d" / "c.mbox", mbox_of(*entries))
    (tmp_path / "d" / "d-dangling").symlink_to(tmp_path / "gone")
    named = write(tmp_path / "named.eml", message(4))
    paths = [str(tmp_path / "d"), str(named), str(tmp_path / "missing")]
    found = list(find_sources(paths))
    assert found[:2] == [
        File(str(small), small.stat().st_size),
        File(str(short_mbox), short_mbox.stat().st_size),
    ]
    assert [item.name for item in found[2:302]] == [f"{long_mbox}#{n}" for n in range(1, 301)]
    assert found[302:] == [
        Unreadable(str(tmp_path / "d" / "d-dangling"), "No such file or directory"),
        File(str(named), named.stat().st_size),
        Unreadable(str(tmp_path / "missing"), "No such file or directory"),
    ]
    assert list(read_files(found)) == list(iter_sources(paths))


def test_a_file_gone_between_the_listing_and_its_turn_is_unreadable(tmp_path: Path) -> None:
    first = write(tmp_path / "d" / "a.eml", message(1))
    gone = write(tmp_path / "d" / "b.eml", message(2))
    found = find_sources([str(tmp_path / "d")])
    assert next(found) == File(str(first), first.stat().st_size)
    gone.unlink()  # the directory was listed already
    assert list(found) == [Unreadable(str(gone), "No such file or directory")]
