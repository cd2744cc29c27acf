"""A store with a retention horizon and a test's clock (test_retention, test_partitions)."""

from __future__ import annotations

from bounced.config import PolicySettings, Settings, StoreSettings, parse_duration
from bounced.suppressions import Suppressions

__all__ = ["open_store"]


def open_store(url, clock, keep="400d", **policy) -> Suppressions:
    """A store at `url` keeping events for `keep` ("0": all), on `clock`."""
    settings = Settings(
        database_url=url,
        policy=PolicySettings(**policy),
        store=StoreSettings(keep_events=parse_duration(keep)),
    )
    return Suppressions.open(settings, actor="tester", clock=clock)
