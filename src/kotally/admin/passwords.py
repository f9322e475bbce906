"""Passwords: Argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kotally.errors import OperatorError

PASSWORD_LENGTH_MIN = 12
# Argon2 hashes any length, but a megabyte of password is a denial of service, not a password.
PASSWORD_LENGTH_MAX = 1024

_hasher = PasswordHasher()
# Verified against when the account does not exist, so both answers cost the same time.
_DUMMY_HASH = _hasher.hash("kotally-no-such-account-password")


def check_strength(password: str) -> None:
    if len(password) < PASSWORD_LENGTH_MIN:
        raise OperatorError(f"password must be at least {PASSWORD_LENGTH_MIN} characters")
    if len(password) > PASSWORD_LENGTH_MAX:
        raise OperatorError(f"password must be at most {PASSWORD_LENGTH_MAX} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    if len(password) > PASSWORD_LENGTH_MAX:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
