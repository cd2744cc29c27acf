"""The commands of the SMTP side: `bounced verp`, `bounced serve`, `bounced inbox`.

Registered on the same typer app as the other commands (see the end of
bounced.cli); settings and the store come the way the store commands get them
(`bounced.admin_cli`), so `--config` and `--database-url` mean the same here.
"""

import sys
from typing import Annotated, Any

import typer

from bounced.admin_cli import _say, _settings, _suppressions, _write
from bounced.cli import FormatOption, app

__all__ = ["verp_app"]

verp_app = typer.Typer(help="Signed VERP return paths.")
app.add_typer(verp_app, name="verp")

VERP_COLUMNS = ("recipient", "message_key", "valid", "reason")


def _load(ctx: typer.Context) -> Any:
    """Settings with the global options, or one line and exit 2."""
    from bounced.errors import BouncedError

    try:
        return _settings(ctx.find_root().obj or {})
    except BouncedError as exc:
        _say(str(exc))
        raise typer.Exit(2) from None


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

    cfg = _load(ctx).verp
    try:
        address = verp.encode(
            recipient, message_id, secret=cfg.secret, prefix=cfg.prefix, domain=domain or cfg.domain
        )
    except (ConfigError, ValueError) as exc:
        _say(str(exc))
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

    token = verp.decode(address, secret=_load(ctx).verp.secret)
    if token is None:
        _say(f"not a VERP address: {address}")
        raise typer.Exit(1)
    row = {
        "recipient": token.recipient,
        "message_key": token.message_key,
        "valid": token.valid,
        "reason": token.reason,
    }
    _write(output_format, VERP_COLUMNS, [row], raw=True)
    raise typer.Exit(0 if token.valid else 1)


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port.")] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", help="Bounce domain or address (repeatable; replaces config)."),
    ] = None,
    spool_dir: Annotated[
        str | None, typer.Option("--spool-dir", help="Spool directory (one per listener).")
    ] = None,
) -> None:
    """Receive bounces by SMTP: spool, then ingest. Stops cleanly on SIGTERM."""
    from bounced.config import load_settings
    from bounced.errors import BouncedError
    from bounced.listener import serve

    options = ctx.find_root().obj or {}
    overrides = {
        "database_url": options.get("database_url"),
        "listener.host": host,
        "listener.port": port,
        "listener.domains": domain or None,
        "listener.spool_dir": spool_dir,
    }
    try:
        settings = load_settings(options.get("config"), overrides=overrides)
        code = serve(settings)
    except (BouncedError, OSError) as exc:
        _say(str(exc))
        raise typer.Exit(2) from None
    raise typer.Exit(code)


inbox_app = typer.Typer(help="Mail to the return path that is no bounce (kept, not counted).")
app.add_typer(inbox_app, name="inbox")


@inbox_app.command("list")
def inbox_list(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Also assigned messages.")] = False,
    output_format: FormatOption = None,
) -> None:
    """Messages waiting in the inbox, oldest first."""
    from bounced.inbox import INBOX_COLUMNS, Inbox

    with _suppressions(ctx) as sup:
        _write(output_format, INBOX_COLUMNS, Inbox(sup).list(assigned=show_all))


@inbox_app.command("show")
def inbox_show(
    ctx: typer.Context, message_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """The envelope, why it is here, and the message itself."""
    from bounced.api import plain
    from bounced.inbox import Inbox

    with _suppressions(ctx) as sup:
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
    from bounced.inbox import Inbox

    with _suppressions(ctx) as sup:
        result = Inbox(sup).assign(message_id, to)
    blocked = " (now blocked)" if result.new_blocks else ""
    sys.stdout.write(f"{message_id}: {result.outcome} for {to}{blocked}\n")


@inbox_app.command("delete")
def inbox_delete(
    ctx: typer.Context,
    message_ids: Annotated[list[int], typer.Argument(metavar="ID...")],
) -> None:
    """Erase messages from the inbox; exit 1 when some id was not there."""
    from bounced.inbox import Inbox

    with _suppressions(ctx) as sup:
        done = Inbox(sup).delete(message_ids)
    missing = sorted(set(message_ids) - set(done))
    for mid in missing:
        _say(f"no inbox message {mid}")
    sys.stdout.write(f"deleted {len(done)}\n")
    raise typer.Exit(1 if missing else 0)
