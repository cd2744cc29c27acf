"""A clock the tests move by hand: injected into the store, it makes days of retry
schedule pass in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["Clock"]


class Clock:
    """Starts on 2 March 2026, 08:00 UTC; `move(hours=1)` moves it on."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def move(self, **kw) -> None:
        self.now += timedelta(**kw)
