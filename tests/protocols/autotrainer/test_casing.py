"""pyhumps 3.8.0 casing as the auto-trainer device applies it (spec §3.2 on the way out, §6.2 on the way in).

Expected values are the spec's observed examples; the extra edge cases were checked against the real
pyhumps 3.8.0 once, when these tests were written. Pure: no sockets, no sleeps.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fieldctl.protocols.autotrainer import codec
from fieldctl.protocols.autotrainer.casing import camelize, camelize_key, decamelize, decamelize_text

# --- camelize: every key the device sends (spec §3.2) -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # the spec's examples
        ("error_kind", "errorKind"),
        ("dcs_send_x", "dcsSendX"),
        ("target_y_limit", "targetYLimit"),
        ("rh_max_vp_list", "rhMaxVpList"),
        ("is_3d", "is3d"),
        ("some-key", "someKey"),
        ("Already", "already"),
        ("ABC_DEF", "ABC_DEF"),
        ("_private", "_private"),
        ("x__y", "xY"),
        ("sessionId", "sessionId"),
        # the rules behind them
        ("A1x", "A1x"),  # the first two characters count as upper-case: first letter kept
        ("APIResponse", "APIResponse"),
        ("12", "12"),  # all digits: unchanged
        ("a b_c", "abC"),  # whitespace removed before the underscore rule
        ("A B", "A B"),  # all upper-case: the original key, whitespace included
        ("__dunder__x", "__dunderX"),  # leading underscores stay
        ("trailing_", "trailing_"),  # a separator with nothing after it stays
        ("a-_b", "aB"),  # a mixed run of separators goes as one
        ("", ""),
    ],
)
def test_camelize_key(key: str, expected: str) -> None:
    """Each wire key name depends on these rules; a difference breaks byte-for-byte replies and events."""
    assert camelize_key(key) == expected


def test_camelize_rewrites_keys_recursively_and_never_values() -> None:
    """The device camelizes keys inside data/context and inside arrays, but string values pass untouched."""
    value = {
        "session_id": "keep_this_Value",
        "trial_reach_events": [{"delay_since_presented": 0.5, "method": "right_hand"}],
        "response_data": {"rh_max_vp_list": [[1.0, 2.0, 3.0], None]},
        7: "non-string keys are left alone",
    }
    assert camelize(value) == {
        "sessionId": "keep_this_Value",
        "trialReachEvents": [{"delaySincePresented": 0.5, "method": "right_hand"}],
        "responseData": {"rhMaxVpList": [[1.0, 2.0, 3.0], None]},
        7: "non-string keys are left alone",
    }


@pytest.mark.parametrize("scalar", ["snake_case_value", 3, None, 1.5, True])
def test_camelize_leaves_scalars_alone(scalar: Any) -> None:
    """Only object keys are rewritten; a bare value is returned as is."""
    assert camelize(scalar) == scalar


# --- decamelize_text: the whole request text the device receives (spec §6.2) ------------------------


def _value_after_device(value: str) -> Any:
    """A string value as the delegate sees it: inside a request, raw UTF-8 (not \\u-escaped)."""
    text = '{"value": ' + json.dumps(value, ensure_ascii=False) + "}"
    return json.loads(decamelize_text(text))["value"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the spec's observed results
        ("APIResponse", "_api_response"),
        ("ABC", "_ab_c"),
        ("x_Y", "x__y"),
        ("Été", "été"),
        ("a b", "ab"),
        ("Mouse A", "_mouse_a"),
        ("Hello World", "_hello_world"),
        ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "3_f2504_e0-4_f89-11_d3-9_a0_c-0305_e82_c3301"),
        # only lower-case letters, digits and punctuation survive
        ("abc-123_/x.y", "abc-123_/x.y"),
        ("X", "_x"),
        ("ab12CD", "ab12_c_d"),
    ],
)
def test_decamelize_text_mangles_string_values(value: str, expected: str) -> None:
    """Why clients must not send case-sensitive text: the device rewrites values, not just keys."""
    assert _value_after_device(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"customCommand": 7}', '{"custom_command":7}'),  # keys to snake_case, whitespace gone
        ('{"COMMAND":400}', '{"COMMAND":400}'),  # no lower-case letter at all: left unchanged
        ('{"COMMAND": 400}', '{"COMMAND": 400}'),  # ... the original text, whitespace included
        ("12345", "12345"),  # all digits: unchanged
        ('{"command": 1E5}', '{"command":1_e5}'),  # an upper-case exponent becomes invalid JSON
        ('{"v": "\\u00C9"}', '{"v":"\\u00_c9"}'),  # so does an upper-case \\u escape
        ('{"v": "\\u00c9"}', '{"v":"\\u00c9"}'),  # json.dumps' lower-case escapes survive
    ],
)
def test_decamelize_text_whole_document(text: str, expected: str) -> None:
    """The all-upper/all-digit exception and the texts that stop parsing (spec §6.2)."""
    assert decamelize_text(text) == expected


@pytest.mark.parametrize("text", ['{"command": 1E5}', '{"v": "\\u00C9"}'])
def test_decamelized_text_no_longer_parses(text: str) -> None:
    """These requests become unparseable on the device, so a client must never produce them."""
    with pytest.raises(ValueError):
        json.loads(decamelize_text(text))


def test_pretty_printed_request_survives() -> None:
    """Whitespace between tokens is simply removed, so indented JSON reads like compact JSON."""
    request = {"command": 120, "nonce": 3, "data": {"mode": 100}}
    assert json.loads(decamelize_text(json.dumps(request, indent=2))) == request


def test_decamelize_rewrites_keys_only() -> None:
    """The object form (used for keys the delegate sees) snake_cases keys recursively and keeps values."""
    assert decamelize({"animalName": "Mouse A", "nested": [{"plainValue": 1}]}) == {
        "animal_name": "Mouse A",
        "nested": [{"plain_value": 1}],
    }


WIRE_KEYS = [
    "sessionId",
    "trialId",
    "batchId",
    "reasonCode",
    "activeAlarms",
    "resumedAlarms",
    "isAnalysisDeferred",
    "captureTrialCount",
    "trialReachEvents",
    "delaySincePresented",
    "rhMaxVpList",
    "dcsSendX",
    "targetYLimit",
    "reachStatusTotal",
    "isHomeOnExcessiveDriftEnabled",
    "magnetIntensity",
    "errorKind",
    "errorMessage",
]


@pytest.mark.parametrize("key", WIRE_KEYS)
def test_wire_keys_survive_snake_case_round_trip(key: str) -> None:
    """A delegate echoing request data (snake_cased on arrival) sends the same camelCase key back (spec §6.2, §7)."""
    assert camelize_key(decamelize_text(key)) == key


# --- mangled_values: the client-side warning about §6.2 ---------------------------------------------


def test_mangled_values_flags_only_rewritten_strings() -> None:
    """The spec's example: "Mouse A" would arrive altered, "abc" would not."""
    assert codec.mangled_values({"name": "Mouse A", "ok": "abc"}) == [("data.name", "Mouse A", "_mouse_a")]


@pytest.mark.parametrize(
    "data",
    [
        {"name": "Mouse A", "ok": "abc"},
        {"code": "ABC", "spaced": "A B", "one": "X"},  # all upper-case on their own, but not inside a request
        {"items": ["fine", "Bad Value"], "deep": {"list": [{"id": "3F2504E0"}]}},
        {"accented": "Été", "lower": "été"},  # json.dumps escapes them as lower-case \\u, which survives
        {"enabled": True, "mode": 100, "nothing": None, "small": 1e-5},
    ],
)
def test_mangled_values_predicts_what_the_device_parses(data: dict[str, Any]) -> None:
    """The warning must name exactly the values parse_request would alter, with what they become."""
    seen = codec.parse_request([codec.encode_request(99999, 1, data, with_data=True)], {99999})
    assert seen is not None
    predicted = {path: (before, after) for path, before, after in codec.mangled_values(data)}
    actual = {path: (before, after) for path, before, after in _differences(data, seen.data, "data")}
    assert predicted == actual


def _differences(sent: Any, seen: Any, path: str) -> list[tuple[str, Any, Any]]:
    """String values that differ between what was sent and what the device saw, keyed by the sent paths."""
    if isinstance(sent, dict):
        # keys arrive snake_cased; pair them up by position (dicts keep their order through JSON)
        return [
            d
            for (key, value), seen_value in zip(sent.items(), seen.values(), strict=True)
            for d in _differences(value, seen_value, f"{path}.{key}")
        ]
    if isinstance(sent, list):
        return [
            d
            for index, (value, seen_value) in enumerate(zip(sent, seen, strict=True))
            for d in _differences(value, seen_value, f"{path}[{index}]")
        ]
    return [(path, sent, seen)] if isinstance(sent, str) and sent != seen else []
