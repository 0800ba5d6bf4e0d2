"""What a proxy's taps remember of one connection's requests until their answers come by, to
give each answer its round trip (`rtt_s`): bounded, whatever the protocol, so a side that never
answers (or a flood of requests) costs the proxy no memory."""

from __future__ import annotations

#: Requests one connection keeps waiting for an answer: past it the oldest is forgotten (its
#: answer then shows without rtt_s).
MAX_WAITING = 10_000


class Waiting:
    """Requests gone one way and not yet answered the other, by key (a token, a reply address),
    with when each went; at most `limit` of them, the oldest forgotten first."""

    def __init__(self, limit: int = MAX_WAITING) -> None:
        self.limit = limit
        self._went: dict[str, float] = {}

    def went(self, key: str, now: float) -> str | None:
        """`key` went at `now` (an empty key is not kept: no answer can name it); returns the
        oldest key when it had to be forgotten to keep the limit."""
        if not key:
            return None
        self._went[key] = now
        if len(self._went) <= self.limit:
            return None
        oldest = next(iter(self._went))
        del self._went[oldest]
        return oldest

    def answered(self, key: str, now: float) -> float | None:
        """The round trip of the answer to `key`, which waits no more; None when it was not waiting."""
        went = self._went.pop(key, None) if key else None
        return None if went is None else now - went
