"""JSON text as the hot path writes it: orjson (compact, UTF-8), and the standard library's
encoder, as compact, for what orjson refuses (an integer past 64 bits, a client's metadata say)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """`value` as compact JSON; `default` turns what neither encoder knows into what they do."""
    try:
        return orjson.dumps(value, default=default)
    except TypeError:  # orjson.JSONEncodeError: past 64 bits
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)
        return text.encode()
