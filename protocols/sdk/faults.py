"""Fault rules, as `--fault RULE` and a faults file give them, and the judge that applies them to
each relayed frame: pure (the frame's decoded messages and the clock in, a Verdict out), with one
seeded random source, so `--seed N` repeats every choice. docs/faults.md is the reference.

    RULE     = ACTION *(" " KEY "=" VALUE)
    ACTION   = "delay" DURATION ["-" DURATION] | "drop" | "duplicate" | "corrupt" | "disconnect" | "stall"
    KEY      = rate | channel | kind | direction | after | every | for | from | until
    DURATION = NUMBER ("ms" | "s")
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import translate
from functools import lru_cache

from fieldctl.profiles.schema import did_you_mean
from fieldctl.protocols.core.limits import MAX_SECONDS, finite_within
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.core.readable import duration_text
from fieldctl.protocols.sdk.machine import Frame

#: What each action does to a frame; `disconnect` cuts every connection instead.
FRAME_ACTIONS = ("delay", "drop", "duplicate", "corrupt", "stall")
ACTIONS = (*FRAME_ACTIONS, "disconnect")
#: The keys every frame action takes: which frames, how often, when.
_FRAME_KEYS = ("direction", "channel", "kind", "rate", "from", "until")
#: The keys each action takes.
KEYS = {
    "delay": _FRAME_KEYS,
    "drop": _FRAME_KEYS,
    "duplicate": _FRAME_KEYS,
    "corrupt": _FRAME_KEYS,
    "stall": (*_FRAME_KEYS, "after", "for"),
    "disconnect": ("after", "every", "from", "until"),
}
_DURATION_KEYS = ("after", "every", "for", "from", "until")
_UNITS = {"ms": 0.001, "s": 1.0}
#: LOW-HIGH, where LOW has at least a digit before the dash (`-5ms` is one, negative, delay)
#: and a dash after an exponent belongs to it (`1e-3s-2s`).
_RANGE = re.compile(r"(.*?[^eE])-(.+)")
#: A comment in a faults file: `#` at the start of a line or after a space (a `#` inside a
#: word is a pattern's, e.g. an MQTT topic's `sensors/#`).
_COMMENT = re.compile(r"(?:^|\s)#.*")
#: The share of a period within which two times are the same `every=` cut.
_SAME_CUT = 1e-9
#: Tells whether a channel or a kind matches a rule's pattern.
_Matcher = Callable[[str], object]

#: Ends a corrupted frame: no UTF-8 text has 0xff, no JSON text a NUL outside a string or a
#: control character inside one, and a pickle stops only at its last opcode, cut away.
_CORRUPT_BYTES = b"\xff\x00"
_CORRUPT_TEXT = "\x00"


@dataclass(frozen=True)
class Rule:
    """One fault rule, as parse_rule reads it (`Rule(text)` alone drops every frame). Times are
    seconds from the run's start."""

    text: str
    action: str = "drop"
    #: `delay`: the shortest and the longest delay; a delay is drawn between them.
    low_s: float = 0.0
    high_s: float = 0.0
    direction: str | None = None
    #: fnmatch patterns a message's channel and kind must match (the same message both).
    channel: str | None = None
    kind: str | None = None
    #: The chance that a matching frame is picked.
    rate: float = 1.0
    #: `stall`: from when (default 0) and for how long; `disconnect`: the first cut and the
    #: period of the next ones.
    after_s: float | None = None
    every_s: float | None = None
    for_s: float = 0.0
    #: The window the rule is on in: from `from_s` (included) to `until_s` (excluded).
    from_s: float = 0.0
    until_s: float = math.inf

    def picks(self, direction: str, messages: Sequence[Message]) -> bool:
        """Whether a frame going `direction` and decoded as `messages` is one this rule is about
        (before its window and rate)."""
        if self.direction is not None and direction != self.direction:
            return False
        if self.channel is None and self.kind is None:
            return True
        channel, kind = _pattern(self.channel), _pattern(self.kind)
        return any(channel(msg.channel) and kind(str(msg.kind)) for msg in messages)

    def on_at(self, elapsed: float) -> bool:
        """Whether the rule is in its window `elapsed` seconds after the start."""
        return self.from_s <= elapsed < self.until_s


def _match_any(_: str) -> bool:
    return True


@lru_cache(maxsize=256)
def _pattern(glob: str | None) -> _Matcher:
    """A glob, compiled once: a plain name compares, `*`, `?` and `[...]` match as fnmatch does
    (case counts)."""
    if glob is None:
        return _match_any
    if not any(char in glob for char in "*?["):
        return glob.__eq__
    return re.compile(translate(glob)).fullmatch


@dataclass(frozen=True)
class Verdict:
    """What happens to one frame: `label` is what the feed shows in the message's `fault` field
    (`dropped`, `delayed 200.0 ms`, `duplicated`, `corrupted`, `stalled`; several joined with
    ", ")."""

    label: str
    drop: bool = False
    #: Seconds the frame waits before it is sent on (a delay, or what is left of a stall).
    delay_s: float = 0.0
    #: How many times the frame is sent (2: duplicated).
    copies: int = 1
    #: Send a malformed frame (corrupt_frame) in place of this one.
    corrupt: bool = False
    #: A stall holds it: it goes at the stall's end, not in line behind frames a delay holds.
    stalled: bool = False


def parse_rule(text: str) -> Rule:
    """One rule from its text; ValueError with a one-line reason a person can act on, after the
    rule quoted (the CLI puts `--fault` before it)."""
    try:
        return _parse(text)
    except ValueError as exc:
        raise ValueError(f"{text.strip()!r}: {exc}") from None


def parse_rules(lines: str, source: str) -> list[Rule]:
    """A faults file: one rule a line, `#` comments (at a line's start or after a space) and
    blank lines skipped; ValueError naming `source` and the line."""
    rules = []
    for number, line in enumerate(lines.splitlines(), 1):
        text = _COMMENT.sub("", line).strip()
        if not text:
            continue
        try:
            rules.append(parse_rule(text))
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: {exc}") from None
    return rules


def _parse(text: str) -> Rule:
    words = text.split()
    if not words:
        raise ValueError(f"empty: a rule starts with an action ({', '.join(ACTIONS)})")
    action, rest = words[0], words[1:]
    if action not in ACTIONS:
        listed = f" (actions: {', '.join(ACTIONS)})"
        raise ValueError(f"unknown action {action}{did_you_mean(action, ACTIONS) or listed}")
    low_s = high_s = 0.0
    if action == "delay":
        if not rest or "=" in rest[0]:
            raise ValueError("delay needs how long: delay 200ms, or a range: delay 50-400ms")
        low_s, high_s = _delay_range(rest[0])
        rest = rest[1:]
    given = _keys(action, rest)
    times = {
        key: _duration(value, f"{key}={value}", positive=key in ("every", "for"))
        for key, value in given.items()
        if key in _DURATION_KEYS
    }
    direction = given.get("direction")
    if direction not in (None, IN, OUT):
        hint = did_you_mean(direction, (IN, OUT))
        raise ValueError(f"direction={direction}: in (from upstream) or out (to upstream){hint}")
    rule = Rule(
        text.strip(),
        action,
        low_s,
        high_s,
        direction=direction,
        channel=given.get("channel"),
        kind=given.get("kind"),
        rate=_rate(given["rate"]) if "rate" in given else 1.0,
        after_s=times.get("after"),
        every_s=times.get("every"),
        for_s=times.get("for", 0.0),
        from_s=times.get("from", 0.0),
        until_s=times.get("until", math.inf),
    )
    _check_whole(rule, given)
    return rule


def _keys(action: str, words: Iterable[str]) -> dict[str, str]:
    """The rule's KEY=VALUE words, each a key the action takes, once, with a value."""
    allowed = KEYS[action]
    given: dict[str, str] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            raise ValueError(f"{word} is not KEY=VALUE (keys of {action}: {', '.join(allowed)})")
        if key not in allowed:
            known = {name for keys in KEYS.values() for name in keys}
            if key in known:
                raise ValueError(f"{key}= does not apply to {action} (its keys: {', '.join(allowed)})")
            listed = f" (keys of {action}: {', '.join(allowed)})"
            raise ValueError(f"unknown key {key}{did_you_mean(key, allowed) or listed}")
        if key in given:
            raise ValueError(f"{key}= given twice")
        if not value:
            raise ValueError(f"{key}= needs a value")
        given[key] = value
    return given


def _check_whole(rule: Rule, given: dict[str, str]) -> None:
    """What no single key says wrong: the rule as a whole must make sense."""
    if rule.until_s <= rule.from_s:
        raise ValueError(f"until={given['until']} is not after from={given.get('from', '0s')}")
    if rule.action == "disconnect" and rule.after_s is None and rule.every_s is None:
        raise ValueError("disconnect needs when: after=30s (once), every=60s, or both")
    if rule.action == "stall" and "for" not in given:
        raise ValueError("stall needs how long: for=20s")


def _duration(text: str, shown: str, *, positive: bool = False) -> float:
    """Seconds from `200ms` or `1.5s`: a unit is required (a bare 200 could be either). `shown`
    is how the rule wrote it, for the error."""
    number, unit = _split_unit(text)
    try:
        seconds = float(number) * _UNITS[unit or "s"]
    except ValueError:
        raise ValueError(f"{shown}: not a duration (e.g. 200ms, 1.5s)") from None
    if unit is None:
        raise ValueError(f"{shown}: a duration needs its unit: {text}ms or {text}s")
    if not finite_within(seconds, 0.0, MAX_SECONDS, above_low=positive):
        least = "longer than 0" if positive else "from 0"
        raise ValueError(f"{shown}: a duration {least} and at most a day ({MAX_SECONDS:g}s)")
    return seconds


def _split_unit(text: str) -> tuple[str, str | None]:
    """`200ms` -> (`200`, `ms`); `200` -> (`200`, None)."""
    for unit in _UNITS:
        if text.endswith(unit):
            return text[: -len(unit)], unit
    return text, None


def _delay_range(text: str) -> tuple[float, float]:
    """`200ms` (fixed) or `50-400ms`, `0.5-2s`, `500ms-2s` (drawn between): the low end takes
    the high end's unit when it has none."""
    shown = f"delay {text}"
    ends = _RANGE.fullmatch(text)
    if ends is None:  # one delay (a negative one is refused as such)
        delay = _duration(text, shown)
        return delay, delay
    low_text, high_text = ends.groups()
    high = _duration(high_text, shown)
    if _split_unit(low_text)[1] is None:
        low_text += _split_unit(high_text)[1] or ""
    low = _duration(low_text, shown)
    if low > high:
        raise ValueError(f"{shown}: the shortest delay is longer than the longest")
    return low, high


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not finite_within(rate, 0.0, 1.0):
        raise ValueError(f"rate={text}: a chance from 0 to 1 (0.1: one frame in ten)")
    return rate


def corrupt_frame(frame: Frame) -> Frame:
    """A malformed frame of the same shape in place of a good one: its (last) body cut in half
    and ended with bytes no decoder takes."""
    if isinstance(frame, tuple):
        return (*frame[:-1], _corrupt_bytes(frame[-1])) if frame else frame
    if isinstance(frame, str):
        return frame[: len(frame) // 2] + _CORRUPT_TEXT
    return _corrupt_bytes(frame)


def _corrupt_bytes(body: bytes) -> bytes:
    return body[: len(body) // 2] + _CORRUPT_BYTES


class Faults:
    """The rules of one run and their random source. Runners ask `judge` for every frame they
    relay (never when `active` is False: the fast path) and `next_disconnect` for when to cut
    every connection; times are the runner's loop clock, from `start(now)`.

    The rules that pick a frame (its direction, channel and kind, in their window, drawn at their
    rate) are consulted in the order given: a drop wins over everything; otherwise the delays and
    what is left of the stalls add up, each duplicate adds a copy, and the labels are joined."""

    def __init__(self, rules: Sequence[Rule] = (), seed: int | None = None) -> None:
        self.rules = tuple(rules)
        self.random = random.Random(seed)
        self.started_at = 0.0
        self._frame_rules = tuple(rule for rule in self.rules if rule.action in FRAME_ACTIONS)
        self._disconnects = tuple(rule for rule in self.rules if rule.action == "disconnect")

    @property
    def active(self) -> bool:
        """True when there are rules (a runner asks `judge` for every frame, even when they are
        all `disconnect` rules, which pick none); False: relay everything as it comes."""
        return bool(self.rules)

    def start(self, now: float) -> None:
        """The run starts: `after=`, `every=`, `from=` and `until=` count from here."""
        self.started_at = now

    def judge(self, direction: str, messages: Sequence[Message], now: float) -> Verdict | None:
        """What to do with one frame going in `direction` (`in`: from upstream, `out`: to it),
        decoded as `messages`; None: relay it as it came."""
        elapsed = now - self.started_at
        labels: list[str] = []
        delay_s, copies, corrupt, stalled = 0.0, 1, False, False
        for rule in self._frame_rules:
            if not (rule.on_at(elapsed) and rule.picks(direction, messages)):
                continue
            if rule.action == "stall":
                stalled_for = self._stalled_for(rule, elapsed)
                if stalled_for <= 0 or not self._drawn(rule):
                    continue
                delay_s += stalled_for
                stalled = True
                labels.append("stalled")
                continue
            if not self._drawn(rule):
                continue
            if rule.action == "drop":
                return Verdict("dropped", drop=True)
            if rule.action == "delay":
                delay = rule.low_s if rule.low_s == rule.high_s else self.random.uniform(rule.low_s, rule.high_s)
                delay_s += delay
                labels.append(f"delayed {duration_text(delay)}")
            elif rule.action == "duplicate":
                copies += 1
                labels.append("duplicated")
            else:
                corrupt = True
                labels.append("corrupted")
        if not labels:
            return None
        return Verdict(", ".join(labels), delay_s=delay_s, copies=copies, corrupt=corrupt, stalled=stalled)

    @staticmethod
    def _stalled_for(rule: Rule, elapsed: float) -> float:
        """Seconds left of the rule's stall at `elapsed`; 0 outside it."""
        begins = rule.after_s or 0.0
        ends = begins + rule.for_s
        return ends - elapsed if begins <= elapsed < ends else 0.0

    def _drawn(self, rule: Rule) -> bool:
        """Whether a frame the rule picks is one of its `rate`: a draw only for a rate below 1."""
        return rule.rate >= 1.0 or (rule.rate > 0.0 and self.random.random() < rule.rate)

    def next_disconnect(self, now: float) -> float | None:
        """When every connection is cut next (loop time, strictly after `now`), by a `disconnect`
        rule; None: never again."""
        dues = [due for rule in self._disconnects if (due := self._next_cut(rule, now)) is not None]
        return min(dues, default=None)

    def _next_cut(self, rule: Rule, now: float) -> float | None:
        """The rule's first cut after `now` within its window: at `after` (else `every`), then
        every `every` from there."""
        first = self.started_at + (rule.after_s if rule.after_s is not None else rule.every_s or 0.0)
        window_opens = self.started_at + rule.from_s
        if rule.every_s is None:
            due = first
            if due < window_opens:
                return None
        else:
            # The k-th cut is at first + k * every, never a sum of periods: a cut just made is
            # never due again by a rounding error.
            passed = math.floor((now - first) / rule.every_s + _SAME_CUT) + 1
            opens = math.ceil((window_opens - first) / rule.every_s - _SAME_CUT)
            count = max(0, passed, opens)
            while (due := first + count * rule.every_s) <= now:
                count += 1
        return due if now < due and due - self.started_at < rule.until_s else None
