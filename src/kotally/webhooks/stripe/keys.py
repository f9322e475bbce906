"""Deterministic ids derived from Stripe objects: the same object always gives the same key,
so a replayed or re-sent event can never apply twice (webhooks.md §2)."""

from __future__ import annotations

import hashlib

from kotally.kit.fields import ID_CHARS_MAX


def key(*parts: object) -> str:
    """`stripe:<part>:<part>…`, or, past 255 characters, `stripe:sha256:<digest of it>`."""
    joined = ":".join(["stripe", *(str(p) for p in parts)])
    if len(joined) <= ID_CHARS_MAX:
        return joined
    return "stripe:sha256:" + hashlib.sha256(joined.encode()).hexdigest()
