"""`simulate vantiq --scenario FILE`: a contract test for a connector. Pure: turns NDJSON Messages
into steps and checks results against expectations.

Lines (kind is always the source; ts paces the steps, as gaps between consecutive lines):
  {"channel": "publish", "kind": "SRC", "payload": {...object...}}
  {"channel": "query", "kind": "SRC", "payload": {...params...}}                 any final answer
  {"channel": "query", "kind": "SRC", "payload": {"params": {...}, "expect": {...}}}
       expect: status (100..599 or "error"), rows (exact list), count, partials (min number of
       100 frames), messageCode
  {"channel": "notification", "direction": "in", "kind": "SRC", "payload": {...}}
       waits for a notification from SRC whose object contains these members
  {"channel": "reconnectRequired", "kind": "SRC"}      sends it; expects a new configuration
  {"channel": "testRequestsClientClose", "kind": "SRC"} sends it; expects the socket to close
  {"channel": "close", "kind": "SRC", "payload": {"code": 1000}}
A recording of `simulate vantiq` replays too: its link lines, responses and acks are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fieldctl.protocols.core.message import IN, Message

from . import codec

CLOSE = "close"
#: A line without ts gets the time it was read: mixed with small ts values, that is no pacing.
MAX_GAP_S = 3600.0
ACTIONS = (codec.PUBLISH, codec.QUERY, codec.RECONNECT, codec.TEST_CLOSE, CLOSE)


@dataclass
class Step:
    action: str
    source: str
    data: Any = None
    expect: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0

    def describe(self) -> str:
        return f"{self.action} {self.source}"


def steps_of(messages: list[Message]) -> tuple[list[Step], int]:
    """The steps, and how many lines were skipped as not being steps."""
    steps: list[Step] = []
    skipped = 0
    previous: float | None = None
    for msg in messages:
        step = _step_of(msg)
        if step is None:
            skipped += 0 if msg.is_link else 1
            continue
        gap = msg.ts - previous if previous is not None else 0.0
        step.delay_s = gap if 0.0 < gap <= MAX_GAP_S else 0.0
        previous = msg.ts
        steps.append(step)
    return steps, skipped


def _step_of(msg: Message) -> Step | None:
    source = str(msg.kind)
    if msg.error or not source:
        return None
    if msg.direction == IN:
        return Step(codec.NOTIFICATION, source, msg.payload) if msg.channel == codec.NOTIFICATION else None
    if msg.channel not in ACTIONS:
        return None
    if msg.channel == codec.QUERY and isinstance(msg.payload, dict) and "expect" in msg.payload:
        expect = msg.payload["expect"]
        return Step(codec.QUERY, source, msg.payload.get("params", {}), expect if isinstance(expect, dict) else {})
    return Step(msg.channel, source, msg.payload)


def contains(whole: Any, part: Any) -> bool:
    """Every member of `part` is in `whole` with an equal (recursively contained) value."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and contains(whole[key], value) for key, value in part.items()
        )
    return bool(whole == part)


def check_query(expect: dict[str, Any], result: codec.QueryResult) -> list[str]:
    """What did not hold; empty when the answer met every expectation."""
    if result.problem is not None:
        return [result.problem]
    problems = []
    wanted = expect.get("status")
    if wanted == "error":
        if result.status is None or result.status < 300:
            problems.append(f"status {result.status}, expected an error")
    elif wanted is not None and result.status != wanted:
        problems.append(f"status {result.status}, expected {wanted}")
    if "rows" in expect and result.rows != expect["rows"]:
        problems.append(codec.quoted(f"rows {result.rows}, expected {expect['rows']}"))
    if "count" in expect and result.count != expect["count"]:
        problems.append(f"{result.count} row(s), expected {expect['count']}")
    if "partials" in expect and result.partials < expect["partials"]:
        problems.append(f"{result.partials} partial frame(s), expected at least {expect['partials']}")
    if "messageCode" in expect:
        errors = codec.rows_of(result.error)
        code = errors[0].get("messageCode") if errors and isinstance(errors[0], dict) else None
        if code != expect["messageCode"]:
            problems.append(f"messageCode {code}, expected {expect['messageCode']}")
    return problems
