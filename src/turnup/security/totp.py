"""TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30-second steps) with the standard library, and sealing of the secret.

The shared secret is stored sealed with a key derived from ``TURNUP_SECRET_KEY`` (HMAC-SHA256 as a
counter-mode keystream, then an HMAC-SHA256 tag over nonce and ciphertext): a database dump alone does not
yield it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote, urlencode

from turnup.kernel.errors import InvalidInput

STEP_SECONDS = 30
DIGITS = 6
SKEW_STEPS = 1  # accept the previous and the next step too (clock drift)
_SEAL_VERSION = "v1"


def new_secret() -> str:
    """A new base32 secret (160 bits, as RFC 4226 recommends)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key_bytes(secret_b32: str) -> bytes:
    padded = secret_b32.upper() + "=" * (-len(secret_b32) % 8)
    return base64.b32decode(padded)


def step_at(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def code_for_step(secret_b32: str, step: int) -> str:
    """The RFC 4226 HOTP value for counter ``step`` (RFC 6238: the counter is the time step)."""
    digest = hmac.new(_key_bytes(secret_b32), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def code_at(secret_b32: str, at: datetime) -> str:
    return code_for_step(secret_b32, step_at(at))


def matching_step(secret_b32: str, code: str, at: datetime, after_step: int | None) -> int | None:
    """The time step whose code is ``code`` (within the skew, later than ``after_step``), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now_step = step_at(at)
    for step in range(now_step - SKEW_STEPS, now_step + SKEW_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue  # a code is accepted once
        if hmac.compare_digest(code_for_step(secret_b32, step), code):
            return step
    return None


def provisioning_uri(secret_b32: str, username: str, issuer: str = "Turnup") -> str:
    """The ``otpauth://`` URI authenticator apps read (usually from a QR code)."""
    label = quote(f"{issuer}:{username}")
    query = urlencode({"secret": secret_b32, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS})
    return f"otpauth://totp/{label}?{query}&period={STEP_SECONDS}"


def _subkeys(secret_key: str) -> tuple[bytes, bytes]:
    if not secret_key:
        raise InvalidInput("TURNUP_SECRET_KEY must be set to use TOTP (it keys the stored secrets)")
    root = secret_key.encode()
    return (
        hmac.new(root, b"turnup totp seal: encryption", hashlib.sha256).digest(),
        hmac.new(root, b"turnup totp seal: authentication", hashlib.sha256).digest(),
    )


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + 31) // 32
    return b"".join(
        hmac.new(key, nonce + struct.pack(">I", i), hashlib.sha256).digest() for i in range(blocks)
    )


def seal(secret_b32: str, secret_key: str) -> str:
    """Encrypt-then-MAC the TOTP secret for storage."""
    enc_key, mac_key = _subkeys(secret_key)
    plain = secret_b32.encode()
    nonce = secrets.token_bytes(16)
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(enc_key, nonce, len(plain)), strict=False))
    tag = hmac.new(mac_key, nonce + cipher, hashlib.sha256).digest()
    return f"{_SEAL_VERSION}${base64.urlsafe_b64encode(nonce + cipher + tag).decode()}"


def unseal(sealed: str, secret_key: str) -> str:
    """The TOTP secret, or InvalidInput when the key is wrong or the stored value was altered."""
    enc_key, mac_key = _subkeys(secret_key)
    version, _, body = sealed.partition("$")
    raw = base64.urlsafe_b64decode(body.encode()) if version == _SEAL_VERSION else b""
    if len(raw) < 16 + 32:
        raise InvalidInput("stored TOTP secret is unreadable")
    nonce, cipher, tag = raw[:16], raw[16:-32], raw[-32:]
    if not hmac.compare_digest(tag, hmac.new(mac_key, nonce + cipher, hashlib.sha256).digest()):
        raise InvalidInput("stored TOTP secret does not match TURNUP_SECRET_KEY")
    return bytes(
        a ^ b for a, b in zip(cipher, _keystream(enc_key, nonce, len(cipher)), strict=False)
    ).decode()
