"""Fault rules, as `--fault RULE` and a faults file give them, and the judge that applies them to
each relayed frame: pure (the frame's decoded messages and the clock in, a Verdict out), with one
seeded random source, so `--seed N` repeats every choice. The grammar is documented in the
README's "Proxy and faults" chapter.

    RULE    = ACTION *(" " KEY "=" VALUE)
    ACTION  = delay DURATION[-DURATION] | drop | duplicate | corrupt | disconnect | stall
    KEY     = rate | channel | kind | direction | after | every | for | from | until
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.machine import Frame


@dataclass(frozen=True)
class Rule:
    """One fault rule, parsed (parse_rule)."""

    text: str


@dataclass(frozen=True)
class Verdict:
    """What happens to one frame: `label` is what the feed shows in the message's `fault` field
    (`dropped`, `delayed 200 ms`, `duplicated`, `corrupted`, `stalled`)."""

    label: str
    drop: bool = False
    #: Seconds the frame waits before it is sent on (a delay, or what is left of a stall).
    delay_s: float = 0.0
    #: How many times the frame is sent (2: duplicated).
    copies: int = 1
    #: Send a malformed frame (corrupt_frame) in place of this one.
    corrupt: bool = False


def parse_rule(text: str) -> Rule:
    """One rule from its text; ValueError with a one-line reason a person can act on."""
    raise ValueError(f"{text!r}: fault rules are not known yet")


def parse_rules(lines: str, source: str) -> list[Rule]:
    """A faults file: one rule a line, `#` comments and blank lines skipped; ValueError naming
    `source` and the line."""
    return []


def corrupt_frame(frame: Frame) -> Frame:
    """A malformed frame of the same shape in place of a good one: its (last) body cut in half
    and ended with bytes no decoder takes."""
    return frame


class Faults:
    """The rules of one run and their random source. Runners ask `judge` for every frame they
    relay (never when `active` is False: the fast path) and `next_disconnect` for when to cut
    every connection; times are the runner's loop clock, from `start(now)`."""

    def __init__(self, rules: Sequence[Rule] = (), seed: int | None = None) -> None:
        self.rules = tuple(rules)
        self.random = random.Random(seed)
        self.started_at = 0.0

    @property
    def active(self) -> bool:
        """True when some rule may touch a frame; False: relay everything as it comes."""
        return bool(self.rules)

    def start(self, now: float) -> None:
        """The run starts: `after=`, `every=`, `from=` and `until=` count from here."""
        self.started_at = now

    def judge(self, direction: str, messages: Sequence[Message], now: float) -> Verdict | None:
        """What to do with one frame going in `direction` (`in`: from upstream, `out`: to it),
        decoded as `messages`; None: relay it as it came."""
        return None

    def next_disconnect(self, now: float) -> float | None:
        """When every connection is cut next (loop time, strictly after `now`), by a `disconnect`
        rule; None: never again."""
        return None
