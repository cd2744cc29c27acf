"""The sending-log and retry commands of `bounced`: sent, retries, worker, smtp test.

Registered on the same typer app as the other commands (see the end of bounced.cli),
each a thin layer over `bounced.sending.log.SendingLog`, `bounced.sending.worker.Worker` and
`bounced.sending.dispatch`, with the exit codes of bounced.cli.support (0 done, 1 something
in the input was wrong or a step failed, 2 configuration or database errors).
"""

import signal
import sys
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bounced.cli.support import (
    FormatOption,
    SpoolDirOption,
    command_settings,
    point_in_time,
    print_rows,
    suppressions,
)
from bounced.cli.terminal import say
from bounced.formats import Format, write_document

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bounced.config import Settings
    from bounced.listener.spool_worker import SpoolWorker
    from bounced.sending.log import SendingLog

__all__ = ["retries_app", "sent_app", "smtp_app"]

sent_app = typer.Typer(help="The sending log: what was sent, and what became of it.")
retries_app = typer.Typer(help="Retry plans of soft-bounced messages.")
smtp_app = typer.Typer(help="The relay that resends retries (dispatch = smtp).")

DISPATCH_COLUMNS = ("at", "attempt", "outcome", "channel", "worker", "detail")
DUE_COLUMNS = ("plan_id", "recipient", "message_id", "subject", "attempt", "due_at", "reason")


@contextmanager
def _log(ctx: typer.Context) -> "Iterator[SendingLog]":
    from bounced.sending.log import SendingLog

    with suppressions(ctx) as sup:
        yield SendingLog(sup)


@sent_app.command("record")
def sent_record(
    ctx: typer.Context,
    recipient: Annotated[str, typer.Argument(help="The recipient.", show_default=False)],
    message_id: Annotated[
        str, typer.Option("--message-id", help="The message's Message-ID.", show_default=False)
    ],
    subject: Annotated[str, typer.Option("--subject", help="Its subject.")] = "",
    raw: Annotated[
        Path | None,
        typer.Option("--raw", help="The message as sent (kept for resends by SMTP).", exists=True),
    ] = None,
    processing: Annotated[
        bool, typer.Option("--processing", help="Handed over, not known to be out yet.")
    ] = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="Refused during the send (give --error).")
    ] = False,
    error: Annotated[
        str, typer.Option("--error", help="The server's reply, e.g. '550 5.1.1 ...'.")
    ] = "",
    output_format: FormatOption = None,
) -> None:
    """Log one sent message; with --failed the error is read as a bounce."""
    from bounced.sending.log import SENT_COLUMNS, SentStatus

    if failed and not error.strip():
        say("--failed needs the server's reply in --error")
        raise typer.Exit(2)
    status = SentStatus.PROCESSING if processing else SentStatus.SENT
    with _log(ctx) as log:
        row = log.record(
            recipient,
            message_id,
            subject=subject,
            raw=raw.read_bytes() if raw else None,
            status=status,
            error=error if failed or error else "",
        )
    print_rows(output_format, SENT_COLUMNS, [row])


@sent_app.command("list")
def sent_list(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", help="processing, sent, failed, bounced_soft, bounced_hard, retrying."
        ),
    ] = None,
    domain: Annotated[list[str] | None, typer.Option("--domain", help="Recipient domain.")] = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", help="Bounce reason.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Sent since (date or 7d).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="... and before.")] = None,
    output_format: FormatOption = None,
) -> None:
    """The sending log, filtered."""
    from bounced.sending.log import SENT_COLUMNS

    with _log(ctx) as log:
        rows = log.sent_rows(
            status=status or (),
            domain=domain or (),
            reason=reason or (),
            since=point_in_time(since),
            until=point_in_time(until),
        )
        print_rows(output_format, SENT_COLUMNS, rows)


@retries_app.command("list")
def retries_list(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", help="scheduled, awaiting, succeeded, exhausted, cancelled (repeatable)."
        ),
    ] = None,
    address: Annotated[str | None, typer.Option("--address", help="One address's plans.")] = None,
    output_format: FormatOption = None,
) -> None:
    """Retry plans, filtered."""
    from bounced.sending.log import PLAN_COLUMNS

    with _log(ctx) as log:
        print_rows(output_format, PLAN_COLUMNS, log.plans(status=status or (), address=address))


@retries_app.command("show")
def retries_show(
    ctx: typer.Context,
    plan_id: Annotated[int, typer.Argument(help="The plan's id.", show_default=False)],
    output_format: FormatOption = None,
) -> None:
    """One plan, its message and every hand-over."""
    from bounced.suppressions import plain

    with _log(ctx) as log:
        shown = log.plan(plan_id)
    if output_format in (Format.JSON, Format.NDJSON):
        data = {k: plain(v) for k, v in shown.items() if k != "dispatches"}
        data["dispatches"] = [plain(d) for d in shown["dispatches"]]
        write_document(data, sys.stdout, indent=2 if output_format is Format.JSON else None)
        return
    plan, sent = plain(shown["plan"]), plain(shown["sent"])
    sys.stdout.write(
        f"plan {plan['id']}: {plan['status']} ({plan['reason']}), {plan['attempt']} resends, "
        f"next due {plan['due_at'] or '-'}, started {plan['started_at']}\n"
        f"message {sent['message_id']} to {sent['address']}: {sent['status']}"
        f"{', ' + plan['note'] if plan['note'] else ''}\n"
    )
    print_rows(output_format or Format.TABLE, DISPATCH_COLUMNS, shown["dispatches"])


@retries_app.command("cancel")
def retries_cancel(
    ctx: typer.Context,
    plan_ids: Annotated[list[int], typer.Argument(help="Plan ids.", show_default=False)],
) -> None:
    """Stop open plans (audited)."""
    with _log(ctx) as log:
        done, missing = log.cancel(plan_ids, log.sup.actor)
    say(f"cancelled {len(done)} plan{'s' if len(done) != 1 else ''}")
    for plan_id in missing:
        say(f"not an open plan: {plan_id}")
    raise typer.Exit(1 if missing else 0)


@retries_app.command("due")
def retries_due(
    ctx: typer.Context,
    claim: Annotated[
        bool, typer.Option("--claim", help="Mark them handed to you: each is returned once.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    output_format: FormatOption = None,
) -> None:
    """Retries due now (dispatch = pull: the sender resends them itself)."""
    from bounced.sending.log import PLAN_COLUMNS
    from bounced.sending.worker import worker_name

    with _log(ctx) as log:
        log.sync()
        if claim:
            rows: Any = [due.request() for due in log.pull(f"pull:{worker_name()}", limit)]
            print_rows(output_format, DUE_COLUMNS, rows, raw=True)
            return
        rows = list(log.plans(due=True))[:limit]
        print_rows(output_format, PLAN_COLUMNS, rows)


def worker_command(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (cron).")] = False,
    dispatch: Annotated[
        str | None, typer.Option("--dispatch", help="pull, webhook or smtp (default: config).")
    ] = None,
    spool: Annotated[
        bool, typer.Option("--spool", help="Also ingest what `bounced serve` spooled.")
    ] = False,
    spool_dir: SpoolDirOption = None,
) -> None:
    """Run the retry scheduler: read bounces, close and escalate plans, dispatch retries;
    with --spool (or --spool-dir) also the spool worker, ingesting what a listener
    received."""
    from bounced.errors import DispatchError
    from bounced.health import serving
    from bounced.sending.dispatch import dispatcher_for
    from bounced.sending.log import SendingLog
    from bounced.sending.worker import Worker

    with suppressions(ctx) as sup, ExitStack() as stack:
        settings = sup.settings.retry
        if dispatch:
            from dataclasses import replace

            settings = replace(settings, dispatch=dispatch)
        try:
            dispatcher = dispatcher_for(settings)
        except DispatchError as exc:
            say(str(exc))
            raise typer.Exit(2) from None
        worker = Worker(SendingLog(sup, settings), dispatcher)
        ingest = None
        if spool or spool_dir:
            ingest = stack.enter_context(_ingesting(sup.settings, spool_dir))
        if once:
            raise typer.Exit(_once(worker, ingest))
        signal.signal(signal.SIGTERM, lambda *_: _stop(worker, ingest))
        say(f"worker {worker.name} started (dispatch = {settings.dispatch})")
        spooled = (spool_dir or sup.settings.listener.spool_dir) if ingest else ""
        try:
            stack.enter_context(serving(sup.settings, spool_dir=spooled))
        except OSError as exc:
            say(f"metrics port: {exc}")
            raise typer.Exit(2) from None
        _loop(worker, ingest)
        say("worker stopped")


@contextmanager
def _ingesting(settings: "Settings", spool_dir: str | None) -> "Iterator[SpoolWorker]":
    """A spool worker on its own store connection (it runs in a thread of its own), the
    spool replayed first: what a dead process had claimed goes back to new/."""
    from bounced.listener.inbox import Inbox
    from bounced.listener.server import EventLog
    from bounced.listener.spool import Spool
    from bounced.listener.spool_worker import SpoolWorker
    from bounced.suppressions import Suppressions

    log = EventLog(sys.stderr, as_json=settings.listener.log_format == "json")
    try:
        spool = Spool(spool_dir or settings.listener.spool_dir)
        back = spool.recover()
    except OSError as exc:
        say(f"spool: {exc}")
        raise typer.Exit(2) from None
    log("replay", spool=str(spool.root), pending=len(spool.pending()), reclaimed=back)
    with Suppressions.open(settings) as own:
        yield SpoolWorker(spool, Inbox(own), settings, log)


def _once(worker: Any, ingest: "SpoolWorker | None") -> int:
    """One pass; its exit status. The spool first, so the scheduler reads its bounces
    in the same pass."""
    drained = ingest.run_once() if ingest else None
    if drained is not None:
        say(drained.line())
    done = worker.run_once()
    if worker.dispatcher is not None:
        worker.dispatcher.close()
    _report(done)
    return 1 if done.failed or (drained and drained.failed) else 0


def _loop(worker: Any, ingest: "SpoolWorker | None") -> None:
    """Until stopped (SIGTERM, ^C): the scheduler here, the spool worker in a thread."""
    thread = threading.Thread(target=ingest.run, name="bounced-spool") if ingest else None
    if thread:
        thread.start()
    try:
        worker.run(lambda done: _report(done) if done.busy or done.errors else None)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(worker, ingest)
        if thread:
            thread.join()


def _stop(worker: Any, ingest: "SpoolWorker | None") -> None:
    """SIGTERM: the scheduler ends its batch, the spool worker the file in hand; what
    is left stays spooled (new/) or due for the next start."""
    worker.stop()
    if ingest:
        ingest.stop(drain=False)


def _report(done: Any) -> None:
    say(done.line())
    for error in done.errors:
        say(error)


@smtp_app.command("test")
def smtp_test(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port")] = None,
    security: Annotated[
        str | None, typer.Option("--security", help="none, starttls, starttls+verify, smtps.")
    ] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password: Annotated[str | None, typer.Option("--password")] = None,
    ca_file: Annotated[str | None, typer.Option("--ca-file")] = None,
    timeout: Annotated[str | None, typer.Option("--timeout", help="e.g. 10s.")] = None,
) -> None:
    """Open the relay step by step (connect, EHLO, STARTTLS, AUTH) and say what fails."""
    from bounced.sending.dispatch import Step, relay_steps

    given = {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "password": password,
        "ca_file": ca_file,
        "timeout": timeout,
    }
    overrides = {f"retry.smtp.{k}": v for k, v in given.items()}
    relay = command_settings(ctx, overrides).retry.smtp
    ok = True
    for item in relay_steps(relay):
        if isinstance(item, Step):
            sys.stdout.write(f"{'ok  ' if item.ok else 'FAIL'} {item.name}: {item.detail}\n")
            ok = ok and item.ok
        else:
            item.quit()
            sys.stdout.write("ok   the relay is ready to take resends\n")
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    """Add the sending commands to `app`."""
    app.command("worker")(worker_command)
    app.add_typer(sent_app, name="sent")
    app.add_typer(retries_app, name="retries")
    app.add_typer(smtp_app, name="smtp")
