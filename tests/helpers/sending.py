"""A sending log on a store, and sent messages that bounced softly (each with a plan)."""

from __future__ import annotations

from dataclasses import replace

from bounced.config import Settings
from bounced.sending.log import SendingLog
from bounced.suppressions import Suppressions
from helpers.dsn import make_dsn, soft

__all__ = ["RAW", "open_log", "plans"]

RAW = (
    b"Return-Path: <bounces+x@sender.example.com>\r\nFrom: Shop <shop@sender.example.com>\r\n"
    b"To: {rcpt}\r\nSubject: Your invoice\r\nMessage-ID: <{mid}>\r\n\r\nHello.\r\n"
)


def plans(log: SendingLog, count: int) -> list[str]:
    """`count` sent messages that bounced softly: each gets a plan, due 15 minutes later."""
    rcpts = [f"full{i}@example.org" for i in range(count)]
    for i, rcpt in enumerate(rcpts):
        raw = RAW.replace(b"{rcpt}", rcpt.encode()).replace(b"{mid}", f"m{i}@s".encode())
        log.record(rcpt, f"<m{i}@s>", subject="Your invoice", raw=raw)
    dsns = [
        (f"dsn{i}", make_dsn(soft(r), original_id=f"<m{i}@s>", message_id=f"<d{i}@mx>"))
        for i, r in enumerate(rcpts)
    ]
    for _ in log.sup.ingest_many(dsns):
        pass
    log.sync()
    return rcpts


def open_log(url: str, clock, **retry) -> SendingLog:
    settings = Settings(database_url=url)
    settings = replace(settings, retry=replace(settings.retry, **retry))
    return SendingLog(Suppressions.open(settings, clock=clock), spread=lambda: 0.5)
