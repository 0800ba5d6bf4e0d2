"""Delays between reconnect attempts, for every transport that reconnects."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator


class Backoff:
    """base * 2**n, capped, with jitter so that many clients restarted together do not
    reconnect in step. Ends after max_retries."""

    def __init__(
        self,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        max_retries: int | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_s, self.cap_s, self.max_retries, self.jitter = base_s, cap_s, max_retries, jitter

    def delays(self) -> Iterator[float]:
        attempt = 0
        while self.max_retries is None or attempt < self.max_retries:
            yield min(self.cap_s, self.base_s * 2**attempt) * (0.5 + self.jitter() / 2)
            attempt += 1
