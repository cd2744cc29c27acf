"""Settings: one typed, frozen object, built once and passed in (never a global).

Layers, each overriding the one before: the defaults written below, then
`config.toml` (`--config PATH`, else `$BOUNCED_CONFIG`, else `./config.toml`
when present), then `BOUNCED_<SECTION>_<KEY>` environment variables, then
command-line options. The layering is generic over the dataclasses: a later
section (`[retry]`, `[listener]`) is one more frozen dataclass field on
`Settings`, and its file keys, environment names and type conversion follow.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bounced.dsn import DEFAULT_HARD_REASONS, Reason
from bounced.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DEFAULT_RETRYABLE_REASONS",
    "DEFAULT_SENDER_REASONS",
    "ENV_PREFIX",
    "ApiSettings",
    "BasicAuthWebhook",
    "BrevoWebhook",
    "CleanSettings",
    "DnsSettings",
    "ListenerSettings",
    "MailgunWebhook",
    "MetricsSettings",
    "PolicyServerSettings",
    "PolicySettings",
    "RelaySettings",
    "RetrySettings",
    "SendgridWebhook",
    "SesWebhook",
    "Settings",
    "StoreSettings",
    "VerpSettings",
    "WebhookSettings",
    "WebhooksSettings",
    "find_config",
    "load_settings",
    "parse_duration",
    "setting_origin",
]

#: Failures caused by the sender (its IP, reputation, content, volume), not by the address.
DEFAULT_SENDER_REASONS = frozenset(
    {
        Reason.BLOCKED,
        Reason.SPAM_DETECTED,
        Reason.BAD_REPUTATION,
        Reason.AUTH_FAILURE,
        Reason.REQUIRE_PTR,
        Reason.SECURITY_ERROR,
        Reason.NO_RELAYING,
        Reason.NOT_COMPLIANT_RFC,
        Reason.REJECTED,
        Reason.SPEEDING,
        Reason.TOO_MANY_CONN,
        Reason.MESG_TOO_BIG,
        Reason.CONTENT_ERROR,
        Reason.VIRUS_DETECTED,
    }
)


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """`[policy]`: when an address is blocked (see bounced.policy)."""

    max_returns: int = 5
    returns_window_days: int = 0
    hard_reasons: frozenset[Reason] = DEFAULT_HARD_REASONS
    sender_reasons: frozenset[Reason] = DEFAULT_SENDER_REASONS
    allow: tuple[str, ...] = ()
    case_sensitive_local_part: bool = False


#: Soft failures that a later resend can cure (not a too-big or refused content: resending
#: the same bytes fails the same way).
DEFAULT_RETRYABLE_REASONS = frozenset(
    {
        Reason.MAILBOX_FULL,
        Reason.SYSTEM_FULL,
        Reason.TOO_MANY_CONN,
        Reason.NETWORK_ERROR,
        Reason.EXPIRED,
        Reason.SYSTEM_ERROR,
    }
)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """`[retry.webhook]`: where `dispatch = "webhook"` POSTs retry requests."""

    url: str = ""
    secret: str = ""
    timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """`[retry.smtp]`: the relay `dispatch = "smtp"` resends through, set like a mail client.
    `security`: none, starttls, starttls+verify or smtps (smtps always verifies)."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"
    username: str = ""
    password: str = ""
    timeout: timedelta = timedelta(seconds=30)
    ca_file: str = ""
    helo: str = ""


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """`[retry]`: when soft-bounced messages are resent, and how (see bounced.sending.plans)."""

    schedule: tuple[timedelta, ...] = (
        timedelta(minutes=15),
        _HOUR,
        4 * _HOUR,
        12 * _HOUR,
        24 * _HOUR,
    )
    jitter_percent: int = field(default=10, metadata={"max": 100})
    max_attempts: int = 5
    give_up_after: timedelta = 72 * _HOUR
    success_after: timedelta = 24 * _HOUR
    retryable_reasons: frozenset[Reason] = DEFAULT_RETRYABLE_REASONS
    dispatch: str = "pull"
    batch: int = 100
    poll_interval: timedelta = timedelta(seconds=30)
    claim_timeout: timedelta = timedelta(minutes=10)
    dispatch_backoff: timedelta = timedelta(minutes=1)
    dispatch_backoff_max: timedelta = _HOUR
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    smtp: RelaySettings = field(default_factory=RelaySettings)


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    """`[listener]`: the SMTP server that receives bounces (`bounced serve`,
    bounced.listener.server).
    `domains` are bounce domains (`bounces.example.com`) or whole addresses; RCPT for
    anything else is refused, so the listener is never a relay. `retention`: `archive`
    (keep processed messages in the spool's done/) or `delete`. `worker`: ingest the
    spool in the listener's process; false leaves it to `bounced worker --spool`."""

    host: str = "127.0.0.1"
    port: int = field(default=2525, metadata={"max": 65535})
    domains: tuple[str, ...] = ()
    spool_dir: str = "spool"
    max_message_size: int = 40 * 1024 * 1024
    max_line_length: int = 64 * 1024
    max_sessions: int = 100
    timeout: timedelta = timedelta(minutes=5)
    session_timeout: timedelta = timedelta(minutes=30)
    tls_cert: str = ""
    tls_key: str = ""
    allowed_networks: tuple[str, ...] = ()
    retention: str = "archive"
    worker: bool = True
    log_format: str = "text"


@dataclass(frozen=True, slots=True)
class SesWebhook:
    """`[webhooks.ses]`: Amazon SES events through an SNS HTTPS subscription. `topics`:
    the TopicArns accepted (empty refuses all); `confirm`: visit the SubscribeURL of a
    subscription confirmation (otherwise it is logged for you to visit)."""

    enabled: bool = False
    topics: tuple[str, ...] = ()
    confirm: bool = False


@dataclass(frozen=True, slots=True)
class MailgunWebhook:
    """`[webhooks.mailgun]`: `signing_key` is the HTTP webhook signing key; a signature
    older than `max_age` (or a token seen before) is refused."""

    enabled: bool = False
    signing_key: str = ""
    max_age: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SendgridWebhook:
    """`[webhooks.sendgrid]`: `public_key` is the signed Event Webhook's verification key
    (base64 DER, as SendGrid shows it, or PEM); older timestamps than `max_age` are refused."""

    enabled: bool = False
    public_key: str = ""
    max_age: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class BasicAuthWebhook:
    """`[webhooks.postmark]`, `[webhooks.sparkpost]`: HTTP basic auth credentials the
    provider is given in the webhook URL; `allowed_networks` (CIDR) empty = any source."""

    enabled: bool = False
    username: str = ""
    password: str = ""
    allowed_networks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BrevoWebhook(BasicAuthWebhook):
    """`[webhooks.brevo]`: basic auth as above, or a bearer `token` (either suffices)."""

    token: str = ""


@dataclass(frozen=True, slots=True)
class WebhooksSettings:
    """`[webhooks.<provider>]`: sending providers' event webhooks (bounced.providers)."""

    ses: SesWebhook = field(default_factory=SesWebhook)
    mailgun: MailgunWebhook = field(default_factory=MailgunWebhook)
    sendgrid: SendgridWebhook = field(default_factory=SendgridWebhook)
    postmark: BasicAuthWebhook = field(default_factory=BasicAuthWebhook)
    sparkpost: BasicAuthWebhook = field(default_factory=BasicAuthWebhook)
    brevo: BrevoWebhook = field(default_factory=BrevoWebhook)


@dataclass(frozen=True, slots=True)
class VerpSettings:
    """`[verp]`: signed return paths (bounced.verp). `strict`: only bounces that carry a
    valid token count (nobody can get an address suppressed by forging a bounce)."""

    secret: str = ""
    prefix: str = "bounces"
    domain: str = ""
    strict: bool = False


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """`[api]`: the HTTP API (`bounced api`, bounced.http). `max_body_size` in bytes,
    `max_batch` addresses per bulk request; `cors_origins` empty = no CORS headers;
    `metrics_token` non-empty protects /metrics with that bearer token; `token_cache`:
    how long a process trusts a verified token (a revoked one is refused after that)."""

    host: str = "127.0.0.1"
    port: int = 8025
    workers: int = 1
    root_path: str = ""
    max_body_size: int = 16 * 1024 * 1024
    max_batch: int = 100_000
    cors_origins: tuple[str, ...] = ()
    allow_anonymous_check: bool = False
    metrics_token: str = ""
    token_cache: timedelta = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class PolicyServerSettings:
    """`[policy_server]`: the Postfix policy service (`bounced policy-server`).
    `action`: what a recipient that may not be mailed gets: REJECT, DEFER, HOLD, WARN
    (each with a reason text) or any custom action text; `fail_open`: DUNNO when the
    store cannot be reached, else DEFER_IF_PERMIT."""

    host: str = "127.0.0.1"
    port: int = 10040
    action: str = "REJECT"
    fail_open: bool = False
    timeout: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """`[metrics]`: `port` non-zero gives the listener and the worker /healthz, /readyz
    and /metrics on that port (of `host`)."""

    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True, slots=True)
class DnsSettings:
    """`[dns]`: the resolver `bounced clean` and `bounced domain check` ask (bounced.clean.dns).
    `nameservers`: "host" or "host:port" ("[::1]:53"); empty = the system's resolvers."""

    nameservers: tuple[str, ...] = ()
    timeout: timedelta = timedelta(seconds=5)
    concurrency: int = 50


@dataclass(frozen=True, slots=True)
class CleanSettings:
    """`[clean]`: list cleaning (bounced.clean). An address with a return within
    `returns_window` (and not blocked) is `risky`."""

    returns_window: timedelta = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """`[store]`: `keep_events`, how long bounce events are kept (`bounced db prune`
    and the worker delete older ones); 0 keeps them all."""

    keep_events: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable. Top-level keys come first in config.toml."""

    database_url: str = "sqlite:///bounced.db"
    database_timeout: timedelta = timedelta(seconds=30)
    policy: PolicySettings = field(default_factory=PolicySettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    webhooks: WebhooksSettings = field(default_factory=WebhooksSettings)
    listener: ListenerSettings = field(default_factory=ListenerSettings)
    verp: VerpSettings = field(default_factory=VerpSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    policy_server: PolicyServerSettings = field(default_factory=PolicyServerSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    clean: CleanSettings = field(default_factory=CleanSettings)
    store: StoreSettings = field(default_factory=StoreSettings)


ENV_PREFIX = "BOUNCED_"
_COMMAND_LINE = "command line"
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_duration(text: str | int) -> timedelta:
    """Read `30s`, `15m`, `1h`, `3d`, `2w` or a sum like `1h30m`; a bare number is seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        return timedelta(seconds=text)
    spec = str(text).strip().lower()
    if spec.isdigit():
        return timedelta(seconds=int(spec))
    parts = _DURATION.findall(spec)
    if not parts or _DURATION.sub("", spec).strip():
        raise ValueError(f"not a duration: {text!r} (write e.g. 30s, 15m, 1h, 3d)")
    return sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())


def find_config(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read: explicit path, else $BOUNCED_CONFIG, else ./config.toml."""
    chosen = path or env.get(f"{ENV_PREFIX}CONFIG")
    if chosen:
        if not Path(chosen).is_file():
            raise ConfigError(f"config file not found: {chosen}")
        return Path(chosen)
    default = Path("config.toml")
    return default if default.is_file() else None


def load_settings(
    config: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from every layer. `overrides` are dotted keys from the command line
    (`{"database_url": ..., "policy.max_returns": 3}`); None values are ignored."""
    env = os.environ if env is None else env
    settings = Settings()
    path = find_config(config, env)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        settings = _apply_table(settings, data, str(path), ())
    settings = _apply_env(settings, env, ())
    for key, value in (overrides or {}).items():
        if value is not None:
            settings = _apply_table(settings, _nest(key, value), _COMMAND_LINE, ())
    return settings


def setting_origin(dotted: str, env: Mapping[str, str] | None = None) -> str:
    """Where a setting that is not at its default came from, in words for the audit log
    and `allow --list`: the environment variable that set it, else the config file
    (commands override only their own options, never these)."""
    env = os.environ if env is None else env
    name = ENV_PREFIX + dotted.replace(".", "_").upper()
    return f"environment: {name}" if name in env else "config file"


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    return {head: _nest(rest, value) if rest else value}


#: A settings dataclass.
_D = TypeVar("_D", bound="DataclassInstance")


def _hints(obj: Any) -> dict[str, Any]:
    return typing.get_type_hints(type(obj))


def _apply_table(obj: _D, table: Mapping[str, Any], origin: str, path: tuple[str, ...]) -> _D:
    """A copy of the settings dataclass `obj` with the values of a (TOML-shaped) table."""
    hints = _hints(obj)
    changes = {}
    for key, value in table.items():
        where = ".".join((*path, key))
        if key not in hints:
            raise ConfigError(f"{origin}: unknown setting {where}")
        current = getattr(obj, key)
        if is_dataclass(current) and not isinstance(current, type):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{origin}: {where} must be a table ([{where}])")
            changes[key] = _apply_table(current, value, origin, (*path, key))
            continue
        if (
            isinstance(value, str)
            and typing.get_origin(hints[key]) in (tuple, frozenset)
            and origin != _COMMAND_LINE
        ):
            # Text is a list only in the environment (comma-separated): in the file,
            # "a, b" for ["a", "b"] is a mistake that would otherwise pass.
            raise ConfigError(f'{origin}: {where} must be a list, e.g. ["{value}"]')
        where = f"{origin}: {where}"
        changes[key] = _bounded(obj, key, _convert(hints[key], value, where), where)
    return replace(obj, **changes)


def _bounded(obj: Any, name: str, value: Any, where: str) -> Any:
    """`value` unless it is above the field's declared `max` (a percentage, a port)."""
    limit = next(f.metadata.get("max") for f in fields(obj) if f.name == name)
    if limit is not None and value > limit:
        raise ConfigError(f"{where}: must be at most {limit}, got {value}")
    return value


def _apply_env(obj: _D, env: Mapping[str, str], path: tuple[str, ...]) -> _D:
    """Overlay BOUNCED_<SECTION>_<KEY> variables; names come from the fields, so unknown
    BOUNCED_* variables (the test database URL, other tools) are simply not looked at."""
    hints = _hints(obj)
    changes = {}
    for f in fields(obj):
        current = getattr(obj, f.name)
        if is_dataclass(current) and not isinstance(current, type):
            changes[f.name] = _apply_env(current, env, (*path, f.name))
            continue
        name = ENV_PREFIX + "_".join((*path, f.name)).upper()
        if name in env:
            value = _convert(hints[f.name], env[name], f"environment: {name}")
            changes[f.name] = _bounded(obj, f.name, value, f"environment: {name}")
    return replace(obj, **changes)


def _items(value: Any) -> list[Any]:
    """Lists come as TOML arrays, or as comma-separated text from env and options."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    raise TypeError("expected a list")


def _convert(hint: Any, value: Any, where: str) -> Any:
    """One value as the field's declared type, or a ConfigError naming the setting."""
    try:
        return _CONVERTERS[typing.get_origin(hint) or hint](hint, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _to_bool(_hint: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def _to_int(_hint: Any, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer, got {value!r}")
    number = int(value)
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def _to_str(_hint: Any, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _to_duration(_hint: Any, value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected a duration like 30s or 15m, got {value!r}")
    return parse_duration(value)


def _to_collection(hint: Any, value: Any) -> Any:
    (item,) = set(typing.get_args(hint)) - {Ellipsis}
    items = _items(value)
    if item is Reason:
        unknown = [x for x in items if x not in Reason._value2member_map_]
        if unknown:
            raise ValueError(f"unknown reason(s) {unknown}; known: {', '.join(Reason)}")
        items = [Reason(x) for x in items]
    elif item is timedelta:
        items = [_to_duration(item, x) for x in items]
    elif not all(isinstance(x, str) for x in items):
        raise TypeError("expected a list of text")
    return typing.get_origin(hint)(items)


_CONVERTERS = {
    bool: _to_bool,
    int: _to_int,
    str: _to_str,
    timedelta: _to_duration,
    tuple: _to_collection,
    frozenset: _to_collection,
}
