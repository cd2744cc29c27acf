"""Self-signed certificates made in the test: for the TLS servers the tests start and
for the keys a provider signs its webhooks with (no certificate comes from outside)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

__all__ = ["self_signed"]


def self_signed(
    key: Any, common_name: str, *, days: int = 1, extensions: Iterable[tuple[Any, bool]] = ()
) -> x509.Certificate:
    """A certificate for `key`'s public key, issued by itself, valid from a day ago for
    `days` days; `extensions` are (extension, critical) pairs."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())
