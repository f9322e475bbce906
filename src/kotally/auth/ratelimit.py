"""Per-client token buckets (throttled-py): in-process, or in Redis when KOTALLY_REDIS_URL is set
so that every server process shares one budget per client."""

from __future__ import annotations

import math
from dataclasses import dataclass

from throttled import MemoryStore, RateLimiterType, RedisStore, Throttled, per_sec
from throttled.store.base import BaseStore

from kotally.config import Settings


@dataclass(frozen=True)
class RateDecision:
    limited: bool
    limit: int  # requests per second
    remaining: int
    reset_seconds: int  # until the next request is allowed; 0 while remaining > 0

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if self.limited:
            headers["Retry-After"] = str(max(self.reset_seconds, 1))
        return headers


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.default_rate = settings.rate_limit_per_second
        self.default_burst = settings.rate_limit_burst
        self._store: BaseStore = (
            RedisStore(server=settings.redis_url) if settings.redis_url else MemoryStore()
        )
        self._limiters: dict[tuple[int, int], Throttled] = {}

    @property
    def enabled(self) -> bool:
        return self.default_rate > 0

    def _limiter(self, rate: int, burst: int) -> Throttled:
        key = (rate, burst)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = Throttled(
                using=RateLimiterType.TOKEN_BUCKET.value,
                quota=per_sec(rate, burst=burst),
                store=self._store,
                key_prefix="kotally:rl",
            )
            self._limiters[key] = limiter
        return limiter

    def hit(self, client_key: str, client_rate: int | None) -> RateDecision | None:
        """Spend one token of the client's bucket; None when limiting is off."""
        if not self.enabled:
            return None
        rate = client_rate or self.default_rate
        burst = 2 * client_rate if client_rate else self.default_burst
        result = self._limiter(rate, burst).limit(f"{rate}:{burst}:{client_key}")
        state = result.state
        if result.limited:
            reset = max(math.ceil(state.retry_after), 1)
        elif state.remaining > 0:
            reset = 0
        else:
            # This request took the last token: the next one refills within 1/rate <= 1 second.
            reset = 1
        return RateDecision(result.limited, rate, state.remaining, reset)
