"""Parse a stream of messages, in this process or in a pool of worker processes.

Results come back in input order whatever the number of workers, so two runs over
the same input give the same output. The input is consumed lazily: at most a few
chunks per worker are in flight, so a huge tree never sits in memory at once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeAlias, TypeVar

from bounced.dsn import Report, parse
from bounced.inputs.sources import File, Found, Message, Skipped, Unreadable, read_files

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.connection import Connection

__all__ = ["Parsed", "Result", "map_results", "parse_sources"]

#: Messages per task sent to a worker: enough to make the round trip cheap...
_CHUNK_MESSAGES = 64
#: ...but a chunk of large messages is cut earlier, so workers stay evenly loaded.
_CHUNK_BYTES = 4 << 20
#: Chunks in flight per worker: keeps every worker busy while the next is read.
_CHUNKS_PER_WORKER = 4
#: The workers' share of chunks (see `_shared`) at least, when this process parses
#: none because it has other work between its reads (ingest records 400 messages at
#: a time): with fewer, the workers run dry while it records (20 000 notices into
#: SQLite with one worker: 13 s with a share of 8 chunks, 11-12 s with 16).
_CHUNKS_AHEAD_OF_A_BUSY_READER = 16


class Parsed(NamedTuple):
    """A message and what the parser made of it."""

    message: Message
    report: Report


#: What `parse_sources` yields per input item.
Result = Parsed | Unreadable | Skipped
_T = TypeVar("_T")
_O = TypeVar("_O")


def parse_sources(
    sources: Iterable[Found], jobs: int = 1, *, parse_here: bool = True
) -> Generator[Result, None, None]:
    """Parse every `Message` in `sources`, and every message of each `File` (read by
    the process that parses it); `Unreadable` and `Skipped` items pass through in place.

    `jobs` > 1 parses in that many processes: this one and `jobs` - 1 workers; 1
    parses here only. This process parses a chunk whenever the workers have
    enough queued, so it is one of the jobs rather than a dispatcher beside them
    (on two cores, two jobs are two busy processes, not three), and it has work
    while the first worker starts. With `parse_here` False it parses nothing and
    keeps more chunks ahead instead: for a caller whose own work on the results
    is the job it counts (ingest records them while `jobs` - 1 workers parse).
    Should the parser ever raise (its contract says it never does), that message
    comes back as `Unreadable` with the error, and the run goes on.

    With jobs > 1, close the iterator when stopping early (`contextlib.closing`, as
    the commands do): the pool is then shut down in the closing thread, in order,
    rather than whenever the garbage collector finds the suspended generator.

    Workers are forked on Linux while this process runs no other thread, and come
    from a fork server otherwise (see `_start_method`); for the fork server, as with
    any non-fork start method, a calling script must guard its entry point with
    ``if __name__ == "__main__":`` (a script read from standard input cannot use
    jobs > 1 then).
    """
    if jobs <= 1:
        for source in read_files(sources):
            yield _result(source)
        return
    with contextlib.closing(_in_pool(_parse_chunk, sources, jobs, parse_here)) as done:
        for chunk, parsed in done:
            yield from _merged(chunk, parsed)


def map_results(
    then: Callable[[Result], _T],
    sources: Iterable[Found],
    jobs: int = 1,
    *,
    parse_here: bool = True,
) -> Generator[_T, None, None]:
    """`then(result)` for each result of `parse_sources(sources, jobs, ...)`, in order,
    each computed in the process that parsed the message. What crosses between
    processes is then what `then` keeps: `bounced parse` keeps a message's rows,
    not its bytes and its report. With jobs > 1 `then` must pickle (a module's
    function, or a `functools.partial` of one), for a fork server's workers."""
    if jobs <= 1:
        for source in read_files(sources):
            yield then(_result(source))
        return
    with contextlib.closing(
        _in_pool(functools.partial(_then_chunk, then), sources, jobs, parse_here)
    ) as done:
        for _chunk, made in done:
            yield from made


def _in_pool(
    do: Callable[[list[Found]], _O], sources: Iterable[Found], jobs: int, here: bool
) -> Generator[tuple[list[Found], _O], None, None]:
    """Each chunk of `sources` and what `do` made of it, in input order: done by `jobs`
    - 1 workers and, when `here`, by this process too (see `_shared`)."""
    import multiprocessing  # for jobs > 1 only: one job starts faster without
    from concurrent.futures import ProcessPoolExecutor

    method = _start_method()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # No preload: the fork server is up in a few milliseconds and each worker
        # imports the parser itself, in parallel, while this process already parses.
        context.set_forkserver_preload([])
        _start_forkserver_deaf_to_ctrl_c()
    # The workers' lifeline: this process alone holds its writing end, so they read
    # its end of file the moment this process is gone, however it went (see _exit_with).
    lifeline, keep = context.Pipe(duplex=False)
    forked = method == "fork"
    try:
        with ProcessPoolExecutor(
            jobs - 1,
            mp_context=context,
            initializer=_worker_start,
            initargs=(lifeline, keep if forked else None),
        ) as pool:
            yield from _shared(pool, do, sources, jobs - 1, forked, here)
    finally:
        keep.close()
        lifeline.close()


def _start_method() -> str:
    """fork where it is safe, forkserver elsewhere. A forked worker starts at once
    with the parser loaded (a fork server's child imports it again: about a tenth
    of a second of CPU per worker, a tenth of a 4,000-message run). Forking is safe
    on Linux while this process runs no other thread: a thread (a progress bar's
    refresher) could hold a lock that the child would then never see released. The
    pool forks its workers at the first task, before it starts threads of its own."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return "fork"
    return "forkserver"


class _Here(NamedTuple, Generic[_O]):
    """What this process made of a chunk itself."""

    made: _O


#: A chunk done here, or by a worker (its future).
_Work: TypeAlias = "_Here[_O] | Future[_O]"


def _shared(
    pool: ProcessPoolExecutor,
    do: Callable[[list[Found]], _O],
    sources: Iterable[Found],
    workers: int,
    forked: bool,
    here: bool,
) -> Generator[tuple[list[Found], _O], None, None]:
    """The chunks of `sources` done by `pool` and, when `here`, here; in input order.
    A chunk goes to the workers while they have fewer than _CHUNKS_PER_WORKER each
    waiting or running; otherwise this process does it (not `here`: it goes to them
    all the same). Finished chunks at the head come out as soon as they are there,
    and the oldest is waited for once twice the workers' share is held, so a huge
    tree never sits in memory at once."""
    pending: deque[tuple[list[Found], _Work[_O]]] = deque()
    queued = workers * _CHUNKS_PER_WORKER
    if not here:
        queued = max(queued, _CHUNKS_AHEAD_OF_A_BUSY_READER)
    forking = forked
    try:
        for chunk in _chunks(sources):
            if here and sum(1 for _, work in pending if not _finished(work)) >= queued:
                work: _Work[_O] = _Here(do(chunk))
            elif forking:  # the first task forks the workers
                with _deaf_to_ctrl_c():
                    work = pool.submit(do, chunk)
                forking = False
            else:
                work = pool.submit(do, chunk)
            pending.append((chunk, work))
            while pending and (len(pending) > 2 * queued or _finished(pending[0][1])):
                yield _done(*pending.popleft())
        # The input is read: what no worker has started yet is done here instead,
        # last chunk first (the workers take theirs from the front), so the last
        # chunks are not left to the workers while this process waits.
        if here:
            for i in reversed(range(len(pending))):
                chunk, work = pending[i]
                if not isinstance(work, _Here) and work.cancel():
                    pending[i] = (chunk, _Here(do(chunk)))
        while pending:
            yield _done(*pending.popleft())
    except BaseException:
        # Closed early (Ctrl-C, or the caller stopped reading): the queued chunks
        # are dropped, so the pool's shutdown waits only for the ones running.
        for _chunk, work in pending:
            if not isinstance(work, _Here):
                work.cancel()
        raise


def _finished(work: _Work[_O]) -> bool:
    return isinstance(work, _Here) or work.done()


def _done(chunk: list[Found], work: _Work[_O]) -> tuple[list[Found], _O]:
    return chunk, work.made if isinstance(work, _Here) else work.result()


def _chunks(sources: Iterable[Found]) -> Iterator[list[Found]]:
    """Chunks of _CHUNK_MESSAGES items, cut earlier at _CHUNK_BYTES of messages and files."""
    chunk: list[Found] = []
    size = 0
    for source in sources:
        chunk.append(source)
        if isinstance(source, Message):
            size += len(source.raw)
        elif isinstance(source, File):
            size += source.size
        if len(chunk) >= _CHUNK_MESSAGES or size >= _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class _ChunkParsed(NamedTuple):
    """What `parse_sources` gets back for a chunk: only what this process does not hold."""

    #: Each `Message`'s report or the parser's error, in order (its bytes stay here).
    reports: list[Report | str]
    #: Each `File`'s results, in order: read and parsed where the chunk was.
    files: list[list[Result]]


def _parse_chunk(chunk: list[Found]) -> _ChunkParsed:
    reports, files = [], []
    for item in chunk:
        if isinstance(item, Message):
            reports.append(_parsed(item.raw))
        elif isinstance(item, File):
            files.append([_result(source) for source in read_files((item,))])
    return _ChunkParsed(reports, files)


def _merged(chunk: list[Found], parsed: _ChunkParsed) -> Iterator[Result]:
    reports, files = iter(parsed.reports), iter(parsed.files)
    for item in chunk:
        if isinstance(item, Message):
            yield _joined(item, next(reports))
        elif isinstance(item, File):
            yield from next(files)
        else:
            yield item


def _then_chunk(then: Callable[[Result], _T], chunk: list[Found]) -> list[_T]:
    return [then(_result(source)) for source in read_files(chunk)]


def _result(source: Message | Unreadable | Skipped) -> Result:
    return _joined(source, _parsed(source.raw)) if isinstance(source, Message) else source


def _parsed(raw: bytes) -> Report | str:
    """Text rather than the exception itself: text always pickles, an exception may not."""
    try:
        return parse(raw)
    except Exception as exc:
        return f"parser error: {type(exc).__name__}: {exc}"


def _joined(message: Message, parsed: Report | str) -> Parsed | Unreadable:
    if isinstance(parsed, str):
        return Unreadable(message.name, parsed)
    return Parsed(message, parsed)


def _start_forkserver_deaf_to_ctrl_c() -> None:
    """Start the fork server with SIGINT ignored, so that every worker it forks is born
    ignoring it: the fork server gives each child the handlers it was itself started
    with, and a Ctrl-C landing before a worker's initializer ran would kill it with a
    traceback. (Only the main thread may set handlers; a server already running is
    left as it is.)"""
    import threading
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    with _deaf_to_ctrl_c():
        forkserver.ensure_running()


@contextlib.contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """SIGINT ignored meanwhile: a child forked now is born ignoring it (a Ctrl-C
    landing before its initializer ran would kill it with a traceback)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _worker_start(lifeline: Connection, keep: Connection | None) -> None:
    """Ctrl-C is the parent's to handle (a worker that died of it would print a
    traceback); the parent's end is the worker's (see `_exit_with`). A forked
    worker got a copy of the writing end, `keep`: closed, or the lifeline would
    never end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if keep is not None:
        keep.close()
    threading.Thread(target=_exit_with, args=(lifeline,), daemon=True).start()


def _exit_with(lifeline: Connection) -> None:
    """Wait, blocked and without the GIL, for the parent's end of the lifeline, then
    end this worker. A worker is the fork server's child, not the parent's, and it
    holds both ends of its own task queue, so it would never learn of a parent
    killed outright and wait forever (and with it the fork server, which stays up
    while a worker lives). When the parent ends normally the pool has stopped its
    workers before the lifeline closes."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)
