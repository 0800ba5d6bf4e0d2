"""The autotrainer decoders against hostile bytes: limits (depth, digits), wrong types where a
scalar is expected, NDJSON safety, and a fuzz suite holding every decoder to the contract of
tests/fuzzing.py: no exception at all (they report errors in the Message), no slow case."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.profiles import load_profile
from fieldctl.protocols.autotrainer import codec
from fieldctl.protocols.autotrainer.driver import Driver
from fieldctl.protocols.autotrainer.simulator_state import DeviceState
from fieldctl.protocols.core.message import Message
from tests.helpers.fuzzing import contained

EVENT, HEARTBEAT, COMMAND_RESULT = (code.to_bytes(4, "little") for code in (4001, 1001, 6001))
GOOD_REPLY = {
    "nonce": 7,
    "command": 400,
    "result": 100,
    "data": None,
    "errorKind": 0,
    "errorCode": 0,
    "errorMessage": None,
}


@cache
def driver() -> Driver:
    return Driver(load_profile("autotrainer"), lambda text: None)


def vocab() -> codec.Vocabulary:
    return driver().vocab


def reply(**changes: Any) -> list[bytes]:
    return [json.dumps({**GOOD_REPLY, **changes}).encode()]


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"result": [100]}, "result is an array, expected an integer"),
        ({"result": {"a": 1}}, "result is an object, expected an integer"),
        ({"result": "100"}, "result is a string, expected an integer"),
        ({"result": True}, "result is a boolean, expected an integer"),
        ({"command": [400]}, "command is an array"),
        ({"errorCode": 1.5}, "errorCode is a number"),
        ({"errorKind": {}}, "errorKind is an object"),
        ({"errorMessage": ["x"]}, "errorMessage is an array, expected a string"),
        ({"nonce": {"n": 7}}, "nonce is an object"),
    ],
)
def test_a_list_or_object_where_a_scalar_belongs_is_malformed(changes: dict[str, Any], error: str) -> None:
    msg = codec.decode_reply(reply(**changes), vocab())
    assert msg.error is not None and msg.error.startswith(error)
    assert driver().summarize(msg) is not None


def test_scalars_the_device_may_send_are_kept() -> None:
    msg = codec.decode_reply(reply(nonce="abc", errorMessage="failed", errorCode=3, result=400), vocab())
    assert msg.error is None and msg.id == "abc" and "failed" in driver().summarize(msg)


@pytest.mark.parametrize(
    "body, error",
    [
        (b'{"result": [100], "command": 120, "nonce": 5}', "result is an array"),
        (b'{"result": 100, "command": {"x": 1}, "nonce": 5}', "command is an object"),
    ],
)
def test_a_command_result_with_wrong_types_is_malformed(body: bytes, error: str) -> None:
    msg = codec.decode_publication([COMMAND_RESULT, body], vocab())
    assert msg.error is not None and msg.error.startswith(error) and msg.id is None


@pytest.mark.parametrize("kind", ["[101]", '{"a": 1}', '"emergencyStop"', "true", "1.5"])
def test_an_event_kind_that_is_not_an_integer_is_malformed(kind: str) -> None:
    """A string kind would otherwise be shown as the event it names (a forged emergencyStop)."""
    msg = codec.decode_publication([EVENT, b'{"kind": %s, "when": 1, "index": 1}' % kind.encode()], vocab())
    assert msg.error is not None and msg.error.startswith("kind is") and msg.kind == "malformed"


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"kind": 1101, "context": ' + b"[" * 65 + b"]" * 65 + b"}", b'{"kind": 1' + b"1" * 5000 + b"}"],
)
def test_deep_nesting_and_huge_integers_are_malformed(body: bytes) -> None:
    msg = codec.decode_publication([EVENT, body], vocab())
    assert msg.error is not None and msg.error.startswith("not JSON")
    assert codec.decode_reply([body], vocab()).error is not None
    assert codec.parse_request([body], set(vocab().command_code.values())) is None


def test_wire_text_reused_in_ndjson_stays_one_record() -> None:
    """A device cannot forge a second NDJSON record with a newline, nor emit NaN."""
    forged = b'{"kind": 1101,\n"context": null}\n{"kind": 101}'
    msg = codec.decode_publication([EVENT, b'{"kind": 1101,\n"when": 1,\r\n"index": 2, "context": null}'], vocab())
    assert msg.error is None and len(msg.to_json().splitlines()) == 1
    assert json.loads(msg.to_json())["payload"]["kind"] == 1101
    nan = codec.decode_publication([EVENT, b'{"kind": 1101, "when": NaN, "index": Infinity}'], vocab())
    line = nan.to_json()
    assert (
        nan.error is None
        and "NaN" not in line
        and "Infinity" not in line
        and json.loads(line)["payload"]["when"] is None
    )
    assert codec.decode_publication([EVENT, forged], vocab()).error  # not one JSON document: malformed


def test_the_simulated_device_answers_hostile_requests() -> None:
    state = DeviceState(vocab(), {})
    for body in (
        b'{"command": [400], "nonce": 1}',
        b'{"command": 120, "nonce": 1, "data": {"mode": [100]}}',
        b'{"command": 1070, "nonce": {"a": [1]}, "data": {"enabled": {}}}',
        b"[" * 10_000,
    ):
        handling = state.handle([body])
        assert json.loads(handling.reply.raw[0])["result"] in (0, 400)


# --- fuzzing -------------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "kind",
        "when",
        "index",
        "context",
        "repeat",
        "nonce",
        "command",
        "customCommand",
        "custom_command",
        "result",
        "data",
        "errorKind",
        "errorCode",
        "errorMessage",
        "identifier",
        "version",
        "timestamp",
        "mode",
        "enabled",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=16)
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6), max_leaves=20
)
TOPICS = st.sampled_from(
    [EVENT, HEARTBEAT, COMMAND_RESULT, (2001).to_bytes(4, "little"), b"\x00\x00\x00\x00"]
) | st.binary(max_size=6)


def _text(value: Any) -> bytes:
    return json.dumps(value).encode()


BODIES = JSON.map(_text) | st.dictionaries(KEYS, JSON, max_size=6).map(_text) | st.binary(max_size=64)


def _mutated(data: bytes, flips: list[int]) -> bytes:
    out = bytearray(data)
    for at in flips:
        if out:
            out[at % len(out)] ^= 0xFF & (at >> 3 or 1)
    return bytes(out)


MUTATED = st.builds(_mutated, BODIES, st.lists(st.integers(min_value=0), max_size=3))
FRAMES = st.one_of(st.tuples(TOPICS, MUTATED).map(list), st.lists(st.binary(max_size=16), max_size=3))


def _decode_and_show(decode: Any, frames: list[bytes]) -> Message:
    msg = decode(frames, vocab())
    driver().summarize(msg)
    msg.to_json()
    return msg


@pytest.mark.fuzz
@given(FRAMES)
def test_fuzz_decode_publication(frames: list[bytes]) -> None:
    contained(_decode_and_show, codec.decode_publication, frames)


@pytest.mark.fuzz
@given(st.one_of(MUTATED.map(lambda body: [body]), st.lists(st.binary(max_size=16), max_size=3)))
def test_fuzz_decode_reply_and_request(frames: list[bytes]) -> None:
    contained(_decode_and_show, codec.decode_reply, frames)
    contained(_decode_and_show, codec.decode_request, frames)


@pytest.mark.fuzz
@given(st.one_of(MUTATED.map(lambda body: [body]), st.lists(st.binary(max_size=16), max_size=3)))
def test_fuzz_parse_request_and_the_device(frames: list[bytes]) -> None:
    contained(codec.parse_request, frames, set(vocab().command_code.values()))
    handling = contained(DeviceState(vocab(), {}).handle, frames)
    contained(codec.decode_reply, handling.reply.raw, vocab())
