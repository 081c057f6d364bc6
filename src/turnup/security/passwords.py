"""Password hashing (argon2id; the earlier ``scrypt$`` hashes still verify) and the password policy."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from turnup.kernel.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 200
COMMON_PASSWORDS = Path(__file__).parent / "data" / "common_passwords.txt"

# argon2id with the library's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4)
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (``$argon2id$...``)."""
    return _hasher.hash(password)


def _verify_scrypt(password: str, stored: str) -> bool:
    """The hashes written before argon2id: ``scrypt$<salt hex>$<digest hex>`` (n=2**14, r=8, p=1)."""
    parts = stored.split("$")
    if len(parts) != 3:
        return False
    try:
        salt = bytes.fromhex(parts[1])
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), parts[2])


def verify_password(password: str, stored: str) -> tuple[bool, bool]:
    """``(matches, needs_rehash)``: scrypt hashes and argon2 hashes with outdated parameters need a rehash."""
    if stored.startswith("scrypt$"):
        ok = _verify_scrypt(password, stored)
        return ok, ok
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(stored)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(24))


def dummy_verify(password: str) -> bool:
    """Verify against a throw-away argon2id hash: an unknown user costs the same work as a known one."""
    try:
        _hasher.verify(_dummy_hash(), password)
    except VerificationError:
        return False
    return False


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower case)."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def check_password_policy(password: str, username: str) -> None:
    """Raise InvalidInput (400) naming the rule a password breaks.

    At least 12 characters, not in the shipped common-password list (compared in lower case), and neither
    equal to nor containing the username.
    """
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password: must be at least {MIN_LENGTH} characters long", reason="Weak password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"password: must be at most {MAX_LENGTH} characters long", reason="Weak password")
    lowered = password.lower()
    name = username.strip().lower()
    if name and name in lowered:
        raise InvalidInput("password: must not contain the username", reason="Weak password")
    if lowered in common_passwords():
        raise InvalidInput(
            "password: is a common password (found in the list of common passwords); choose another",
            reason="Weak password",
        )
