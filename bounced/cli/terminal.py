"""What a long-running command tells the person at the terminal, on standard error only.

Standard output carries the data (rows), so that it can be piped; progress, the
inputs that could not be read and a closing summary go to standard error, and the
decorations (progress bar, summary) only when standard error is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["Feedback", "say"]


def say(line: str) -> None:
    """One line for the person on standard error, `bounced: ` first (which command's
    output it is, in a pipeline or a cron mail): errors, refusals, closing counts."""
    sys.stderr.write(f"bounced: {line}\n")


class Feedback:
    """Counts messages and failures for one command run, and shows them.

    Use as a context manager around the run; call `advance` per message read and
    `unreadable` per input that could not be read. `failures` decides the exit code.
    """

    def __init__(
        self,
        *,
        progress: bool,
        stderr: TextIO | None = None,
        summary: bool = True,
        total: Callable[[], int | None] | None = None,
    ) -> None:
        """`total` gives the input's size in bytes when it is cheap to know (None
        otherwise); it is asked only when a progress bar is shown, which then has a
        total and a rate instead of a bare spinner."""
        self._stream = stderr if stderr is not None else sys.stderr
        #: False when the command prints a closing line of its own (ingest).
        self._summary = summary
        self.interactive = self._stream.isatty()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if progress and self.interactive:
            size = total() if total is not None else None
            self._progress = _progress_bar(self._stream, known=size is not None)
            self._task = self._progress.add_task("read", total=size, messages=0)
        self.messages = 0
        self.failures = 0
        self.skipped = 0

    def __enter__(self) -> Feedback:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        if exc_type is not None or not self._summary:
            return
        if self.interactive:
            self._say(f"{self.messages} messages read, {self.failures} unreadable{self.not_mail()}")
        elif self.skipped:  # always said: files left out of the rows without a word
            self._say(f"bounced: {self.not_mail().removeprefix(', ')}")

    def advance(self, size: int = 0) -> None:
        """One message read, of `size` bytes (what the bar's total counts)."""
        self.messages += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=size, messages=self.messages)

    def skip(self, size: int = 0) -> None:
        """A file of `size` bytes that is clearly not mail (sources.not_mail)."""
        self.skipped += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=size)

    def not_mail(self) -> str:
        """The closing summary's word on skipped files, empty when there were none."""
        return f", {self.skipped} files skipped (not mail)" if self.skipped else ""

    def unreadable(self, name: str, reason: str) -> None:
        self.failures += 1
        self._say(f"bounced: {name}: {reason}")

    def _say(self, line: str) -> None:
        """One whole line on stderr (printed through the bar while it runs)."""
        if self._progress is not None:
            self._progress.console.print(line)
        else:
            self._stream.write(line + "\n")


def _progress_bar(stream: TextIO, *, known: bool) -> Progress:
    """A transient bar with the bytes read of the total and the rate when the input's
    size is known, else (standard input) a spinner with a count; rich is imported only
    for a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    # soft_wrap: an error line keeps its whole path, it is not folded at 80 columns.
    console = Console(file=stream, markup=False, emoji=False, highlight=False, soft_wrap=True)
    count = TextColumn("{task.fields[messages]} messages read")
    columns = (
        (BarColumn(), DownloadColumn(), TransferSpeedColumn(), count, TimeRemainingColumn())
        if known
        else (SpinnerColumn(), count, TimeElapsedColumn())
    )
    # Standard output is the data: rich would otherwise take it over while the bar runs
    # and print the rows to the terminal on stderr (`parse dir > rows.ndjson` was empty).
    return Progress(
        *columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False
    )
