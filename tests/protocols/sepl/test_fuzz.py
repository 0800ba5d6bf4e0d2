"""Every SEPL decoder against generated hostile frames (tests/fuzzing.py contract): the frame a
connector or a platform may send, decoded by the codec, the connector's read loop and the
platform's rules, returns a Message (malformed or not) or raises Malformed; never anything else,
never slowly, and whatever it yields can be shown (one JSON line, encodable as UTF-8) and sent on."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sepl import codec
from fieldctl.protocols.sepl.client_state import Requests
from fieldctl.protocols.sepl.driver import describe
from fieldctl.protocols.sepl.simulator_state import Registry, Session
from tests.helpers.fuzzing import contained

PROFILE = "sepl"
#: Pieces of JSON text no encoder produces, but a hostile peer may: deep nesting, huge integers,
#: lone surrogates, non-finite numbers, wrong types where strings are expected.
HOSTILE = st.sampled_from(
    [
        "[" * 1000,
        '{"a":' * 500,
        "1" * 5000,
        "-" + "9" * 4301,
        "1e999",
        "NaN",
        "-Infinity",
        '"\\ud800"',
        '"\\udfff\\ud800"',
        '"\\ud83d\\ude00"',
        '["\\ud800"]',
        "{}",
        "[]",
        "null",
        "true",
        "0",
        '{"a": [1, {"b": null}]}',
        '"' + "x" * 3000 + '"',
    ]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
HANDLERS = st.sampled_from([*codec.HANDLERS, "command", "response", "remove", ""])


def spliced(value: Any, hostile: str) -> str:
    """JSON text of `value` with one hostile piece in place of its first null (or appended)."""
    text = json.dumps(value)
    return text.replace("null", hostile, 1) if "null" in text else text


ENVELOPES = st.builds(
    lambda handler, token, payload, extra, hostile: spliced(
        {"status": 0, "handler": handler, "token": token, "content_type": "", "payload": payload, **extra}, hostile
    ),
    HANDLERS | VALUES,
    st.text(max_size=10) | VALUES,
    VALUES
    | st.fixed_dictionaries(
        {
            "uri": VALUES,
            "name": VALUES,
            "iot_type": VALUES,
            "tags": VALUES,
            "device_uri": VALUES,
            "service_uri": VALUES,
            "value": VALUES,
            "task_id": VALUES,
            "protocol_parts": VALUES,
        }
    ),
    st.dictionaries(st.sampled_from(["TOKEN", "Handler", "Payload", "x"]), VALUES, max_size=2),
    HOSTILE,
)
FRAMES = ENVELOPES | HOSTILE | st.text(max_size=200)
CREDENTIALS = st.builds(
    spliced,
    st.dictionaries(
        st.sampled_from(["user", "pw", "PW", "Password", "gid", "token", "Token", "x"]), VALUES, max_size=6
    ),
    HOSTILE,
)


def shown(msg: Message) -> None:
    """What every view does with a Message: one JSON line, UTF-8, and a table cell."""
    line = msg.to_json()
    assert "\n" not in line and json.loads(line)["profile"] == PROFILE
    line.encode("utf-8")
    describe(msg).encode("utf-8")


@pytest.mark.fuzz
@given(FRAMES)
def test_parse_object_returns_an_object_or_raises_malformed(text: str) -> None:
    value = contained(codec.parse_object, text, allowed=(Malformed,))
    assert value is None or isinstance(value, dict)
    if value is not None:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # no lone surrogate survives


#: Text around the surrogate range, backslashes included: pairs, lone halves, escaped escapes.
SURROGATE_TEXT = st.text(
    st.sampled_from('\\u"x')
    | st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010)
    | st.characters(min_codepoint=0x1F600, max_codepoint=0x1F602),
    max_size=30,
)


@pytest.mark.fuzz
@given(SURROGATE_TEXT, st.booleans())
def test_no_lone_surrogate_survives_decoding(text: str, ascii_only: bool) -> None:
    """Whatever escapes spell them, lone surrogates come out as U+FFFD and pairs as themselves."""
    frame = (
        json.dumps({"t": text, text: 1}, ensure_ascii=ascii_only)
        if ascii_only
        else json.dumps({"t": text}, ensure_ascii=True).replace("\\\\", "\\")
    )  # also odd backslash runs
    value = contained(codec.parse_object, frame, allowed=(Malformed,))
    if value is not None:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    if ascii_only:
        assert value is not None and value["t"] == codec._LONE_SURROGATE.sub("\ufffd", json.loads(frame)["t"])


@pytest.mark.fuzz
@given(FRAMES, st.booleans())
def test_decode_frame_always_gives_a_showable_message(text: str, from_client: bool) -> None:
    envelope, msg = contained(codec.decode_frame, PROFILE, IN, text, from_client=from_client)
    assert (envelope is None) == (msg.channel == "malformed")
    shown(msg)


@pytest.mark.fuzz
@given(FRAMES)
def test_the_platform_rules_answer_every_frame_with_a_sendable_frame(text: str) -> None:
    registry = Registry(["sepl_get"])
    session = Session(registry, registry.provide(""))
    session.handle(codec.request_frame("put", "t", {"uri": "dev-1", "name": "n", "iot_type": "lamp", "tags": []}))
    answers = contained(session.handle, text)
    assert answers and all(a.status in (200, 400, 500) for a in answers)
    if not any(a.handler in ("put", "delete", "clear", "disconnect") for a in answers):  # no state changed
        envelope, _ = codec.decode_frame(PROFILE, IN, text, from_client=True)
        assert session.handle(text, envelope) == answers  # the simulator's path: decoded once, same answers
    for answer in answers:
        frame = codec.platform_frame(answer.status, "response", answer.token, answer.payload)
        assert codec.parse_object(frame)["status"] == answer.status
        frame.encode("utf-8")


#: Frames the platform cannot parse, with what Go escapes when it quotes them back (<, >, &,
#: U+2028, U+2029), up to 64 KiB.
UNPARSABLE = st.builds(
    lambda head, body: head + body,
    st.sampled_from(["not json ", "{", "[" * 70, '{"handler": "put", '])
    | st.sampled_from(["<", "&", "\u2028", "x"]).map(lambda ch: ch * 1000),
    st.text(st.sampled_from('<>&\u2028\u2029x"\\é'), max_size=65536),
)


@pytest.mark.fuzz
@given(UNPARSABLE)
def test_an_unparsable_frame_is_quoted_back_whole_once(text: str) -> None:
    """Go's two 400s: the first quotes the frame, the second only its start (twice, a peer's
    megabyte came back as two, each escaped a character at a time)."""
    registry = Registry(["sepl_get"])
    session = Session(registry, registry.provide(""))
    answers = contained(session.handle, text)
    assert [a.status for a in answers] == [400, 400] and answers[0].payload.endswith(f"({text})")
    assert len(answers[1].payload) <= len("unknown handler in request ()") + codec.QUOTED + len("...")
    frames = [contained(codec.platform_frame, a.status, "response", a.token, a.payload) for a in answers]
    assert json.loads(frames[0])["payload"] == answers[0].payload


@pytest.mark.fuzz
@given(CREDENTIALS)
def test_credentials_are_decoded_or_refused_and_shown_masked(text: str) -> None:
    creds = contained(codec.parse_object, text, allowed=(Malformed,))
    if creds is None:
        return
    fields = contained(codec.login_fields, creds, allowed=(Malformed,))
    assert fields is None or all(isinstance(fields[key], str) for key in codec.LOGIN_FIELDS)
    msg = contained(codec.credentials_message, PROFILE, IN, creds)
    shown(msg)
    for key, value in msg.payload.items():
        assert value == "***" or key.lower() not in ("pw", "password") or value is None


@pytest.mark.fuzz
@given(st.lists(FRAMES, min_size=1, max_size=5))
def test_the_connector_books_take_every_frame(texts: list[str]) -> None:
    """client_rules.Requests.receive: shown (malformed or not), commands handed on, answers
    matched by token."""
    requests = Requests(PROFILE)
    requests.send(codec.request_envelope("put", "t", None))
    for text in texts:
        incoming = contained(requests.receive, text)
        shown(incoming.msg)
        assert not incoming.command or (
            isinstance(incoming.envelope, dict) and incoming.envelope["handler"] == "command"
        )
        assert incoming.answers in (None, "t")


@pytest.mark.fuzz
@given(FRAMES, VALUES)
def test_every_command_gets_a_response_frame(text: str, data: Any) -> None:
    """The connector's answer to whatever arrives as a command: the library's echo rule, sendable."""
    envelope = contained(codec.parse_object, text, allowed=(Malformed,))
    if envelope is None:
        return
    frame = contained(codec.response_frame, envelope, "t", codec.as_part_text(data))
    answer = json.loads(frame)
    assert answer["handler"] == "response" and answer["token"] == "t"
    assert codec.part_value(answer["payload"]["protocol_parts"], codec.DATA) == codec.as_part_text(data)


@pytest.mark.fuzz
@given(st.text(max_size=50), st.text(max_size=50), st.text(max_size=50))
def test_every_device_spec_is_a_device_or_a_value_error(a: str, b: str, c: str) -> None:
    device = contained(codec.parse_device_spec, f"{a}:{b}:{c}", allowed=(ValueError,))
    assert device is None or len(device.hash) == 40


def test_quoting_a_frame_back_costs_time_in_proportion_to_it() -> None:
    """4 MiB: 1.6 s when each character was looked up in Python, some 60 ms in one translate()."""
    registry = Registry(["sepl_get"])
    session = Session(registry, registry.provide(""))
    text = "not json " + "x" * (4 << 20)
    started = time.perf_counter()
    for answer in session.handle(text):
        codec.platform_frame(answer.status, "response", answer.token, answer.payload)
    assert time.perf_counter() - started < 0.8
    assert codec.go_json("<a & b>\u2028") == '"\\u003ca \\u0026 b\\u003e\\u2028"'


def test_the_hostile_pieces_decode_as_go_would() -> None:
    """The cases the fuzzers are seeded with, one by one."""
    for text in ("[" * 100_000, '{"a": ' + "1" * 5000 + "}", "[]", "not json", '{"a": "\\x"}'):
        with pytest.raises(Malformed):
            codec.parse_object(text)
    assert codec.parse_object('{"t": "\\ud800x\\ud83d\\ude00", "\\udc00": NaN}') == {
        "t": "\ufffdx\U0001f600",
        "\ufffd": None,
    }
    envelope, msg = codec.decode_frame(
        PROFILE, OUT, '{"handler": "put", "token": ["a"], "payload": {}}', from_client=True
    )
    assert envelope is not None and msg.id is None and msg.channel == "device"
    assert (
        codec.decode_frame(PROFILE, IN, "[" * 100 + "]" * 100, from_client=False)[1].error
        == "nested deeper than 64 levels"
    )
