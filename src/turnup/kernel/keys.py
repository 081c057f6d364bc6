"""The secret key that makes records tamper-evident: it lives outside the database (settings), so someone who
can edit rows cannot recompute a MAC over them.

``TURNUP_AUDIT_KEY`` is used when set, otherwise ``TURNUP_SECRET_KEY``. With neither, a fixed development key
is used and ``key_configured()`` is false (``turnup audit verify`` warns: a MAC under a published key proves
nothing). Each use names a *purpose*, mixed into the MAC, so a MAC made for one kind of record is never valid
for another.
"""

from __future__ import annotations

import hashlib
import hmac

from turnup.kernel.settings import get_settings

DEVELOPMENT_KEY = b"turnup-development-key-not-secret"


def key_configured() -> bool:
    settings = get_settings()
    return bool(settings.audit_key or settings.secret_key)


def _key() -> bytes:
    settings = get_settings()
    configured = settings.audit_key or settings.secret_key
    return configured.encode() if configured else DEVELOPMENT_KEY


def mac(purpose: str, message: bytes) -> str:
    """HMAC-SHA256 (hex) of ``message`` for ``purpose`` with the configured key."""
    return hmac.new(_key(), purpose.encode() + b"\n" + message, hashlib.sha256).hexdigest()


def mac_ok(purpose: str, message: bytes, expected: str | None) -> bool:
    """Constant-time check of a MAC made by ``mac``."""
    return expected is not None and hmac.compare_digest(mac(purpose, message), expected)
