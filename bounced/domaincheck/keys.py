"""DKIM key records (RFC 6376 3.6.1): their tags, and the length of an RSA key read
from its DER encoding (SubjectPublicKeyInfo, or a bare RSAPublicKey as some
providers publish), without a cryptography library."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

__all__ = ["DkimKey", "parse_key_record", "tags"]

_RSA_OID = bytes.fromhex("2a864886f70d010101")


@dataclass(frozen=True, slots=True)
class DkimKey:
    key_type: str  # rsa or ed25519 (or what the record says)
    bits: int  # 0 when unknown
    revoked: bool = False
    problem: str = ""


def tags(record: str) -> dict[str, str]:
    """`k=v; k2=v2` tags (DKIM, DMARC) as a dict; names lower-case, later ones win."""
    out = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            out[name.strip().lower()] = "".join(value.split())
    return out


def parse_key_record(record: str) -> DkimKey:
    found = tags(record)
    key_type = found.get("k", "rsa").lower()
    if "p" not in found:
        return DkimKey(key_type, 0, problem="the record has no p= (public key) tag")
    if not found["p"]:
        return DkimKey(key_type, 0, revoked=True)
    try:
        data = base64.b64decode(found["p"], validate=True)
    except (binascii.Error, ValueError):
        return DkimKey(key_type, 0, problem="p= is not base64")
    if key_type == "ed25519":
        ok = len(data) == 32
        return DkimKey(key_type, 256 if ok else 0, problem="" if ok else "not a 32-byte key")
    if key_type != "rsa":
        return DkimKey(key_type, 0, problem=f"unknown key type k={key_type}")
    bits = _rsa_bits(data)
    return DkimKey(key_type, bits, problem="" if bits else "p= is not an RSA public key")


def _der(data: bytes, at: int) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the DER element at `at`."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[at : at + size], "big")
        at += size
    content = data[at : at + length]
    if len(content) != length:
        raise ValueError("truncated")
    return tag, content, at + length


def _rsa_bits(data: bytes) -> int:
    """The modulus length of an RSA key in SubjectPublicKeyInfo or PKCS#1 form, else 0."""
    try:
        tag, body, _ = _der(data, 0)
        if tag != 0x30:
            return 0
        first_tag, first, after = _der(body, 0)
        if first_tag == 0x30:  # SubjectPublicKeyInfo: algorithm, then a BIT STRING
            _, oid, _ = _der(first, 0)
            if oid != _RSA_OID:
                return 0
            bit_tag, bits, _ = _der(body, after)
            if bit_tag != 0x03:
                return 0
            tag, body, _ = _der(bits[1:], 0)
            first_tag, first, _ = _der(body, 0)
        if first_tag != 0x02:
            return 0
        return len(first.lstrip(b"\0")) * 8 - (8 - first.lstrip(b"\0")[0].bit_length())
    except (IndexError, ValueError):
        return 0
