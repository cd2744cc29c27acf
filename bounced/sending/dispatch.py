"""Handing a due retry to the sender: through an SMTP relay, a signed webhook, or not at all
(`pull`: the sender asks with `bounced retries due --claim`).

A dispatcher either returns (the retry went out: a line saying how) or raises
`DispatchError`. Errors are temporary unless they say otherwise: a relay or a
webhook that is down means "later", never "lost" (the worker backs off and keeps
the attempt). `relay_steps` opens the relay one step at a time for
`bounced smtp test`, saying in plain words which step failed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import smtplib
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any, Protocol

from bounced.config import RelaySettings, RetrySettings, WebhookSettings
from bounced.errors import DispatchError
from bounced.sending.log import Due

__all__ = [
    "SECURITY_MODES",
    "SIGNATURE_HEADER",
    "Dispatcher",
    "SmtpDispatcher",
    "Step",
    "WebhookDispatcher",
    "dispatcher_for",
    "open_relay",
    "relay_steps",
    "send_test",
    "sign",
    "test_message",
]

SIGNATURE_HEADER = "X-Bounced-Signature"
SECURITY_MODES = ("none", "starttls", "starttls+verify", "smtps")


class Dispatcher(Protocol):
    channel: str

    def send(self, due: Due) -> str: ...

    def close(self) -> None: ...


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of the exact body bytes, in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class WebhookDispatcher:
    """POSTs each retry as JSON to the sender's URL, signed with the shared secret, over
    one kept-alive connection (opened again whenever the server closed it)."""

    settings: WebhookSettings
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    channel: str = "webhook"
    _conn: http.client.HTTPConnection | None = None

    def send(self, due: Due) -> str:
        body = json.dumps(
            {"type": "retry", **due.request(), "sent_at": self.clock().isoformat()},
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "bounced"}
        if self.settings.secret:
            headers[SIGNATURE_HEADER] = sign(self.settings.secret, body)
        url = urllib.parse.urlsplit(self.settings.url)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        for fresh in (self._conn is None, True):
            conn = self._connection(url)
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if fresh:  # a new connection failed: the server is down
                    raise DispatchError(f"cannot reach {self.settings.url}: {exc}") from None
                continue  # a kept connection the server had closed: once more, anew
            if response.will_close:
                self.close()
            if 200 <= response.status < 300:
                return f"HTTP {response.status}"
            raise DispatchError(f"{self.settings.url} answered HTTP {response.status}")
        raise AssertionError("the second try always uses a fresh connection")

    def _connection(self, url: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = (
                http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
            )
            timeout = self.settings.timeout.total_seconds()
            self._conn = kind(url.hostname or "", url.port, timeout=timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class Step:
    """One step of opening the relay, as `bounced smtp test` reports it."""

    name: str
    ok: bool
    detail: str


def _context(settings: RelaySettings) -> ssl.SSLContext:
    """Verified TLS for starttls+verify and smtps; encryption without checks for starttls."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if settings.security == "starttls":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _names(rdns: Any) -> dict[str, str]:
    """A certificate's subject or issuer (ssl's tuple of relative names) as a dict."""
    return {name: value for ((name, value), *_) in rdns}


def _certificate(sock: ssl.SSLSocket, verified: bool) -> str:
    if not verified:
        return f"{sock.version()}; certificate not checked (security = starttls)"
    cert = sock.getpeercert() or {}
    subject = _names(cert.get("subject", ()))
    issuer = _names(cert.get("issuer", ()))
    return (
        f"{sock.version()}; certificate for {subject.get('commonName', '?')} "
        f"from {issuer.get('commonName', issuer.get('organizationName', '?'))}, "
        f"valid until {cert.get('notAfter', '?')}: verified"
    )


def _plain(exc: BaseException, settings: RelaySettings) -> str:
    """An exception as a sentence a person setting up a relay can act on."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the certificate of {where} is not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts connections on {where} (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name {settings.host!r}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"{where} did not answer within {settings.timeout.total_seconds():g}s"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"the relay refused the username or password ({exc.smtp_code} {_text(exc)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the relay answered {exc.smtp_code} {_text(exc)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection ({exc or 'no reason given'})"
    return f"{type(exc).__name__}: {exc}"


def _text(exc: smtplib.SMTPResponseException) -> str:
    return _reply(exc.smtp_error)


def _reply(error: bytes | str) -> str:
    """A server's reply text on one line."""
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    return text.replace("\n", " ")


def relay_steps(settings: RelaySettings) -> Iterator[Step | smtplib.SMTP]:
    """Open the relay step by step, yielding a Step for each; after the last step (all
    passed) the open connection itself. Stops at the first failure."""
    if settings.security not in SECURITY_MODES:
        yield Step("settings", False, f"security must be one of {', '.join(SECURITY_MODES)}")
        return
    timeout = settings.timeout.total_seconds()
    helo = settings.helo or None
    where = f"{settings.host}:{settings.port}"
    smtp: smtplib.SMTP | None = None
    step = "connect"
    try:
        if settings.security == "smtps":
            smtp = smtplib.SMTP_SSL(
                timeout=timeout, local_hostname=helo, context=_context(settings)
            )
        else:
            smtp = smtplib.SMTP(timeout=timeout, local_hostname=helo)
        # The name TLS checks the certificate against; smtplib sets it only when the
        # constructor connects, and here connecting is a step of its own.
        smtp._host = settings.host  # type: ignore[attr-defined]
        code, banner = smtp.connect(settings.host, settings.port)
        if code != 220:
            yield Step(
                step, False, f"{where} greeted with {code} {banner.decode(errors='replace')}"
            )
            smtp.close()
            return
        detail = f"{where} answered: {banner.decode(errors='replace').splitlines()[0]}"
        if isinstance(smtp.sock, ssl.SSLSocket):
            detail += f" over {_certificate(smtp.sock, verified=True)}"
        yield Step(step, True, detail)
        step = "EHLO"
        smtp.ehlo()
        yield Step(step, True, "extensions: " + (", ".join(sorted(smtp.esmtp_features)) or "none"))
        if settings.security.startswith("starttls"):
            step = "STARTTLS"
            if not smtp.has_extn("starttls"):
                yield Step(step, False, f"{where} does not offer STARTTLS")
                smtp.close()
                return
            smtp.starttls(context=_context(settings))
            smtp.ehlo()
            verified = settings.security == "starttls+verify"
            yield Step(step, True, _certificate(smtp.sock, verified))  # type: ignore[arg-type]
        if settings.username:
            step = "AUTH"
            if not smtp.has_extn("auth"):
                why = (
                    "" if isinstance(smtp.sock, ssl.SSLSocket) else " (many offer it only over TLS)"
                )
                yield Step(step, False, f"{where} offers no AUTH{why}")
                smtp.close()
                return
            smtp.login(settings.username, settings.password)
            yield Step(step, True, f"logged in as {settings.username}")
    except (OSError, smtplib.SMTPException) as exc:
        yield Step(step, False, _plain(exc, settings))
        if smtp is not None:
            smtp.close()
        return
    yield smtp


def test_message(sender: str, recipient: str, now: datetime | None = None) -> bytes:
    """The message `bounced smtp test --send-to` sends: plain text saying what it is."""
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = "bounced: relay test"
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid("bounced-test")
    msg.set_content(
        "This message was sent by `bounced smtp test` to check the relay that resends\n"
        "retries. It needs no answer.\n"
    )
    return msg.as_bytes()


def send_test(smtp: smtplib.SMTP, sender: str, recipient: str) -> Step:
    """Send a test message over an open relay connection; the step reports the server's
    own answer to it (the queue id in a 250, or why it refused)."""
    step = "send"
    try:
        for command, argument in (("MAIL FROM", sender), ("RCPT TO", recipient)):
            call = smtp.mail if command == "MAIL FROM" else smtp.rcpt
            code, reply = call(argument)
            if code not in (250, 251):
                return Step(step, False, f"{command} refused: {code} {_reply(reply)}")
        code, reply = smtp.data(test_message(sender, recipient))
    except (OSError, smtplib.SMTPException) as exc:
        return Step(step, False, f"{type(exc).__name__}: {exc}")
    ok = code == 250
    return Step(step, ok, f"{'accepted' if ok else 'refused'}: {code} {_reply(reply)}")


def open_relay(settings: RelaySettings) -> smtplib.SMTP:
    """A connection ready for MAIL FROM, or DispatchError saying which step failed."""
    for item in relay_steps(settings):
        if isinstance(item, Step):
            if not item.ok:
                raise DispatchError(f"{item.name}: {item.detail}")
        else:
            return item
    raise AssertionError("relay_steps ends with a connection or a failed step")


def _envelope_sender(raw: bytes) -> str:
    """Whom the relay reports failures to: the message's Return-Path (the sender's bounce
    address), else its Sender, else its From."""
    headers = BytesHeaderParser().parsebytes(raw)
    for name in ("Return-Path", "Sender", "From"):
        found = [addr for _, addr in getaddresses(headers.get_all(name, [])) if addr]
        if found:
            return found[0]
    return ""


@dataclass
class SmtpDispatcher:
    """Resends the stored raw message through the relay, one connection for many."""

    settings: RelaySettings
    channel: str = "smtp"
    _smtp: smtplib.SMTP | None = None

    def send(self, due: Due) -> str:
        if due.raw is None:
            raise DispatchError("no raw message stored to resend", permanent=True)
        if self._smtp is None:
            self._smtp = open_relay(self.settings)
        try:
            refused = self._smtp.sendmail(_envelope_sender(due.raw), [due.address], due.raw)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise DispatchError(_plain(exc, self.settings)) from None
        if refused:
            raise DispatchError(f"the relay refused {due.address}: {refused}")
        return f"relayed by {self.settings.host}:{self.settings.port}"

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None


def dispatcher_for(settings: RetrySettings) -> Dispatcher | None:
    """The configured dispatcher; None for `pull` (the sender collects retries itself)."""
    if settings.dispatch == "webhook":
        if not settings.webhook.url:
            raise DispatchError("dispatch = webhook needs [retry.webhook] url", permanent=True)
        return WebhookDispatcher(settings.webhook)
    if settings.dispatch == "smtp":
        return SmtpDispatcher(settings.smtp)
    if settings.dispatch == "pull":
        return None
    raise DispatchError(
        f"[retry] dispatch must be pull, webhook or smtp, not {settings.dispatch!r}",
        permanent=True,
    )
