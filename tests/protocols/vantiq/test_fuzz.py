"""Every vantiq decoder against hostile input: arbitrary bytes, frames of the right shape with
wrong-typed members, deep nesting, huge integers, lone surrogates. Each returns (a malformed
Message where it decodes frames) or raises the project's own error types, within the time budget;
what it returns can always be shown (describe) and written (one UTF-8 NDJSON line)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.protocols.core.errors import FieldctlError
from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.vantiq import answers, codec, simulator_state
from fieldctl.protocols.vantiq.driver import describe
from tests.helpers.fuzzing import contained

OPS = [
    codec.VALIDATE,
    codec.AUTHENTICATE,
    codec.CONNECT,
    codec.CONFIGURE,
    codec.PUBLISH,
    codec.QUERY,
    codec.NOTIFICATION,
    codec.RECONNECT,
    codec.TEST_CLOSE,
    "bogus",
]
KEYS = [
    "op",
    "resourceName",
    "resourceId",
    "object",
    "parameters",
    "messageHeaders",
    "status",
    "headers",
    "body",
    "REPLY_ADDR_HEADER",
    "X-Reply-Address",
    "reconnectSecret",
    "config",
    "code",
    "message",
    "messageCode",
    "messageTemplate",
    "parameters",
    "accessToken",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**310)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(OPS)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=20,
)
frames = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from(OPS) | scalars,
        "resourceId": values,
        "object": values,
        "parameters": values,
        "messageHeaders": st.fixed_dictionaries({}, optional={"REPLY_ADDR_HEADER": values}) | values,
        "status": st.integers(-1000, 1000) | scalars,
        "headers": st.fixed_dictionaries({}, optional={"X-Reply-Address": values}),
        "body": values,
    },
)


def hostile_texts() -> st.SearchStrategy[str]:
    depth = st.integers(1, 2_000)  # limits.check_depth costs ~4 ms per KB of nested brackets
    return st.one_of(
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: '{"op": "publish", "object": ' + "[" * n),
        depth.map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.integers(4000, 6_000).map(lambda n: '{"status": ' + "9" * n + "}"),
        st.sampled_from(
            [
                '{"op": "notification", "object": "\\ud800"}',
                '{"op": "x", "\\udfff": 1}',
                '{"status": 200, "body": "\\ud83d\\ude00"}',
                '{"status": NaN}',
                '{"status": 1e999}',
                '{"op": "query", "messageHeaders": {"REPLY_ADDR_HEADER": [1]}}',
                '{"status": 200, "headers": {"X-Reply-Address": {}}}',
                '{"op": "connectExtension", "parameters": {"reconnectSecret": ["x"]}}',
            ]
        ),
    )


def check_decoded(frame: str | bytes) -> Message:
    msg = contained(
        codec.decode, frame, profile="vantiq", endpoint="server", source="s", limits=Limits(max_frame_bytes=1 << 20)
    )
    assert isinstance(msg, Message)
    msg.to_json().encode("utf-8")  # one writable line
    assert isinstance(contained(describe, msg), str)
    assert msg.id is None or isinstance(msg.id, str)
    assert isinstance(msg.kind, str)
    if msg.error is None:
        contained(codec.frame_of, msg)
        if msg.channel in (codec.STATUS, codec.RESPONSE):
            assert isinstance(msg.payload["status"], int)
            contained(codec.refusal_text, codec.frame_of(msg))
            result = codec.QueryResult("s", "r")
            contained(result.add, msg.payload["status"], msg.payload.get("body"))
            assert isinstance(result.summary(), str)
    return msg


@pytest.mark.fuzz
@given(st.binary(max_size=300))
def test_decode_any_bytes(data: bytes) -> None:
    check_decoded(data)
    contained(codec.credentials_of, data)


@pytest.mark.fuzz
@given(frames)
def test_decode_frames_with_wrong_typed_members(frame: dict[str, Any]) -> None:
    text = json.dumps(frame)
    check_decoded(text)
    check_decoded(text.encode())
    contained(codec.credentials_of, text)


@pytest.mark.fuzz
@given(hostile_texts())
def test_decode_deep_huge_and_non_unicode_frames(text: str) -> None:
    msg = check_decoded(text)
    if text.startswith("[["):
        assert msg.error is not None


@pytest.mark.fuzz
@given(frames | st.fixed_dictionaries({"op": st.just(codec.VALIDATE), "object": values}), st.booleans())
def test_the_simulator_answers_every_first_frame(frame: dict[str, Any], any_token: bool) -> None:
    """Whatever stands where the token belongs (a list or an object was a TypeError that dropped
    the connection): accepted, or refused with the 401 a real server sends."""
    server = simulator_state.Server({"s": {}}, None if any_token else {"tok-Zq8-accepted"})
    peer = server.open()
    op, token = contained(codec.credentials_of, json.dumps(frame))
    [answer] = [a.frame for a in contained(server.authenticate, peer, op, token) if isinstance(a, simulator_state.Send)]
    assert (answer == codec.validated()) if peer.authenticated else (answer["status"] == codec.AUTH_REFUSED)
    assert peer.authenticated == (
        op == codec.VALIDATE and isinstance(token, str) and (any_token or token == "tok-Zq8-accepted")
    )
    codec.encode(answer).encode("utf-8")


@pytest.mark.fuzz
@given(values)
def test_refusal_text_and_templates_take_anything(value: Any) -> None:
    text = contained(codec.refusal_text, {"status": 401, "body": value})
    assert "\n" not in text and len(text) <= codec.QUOTED_CHARS
    contained(codec.refusal_text, value)
    contained(codec.render_template, value, value)


@pytest.mark.fuzz
@given(st.text(max_size=300))
def test_server_config_and_urls(text: str) -> None:
    props = contained(codec.parse_properties, text)
    contained(codec.ServerConfig.from_properties, {**props, "targetServer": text}, allowed=(ValueError,))
    contained(codec.normalize_url, text, allowed=(ValueError,))


@pytest.mark.fuzz
@given(st.binary(max_size=200) | hostile_texts().map(str.encode))
def test_answer_command_lines(line: bytes) -> None:
    rows, error = contained(answers._rows_or_error, line)
    assert isinstance(rows, list)
    json.dumps([rows, error], ensure_ascii=False).encode("utf-8")


def test_crossing_a_limit_is_a_malformed_message_not_an_exception() -> None:
    deep = codec.decode("[" * 100_000 + "]" * 100_000, profile="v", endpoint="server")
    assert "nested deeper than 64 levels" in deep.error
    big = codec.decode('{"status": ' + "1" * 5000 + "}", profile="v", endpoint="server")
    assert big.error.startswith("not JSON") and len(big.error) < 400
    lone = codec.decode('{"op": "notification", "object": "\\ud800"}', profile="v", endpoint="server")
    assert "lone surrogate" in lone.error
    pair = codec.decode('{"op": "notification", "object": "\\ud83d\\ude00"}', profile="v", endpoint="server")
    assert pair.error is None and pair.payload == "\U0001f600"
    large = codec.decode(
        b'{"op": "publish", "object": "' + b"x" * 200 + b'"}',
        profile="v",
        endpoint="server",
        limits=Limits(max_frame_bytes=100),
    )
    assert "over the limit of 100 bytes" in large.error
    for text, error in (
        ('{"op": "query", "messageHeaders": {"REPLY_ADDR_HEADER": [1]}}', "REPLY_ADDR_HEADER is not a string"),
        ('{"status": 200, "headers": {"X-Reply-Address": {}}}', "X-Reply-Address is not a string"),
        ('{"op": "connectExtension", "resourceId": "s", "parameters": 5}', "parameters"),
        ('{"op": "notification", "resourceId": ["s"]}', "resourceId is not a string"),
    ):
        assert error in codec.decode(text, profile="v", endpoint="server").error
    assert codec.credentials_of("[" * 100_000) == (None, None)


def test_a_refusal_is_quoted_on_one_short_line() -> None:
    text = codec.refusal_text({"status": 401, "body": [{"code": "x\n\x1b]0;owned\x07", "message": "m" * 10_000}]})
    assert "\n" not in text and "\x1b" not in text and len(text) <= codec.QUOTED_CHARS
    many = codec.render_template("{0} {99} {100}", list(range(1_000_000)))
    assert many == "0 99 {100}"


def test_a_deep_answer_line_or_data_file_is_refused_cleanly(tmp_path) -> None:
    assert answers._rows_or_error(b"[" * 100_000) == ([], None)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FieldctlError, match="not valid JSON"):
        answers.load_rows(str(tmp_path / "deep.json"))
