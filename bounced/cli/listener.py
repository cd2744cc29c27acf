"""The commands of the SMTP side: `bounced verp`, `bounced serve`, `bounced inbox`.

Registered on the same typer app as the other commands (see the end of
bounced.cli); settings and the store come the way the store commands get them
(bounced.cli.support), so `--config` and `--database-url` mean the same here.
"""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from bounced.cli.support import (
    FormatOption,
    SpoolDirOption,
    command_settings,
    print_rows,
    suppressions,
)
from bounced.cli.terminal import say

if TYPE_CHECKING:
    from bounced.config import Settings

__all__ = [
    "VERP_COLUMNS",
    "bounce_domain",
    "inbox_app",
    "inbox_assign",
    "inbox_delete",
    "inbox_list",
    "inbox_show",
    "register",
    "serve_command",
    "verp_app",
    "verp_decode",
    "verp_encode",
]

verp_app = typer.Typer(help="Signed VERP return paths.")

VERP_COLUMNS = ("recipient", "message_key", "valid", "reason")


@verp_app.command("encode")
def verp_encode(
    ctx: typer.Context,
    recipient: Annotated[
        str, typer.Argument(help="The address the message is sent to.", show_default=False)
    ],
    message_id: Annotated[
        str,
        typer.Option(
            "--message-id", help="The message's Message-ID (its key).", show_default=False
        ),
    ],
    domain: Annotated[
        str | None,
        typer.Option(
            "--domain",
            help="Bounce domain (default: [verp] domain, else the first domain in "
            "[listener] domains, as `serve` uses them).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the signed return path for RECIPIENT of one message."""
    from bounced import verp
    from bounced.addresses import normalize
    from bounced.errors import ConfigError, InvalidAddress

    settings = command_settings(ctx)
    try:
        normalize(recipient)
    except InvalidAddress as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    cfg = settings.verp
    domain = domain or bounce_domain(settings)
    if not domain:
        say("no bounce domain: give --domain, or set [verp] domain or [listener] domains")
        raise typer.Exit(2)
    try:
        address = verp.encode(
            recipient.strip(), message_id, secret=cfg.secret, prefix=cfg.prefix, domain=domain
        )
    except (ConfigError, ValueError) as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    sys.stdout.write(address + "\n")


def bounce_domain(settings: "Settings") -> str:
    """The domain return paths are made for: `[verp] domain`, else the first entry of
    `[listener] domains` that is a domain (not a single address), so a listener set
    up with its domains needs no second setting."""
    if settings.verp.domain:
        return settings.verp.domain
    return next((d for d in settings.listener.domains if "@" not in d), "")


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
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="TCP port (default: 2525).")
    ] = None,
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
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(metavar="ID", help="The inbox message's id.")],
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
    message_id: Annotated[int, typer.Argument(metavar="ID", help="The inbox message's id.")],
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
    message_ids: Annotated[
        list[int], typer.Argument(metavar="ID...", help="Inbox message ids (inbox list).")
    ],
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
