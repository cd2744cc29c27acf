"""A client of Postfix's policy delegation protocol, written from SMTPD_POLICY_README:
attributes as `name=value` lines, an empty line to end the request, one `action=`
line and an empty line back, on a connection kept open for the next request."""

from __future__ import annotations

import socket


class PolicyClient:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.file = self.sock.makefile("rb")

    def ask(self, **attrs: str) -> str:
        """Send one request, return the action (what follows `action=`)."""
        lines = "".join(f"{name}={value}\n" for name, value in attrs.items())
        self.sock.sendall(lines.encode() + b"\n")
        return self.read_answer()

    def read_answer(self) -> str:
        lines = []
        while (line := self.file.readline()) not in (b"\n", b""):
            lines.append(line.decode().rstrip("\n"))
        (action,) = [x for x in lines if x.startswith("action=")]
        return action.removeprefix("action=")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def rcpt(recipient: str, **extra: str) -> dict[str, str]:
    """The attributes Postfix sends at RCPT TO (a realistic subset, and more)."""
    return {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "127.0.0.1",
        "client_name": "localhost",
        "helo_name": "client.example",
        "sender": "news@sender.example",
        "recipient": recipient,
        "recipient_count": "0",
        "queue_id": "",
        "instance": "123.456.7",
        "size": "0",
        **extra,
    }
