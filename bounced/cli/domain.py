"""`bounced domain check`: is a sending domain set up so that its mail is not refused
(bounced.domaincheck)?

Exit codes: 0 when nothing fails (warnings allowed), 1 when a check fails, 2 for
usage errors.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from bounced.cli.support import command_settings

if TYPE_CHECKING:
    from bounced.domaincheck import DomainReport

__all__ = [
    "ReportFormat",
    "check_command",
    "domain_app",
    "register",
]

domain_app = typer.Typer(help="Check a sending domain's DNS.", no_args_is_help=True)


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def register(app: typer.Typer) -> None:
    """Add `bounced domain check` to `app`."""
    app.add_typer(domain_app, name="domain")


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an IP address") from None


def _domain(text: str) -> str:
    name = text.strip().rstrip(".").lower()
    if "." not in name or "@" in name or " " in name:
        raise typer.BadParameter(f"{text!r} is not a domain name")
    return name.encode("idna").decode("ascii")


@domain_app.command("check")
def check_command(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="The domain in your From: addresses.")],
    selectors: Annotated[
        list[str] | None,
        typer.Option("--dkim-selector", help="A DKIM selector you sign with (repeatable)."),
    ] = None,
    ips: Annotated[
        list[str] | None,
        typer.Option("--sending-ip", help="An IP your mail leaves from (repeatable)."),
    ] = None,
    includes: Annotated[
        list[str] | None,
        typer.Option(
            "--spf-include", help="An include your provider asks for in SPF (repeatable)."
        ),
    ] = None,
    return_path: Annotated[
        str | None,
        typer.Option("--return-path", help="The return-path (bounce) domain, if another."),
    ] = None,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="table or json.")
    ] = ReportFormat.TABLE,
    nameserver: Annotated[
        list[str] | None,
        typer.Option("--nameserver", help="Resolver to ask, host or host:port (repeatable)."),
    ] = None,
) -> None:
    """Check SPF, DKIM, DMARC, MX, reverse DNS and delegations of a sending domain."""
    from bounced.domaincheck import Request, check_domain  # dnspython: loaded when used

    settings = command_settings(ctx, {"dns.nameservers": nameserver or None})
    request = Request(
        _domain(domain),
        selectors=tuple(selectors or ()),
        ips=tuple(_ip(ip) for ip in ips or ()),
        return_path=_domain(return_path) if return_path else "",
        spf_includes=tuple(_domain(i) for i in includes or ()),
        listener_domains=settings.listener.domains,
        listener_host=settings.listener.host,
    )
    report = check_domain(request, settings.dns)
    if output_format is ReportFormat.JSON:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(report)
    raise typer.Exit(1 if report.failed else 0)


#: How a line's outcome is shown in the table.
_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _print_table(report: DomainReport) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table("", "check", "subject", "finding", "fix", title=report.domain)
    for line in report.lines:
        table.add_row(
            Text(line.outcome.value, style=_STYLE[line.outcome.value]),
            line.check,
            line.subject,
            Text(line.message),
            Text(line.fix),
        )
    console = Console(markup=False, emoji=False, highlight=False)
    console.print(table)
    counts = report.as_dict()["counts"]
    console.print(", ".join(f"{n} {o}" for o, n in counts.items()))  # type: ignore[attr-defined]
