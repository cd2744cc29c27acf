"""The commands of the SMTP side: `bounced verp`, `bounced serve`, `bounced inbox`.

Registered on the same typer app as the other commands (see the end of
bounced.cli); settings and the store come the way the store commands get them
(bounced.cli.support), so `--config` and `--database-url` mean the same here.
"""

import sys
from typing import Annotated

import typer

from bounced.cli.support import (
    FormatOption,
    SpoolDirOption,
    command_settings,
    print_rows,
    suppressions,
)
from bounced.cli.terminal import say

__all__ = ["verp_app"]

verp_app = typer.Typer(help="Signed VERP return paths.")

VERP_COLUMNS = ("recipient", "message_key", "valid", "reason")


@verp_app.command("encode")
def verp_encode(
    ctx: typer.Context,
    recipient: Annotated[str, typer.Argument(help="The address the message is sent to.")],
    message_id: Annotated[
        str, typer.Option("--message-id", help="The message's Message-ID (its key).")
    ],
    domain: Annotated[
        str | None, typer.Option("--domain", help="Bounce domain (default: [verp] domain).")
    ] = None,
) -> None:
    """Print the signed return path for RECIPIENT of one message."""
    from bounced import verp
    from bounced.errors import ConfigError

    cfg = command_settings(ctx).verp
    try:
        address = verp.encode(
            recipient, message_id, secret=cfg.secret, prefix=cfg.prefix, domain=domain or cfg.domain
        )
    except (ConfigError, ValueError) as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    sys.stdout.write(address + "\n")


@verp_app.command("decode")
def verp_decode(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="A return path made by `verp encode`.")],
    output_format: FormatOption = None,
) -> None:
    """Who and which message a return path names; exit 1 unless it is valid."""
    from bounced import verp

    token = verp.decode(address, secret=command_settings(ctx).verp.secret)
    if token is None:
        say(f"not a VERP address: {address}")
        raise typer.Exit(1)
    row = {
        "recipient": token.recipient,
        "message_key": token.message_key,
        "valid": token.valid,
        "reason": token.reason,
    }
    print_rows(output_format, VERP_COLUMNS, [row], raw=True)
    raise typer.Exit(0 if token.valid else 1)


def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port.")] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", help="Bounce domain or address (repeatable; replaces config)."),
    ] = None,
    spool_dir: SpoolDirOption = None,
) -> None:
    """Receive bounces by SMTP: spool, then ingest. Stops cleanly on SIGTERM."""
    from bounced.errors import BouncedError
    from bounced.health import serving
    from bounced.listener.server import serve

    overrides = {
        "listener.host": host,
        "listener.port": port,
        "listener.domains": domain or None,
        "listener.spool_dir": spool_dir,
    }
    settings = command_settings(ctx, overrides)
    try:
        with serving(settings, spool_dir=settings.listener.spool_dir):
            code = serve(settings)
    except (BouncedError, OSError) as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    raise typer.Exit(code)


inbox_app = typer.Typer(help="Mail to the return path that is no bounce (kept, not counted).")


@inbox_app.command("list")
def inbox_list(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Also assigned messages.")] = False,
    output_format: FormatOption = None,
) -> None:
    """Messages waiting in the inbox, oldest first."""
    from bounced.listener.inbox import INBOX_COLUMNS, Inbox

    with suppressions(ctx) as sup:
        print_rows(output_format, INBOX_COLUMNS, Inbox(sup).list(assigned=show_all))


@inbox_app.command("show")
def inbox_show(
    ctx: typer.Context, message_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """The envelope, why it is here, and the message itself."""
    from bounced.listener.inbox import Inbox
    from bounced.suppressions import plain

    with suppressions(ctx) as sup:
        row = plain(Inbox(sup).get(message_id))
    raw = row.pop("raw")
    head = "".join(f"{k}: {v}\n" for k, v in row.items())
    sys.stdout.write(head + "\n" + raw.decode("utf-8", "replace"))


@inbox_app.command("assign")
def inbox_assign(
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(metavar="ID")],
    to: Annotated[str, typer.Option("--to", help="The address this message is about.")],
) -> None:
    """Record the message as a failed delivery to ADDR (the policy decides the rest)."""
    from bounced.listener.inbox import Inbox

    with suppressions(ctx) as sup:
        result = Inbox(sup).assign(message_id, to)
    blocked = " (now blocked)" if result.new_blocks else ""
    sys.stdout.write(f"{message_id}: {result.outcome} for {to}{blocked}\n")


@inbox_app.command("delete")
def inbox_delete(
    ctx: typer.Context,
    message_ids: Annotated[list[int], typer.Argument(metavar="ID...")],
) -> None:
    """Erase messages from the inbox; exit 1 when some id was not there."""
    from bounced.listener.inbox import Inbox

    with suppressions(ctx) as sup:
        done = Inbox(sup).delete(message_ids)
    missing = sorted(set(message_ids) - set(done))
    for mid in missing:
        say(f"no inbox message {mid}")
    sys.stdout.write(f"deleted {len(done)}\n")
    raise typer.Exit(1 if missing else 0)


def register(app: typer.Typer) -> None:
    """Add the listener commands to `app`."""
    app.command("serve")(serve_command)
    app.add_typer(verp_app, name="verp")
    app.add_typer(inbox_app, name="inbox")
