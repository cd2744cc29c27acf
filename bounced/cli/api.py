"""`bounced api`: the HTTP API (bounced.http) on uvicorn.

FastAPI and uvicorn are imported when the command runs, never for `bounced parse`.
With `--workers N` uvicorn starts N processes, each building the app from the
configuration (`bounced.http.app:factory`); the global options reach them through
the environment (BOUNCED_CONFIG, BOUNCED_DATABASE_URL), and their metrics are added
up through a shared PROMETHEUS_MULTIPROC_DIR.
"""

import os
import shutil
import tempfile
from typing import Annotated

import typer

from bounced.cli.support import command_settings
from bounced.cli.terminal import say

__all__ = ["api_command", "register"]


def api_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port.")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes (PostgreSQL only for >1).")
    ] = None,
) -> None:
    """Serve the HTTP API (verdicts, the list, admin, ingest, retries, metrics)."""
    from bounced.db.store import Store
    from bounced.errors import BouncedError

    overrides = {"api.host": host, "api.port": port, "api.workers": workers}
    settings = command_settings(ctx, overrides)
    cfg = settings.api
    if cfg.workers > 1 and settings.database_url.startswith("sqlite"):
        say("SQLite serves one process: use PostgreSQL for --workers above 1")
        raise typer.Exit(2)
    try:  # the schema, once, before any worker: created when empty, refused when old
        Store.open(settings).close()
    except BouncedError as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    if cfg.workers == 1:
        _serve(settings)
        return
    options = ctx.find_root().obj or {}
    os.environ["BOUNCED_DATABASE_URL"] = settings.database_url
    if options.get("config"):
        os.environ["BOUNCED_CONFIG"] = str(options["config"])
    metrics_dir = tempfile.mkdtemp(prefix="bounced-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _serve(settings, workers=cfg.workers)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(settings, *, workers: int = 1) -> None:
    import uvicorn

    from bounced.http.serving import NoDelayH11

    cfg = settings.api
    common = {
        "host": cfg.host,
        "port": cfg.port,
        "log_level": "info",
        "access_log": False,
        "http": NoDelayH11,
    }
    if workers == 1:
        from bounced.http.app import create_app

        uvicorn.run(create_app(settings), **common)
    else:
        uvicorn.run("bounced.http.app:factory", factory=True, workers=workers, **common)


def register(app: typer.Typer) -> None:
    """Add `bounced api` to `app`."""
    app.command("api")(api_command)
