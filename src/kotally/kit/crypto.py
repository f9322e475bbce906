"""API tokens: ktly_<client uuid>_<secret uuid>. Only a keyed hash is stored."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

TOKEN_PREFIX = "ktly_"  # noqa: S105 - a prefix, not a secret
_TOKEN_RE = re.compile(
    r"^ktly_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)


@dataclass(frozen=True)
class IssuedToken:
    client_id: uuid.UUID
    token: str


def issue_token(client_id: uuid.UUID) -> IssuedToken:
    return IssuedToken(client_id, f"{TOKEN_PREFIX}{client_id}_{uuid.uuid4()}")


# The same few tokens arrive on every request: their client id and keyed hash are kept for the
# most recent ones (bounded), not parsed and hashed again.
@functools.lru_cache(maxsize=1024)
def parse_token(token: str) -> uuid.UUID | None:
    """The client id a well-formed token names, or None."""
    match = _TOKEN_RE.match(token)
    return uuid.UUID(match.group(1)) if match else None


@functools.lru_cache(maxsize=1024)
def hash_token(secret_key: str, token: str) -> str:
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def token_matches(secret_key: str, token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(secret_key, token), stored_hash)
