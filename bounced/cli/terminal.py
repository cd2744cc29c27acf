"""What a long-running command tells the person at the terminal, on standard error only.

Standard output carries the data (rows), so that it can be piped; progress, the
inputs that could not be read and a closing summary go to standard error, and the
decorations (progress bar, summary) only when standard error is a terminal.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress

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

    def __init__(self, *, progress: bool, stderr: TextIO | None = None) -> None:
        self._stream = stderr if stderr is not None else sys.stderr
        self.interactive = self._stream.isatty()
        self._progress = _progress_bar(self._stream) if progress and self.interactive else None
        self._task = self._progress.add_task("read", total=None) if self._progress else None
        self.messages = 0
        self.failures = 0

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
        if exc_type is None and self.interactive:
            self._say(f"{self.messages} messages read, {self.failures} unreadable")

    def advance(self) -> None:
        self.messages += 1
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def unreadable(self, name: str, reason: str) -> None:
        self.failures += 1
        self._say(f"bounced: {name}: {reason}")

    def _say(self, line: str) -> None:
        """One whole line on stderr (printed through the bar while it runs)."""
        if self._progress is not None:
            self._progress.console.print(line)
        else:
            self._stream.write(line + "\n")


def _progress_bar(stream: TextIO) -> Progress:
    """A transient spinner with a count; rich is imported only for a terminal."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # soft_wrap: an error line keeps its whole path, it is not folded at 80 columns.
    console = Console(file=stream, markup=False, emoji=False, highlight=False, soft_wrap=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.completed} messages read"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
