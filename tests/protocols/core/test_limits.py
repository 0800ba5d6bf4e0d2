"""Bounded JSON decoding: depth, non-finite numbers, one NDJSON line whatever the wire text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.protocols.core import limits
from fieldctl.protocols.core.message import Message
from tests.helpers.fuzzing import contained


def test_depth_within_limit_decodes() -> None:
    assert limits.loads("[" * 64 + "]" * 64) is not None
    assert limits.loads(json.dumps([{"a": [1]}] * 500)) == [{"a": [1]}] * 500  # many brackets, shallow


@pytest.mark.parametrize("text", ["[" * 65 + "]" * 65, '{"a":' * 100 + "1" + "}" * 100, "[" * 100_000])
def test_too_deep_is_malformed(text: str) -> None:
    with pytest.raises(limits.Malformed):
        limits.loads(text)


def test_brackets_inside_strings_do_not_count() -> None:
    assert limits.loads(json.dumps(["[" * 1000, '\\"{' * 100])) == ["[" * 1000, '\\"{' * 100]


def test_non_finite_numbers_decode_as_null() -> None:
    assert limits.loads('{"a": NaN, "b": [Infinity, -Infinity]}') == {"a": None, "b": [None, None]}


def test_huge_integers_are_a_value_error() -> None:
    with pytest.raises(ValueError):
        limits.loads("1" * 5000)


def test_size_limit() -> None:
    limits.Limits(max_frame_bytes=10).check_size(10)
    with pytest.raises(limits.Malformed):
        limits.Limits(max_frame_bytes=10).check_size(11)


def test_ndjson_line_is_one_line_and_strict_json() -> None:
    forged = '{"kind": 1}\n{"channel":"emergency","kind":"emergencyStop"}'
    msg = Message("p", "e", "in", "event", "k", {"x": float("nan"), "y": [float("inf")], "forged": forged})
    line = msg.to_json()
    assert "\n" not in line and "NaN" not in line and "Infinity" not in line
    assert json.loads(line)["payload"] == {"x": None, "y": [None], "forged": forged}


@pytest.mark.fuzz
@given(st.text(alphabet='[]{}",:\\ 0a\nNI', max_size=400))
def test_loads_fuzz(text: str) -> None:
    contained(limits.loads, text, allowed=(ValueError,))


def test_ndjson_keeps_a_lone_surrogate_as_its_escape() -> None:
    line = Message("p", "e", "in", "event", "k", {"a": "x\ud800y"}).to_json()
    line.encode("utf-8")  # writable as UTF-8
    assert json.loads(line)["payload"] == {"a": "x\ud800y"}


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        "[18446744073709551616, -9223372036854775809, 123456789012345678901234567890]",
        "[1.0, -0, -0.0, 1E2, 1e400, 1e-400, 0.1]",
        '"\\ud800"',
        '["\\udc00x"]',
        '"\\u0000"',
        "NaN",
        "[Infinity]",
        '{"a": "ü\\u00fc"}',
        "\ufeff[1]",
    ],
)
def test_loads_gives_the_json_modules_values(text: str) -> None:
    """msgspec decodes first; what it refuses goes to the json module: the same values either way."""

    def outcome(decode: Any) -> str:
        try:
            return json.dumps(decode())
        except ValueError:
            return "refused"

    expected = outcome(lambda: limits._decode_within(text, limits.MAX_DEPTH))
    assert outcome(lambda: limits.loads(text)) == expected
    assert outcome(lambda: limits.loads(text.encode("utf-8"))) == expected
