"""A proxy's books of requests waiting for their answers: each answer's round trip once, the
oldest forgotten past the limit (and named, so a protocol's own books can forget it too)."""

from __future__ import annotations

from fieldctl.protocols.sdk.runners.waiting import Waiting


def test_an_answer_gets_its_round_trip_once() -> None:
    waiting = Waiting()
    assert waiting.went("token-1", 10.0) is None
    assert waiting.answered("token-1", 10.25) == 0.25
    assert waiting.answered("token-1", 11.0) is None  # answered already
    assert waiting.answered("never-went", 11.0) is None


def test_an_empty_key_is_never_kept() -> None:
    waiting = Waiting()
    assert waiting.went("", 1.0) is None
    assert waiting.answered("", 2.0) is None


def test_past_the_limit_the_oldest_is_forgotten_and_named() -> None:
    waiting = Waiting(limit=2)
    assert waiting.went("a", 1.0) is None and waiting.went("b", 2.0) is None
    assert waiting.went("c", 3.0) == "a"
    assert waiting.answered("a", 4.0) is None
    assert waiting.answered("b", 4.0) == 2.0 and waiting.answered("c", 4.0) == 1.0
