"""The topic codec and the device's answers, without a broker: what is encoded decodes back, and
any topic and payload at all decode to a Message."""

from __future__ import annotations

import pytest
from fieldctl_mqtt.codec import Topics, encode
from fieldctl_mqtt.simulator_state import DeviceState
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.sdk import DEFAULT_LIMITS, Limits, Message

TOPICS = Topics("site/dev-1/", {"heartbeat": "hb"})


def decode(topic: str, payload: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    return TOPICS.decode(topic, payload, "mqtt", limits)


def test_topics_follow_the_prefix_and_the_profiles_channel_levels() -> None:
    assert TOPICS.topic("heartbeat") == "site/dev-1/hb"
    assert TOPICS.topic("command", "ping") == "site/dev-1/command/ping"
    assert (TOPICS.everything, TOPICS.presence) == ("site/dev-1/#", "site/dev-1/presence")


@pytest.mark.parametrize(
    ("channel", "kind", "ident", "payload"),
    [
        ("heartbeat", "", None, {"identifier": "d", "seq": 3}),
        ("event", "tick", None, {"count": 1}),
        ("command", "echo", "c0ffee", {"text": "hi"}),
        ("reply", "echo", 7, {"ok": True, "data": {"text": "hi"}}),
        ("reply", "nope", "x", {"ok": False, "error": "unknown command 'nope'"}),
    ],
)
def test_round_trip(channel: str, kind: str, ident: object, payload: object) -> None:
    topic, body = TOPICS.topic(channel, kind), encode(channel, ident, payload)
    msg = decode(topic, body)
    assert (msg.error, msg.endpoint, msg.channel, msg.kind, msg.id, msg.payload) == (
        None,
        "broker",
        channel,
        kind or "heartbeat",
        ident,
        payload,
    )
    assert msg.raw == (topic.encode(), body)


@pytest.mark.parametrize(("payload", "state"), [(b"online", "present"), (b"offline", "absent"), (b"", "absent")])
def test_presence_is_a_link_state(payload: bytes, state: str) -> None:
    msg = decode("site/dev-1/presence", payload)
    assert (msg.is_link, msg.kind, msg.error, msg.raw) == (True, state, None, (b"site/dev-1/presence", payload))


@pytest.mark.parametrize(
    ("topic", "payload", "error"),
    [
        ("site/dev-1/presence", b"maybe", "presence"),
        ("elsewhere/event/tick", b"{}", "not a topic of this device"),
        ("site/dev-1/hb/extra", b"{}", "not a topic of this device"),
        ("site/dev-1/event", b"{}", "not a topic of this device"),
        ("site/dev-1/event/tick", b"{nope", "not JSON"),
        ("site/dev-1/event/tick", b"[" * 200 + b"]" * 200, "not JSON"),
        ("site/dev-1/command/ping", b'{"data": 1}', "with an id"),
        ("site/dev-1/reply/ping", b'{"id": true}', "with an id"),
    ],
)
def test_what_is_not_ours_is_malformed_not_an_exception(topic: str, payload: bytes, error: str) -> None:
    msg = decode(topic, payload)
    assert msg.error and error in msg.error
    assert msg.raw == (topic.encode(), payload)


def test_a_payload_over_the_frame_limit_is_not_decoded() -> None:
    msg = decode("site/dev-1/event/tick", b'{"x": "' + b"a" * 100 + b'"}', Limits(max_frame_bytes=64, max_depth=8))
    assert msg.error and "over the limit of 64" in msg.error


@given(st.text(max_size=60), st.binary(max_size=200))
def test_any_topic_and_payload_decode_to_a_message(topic: str, payload: bytes) -> None:
    assert decode(topic, payload).profile == "mqtt"
    assert decode("site/dev-1/" + topic, payload).profile == "mqtt"


def test_the_device_answers_each_command() -> None:
    state = DeviceState("dev-1", started=100.0)
    assert state.heartbeat() == {"identifier": "dev-1", "seq": 1}
    assert state.answer("ping", None, 101.0) == {"ok": True, "data": "pong"}
    assert state.answer("echo", {"text": "hi"}, 101.0) == {"ok": True, "data": {"text": "hi"}}
    status = state.answer("get-status", None, 102.5)
    assert status == {"ok": True, "data": {"identifier": "dev-1", "uptime_s": 2.5, "heartbeats": 1}}
    assert state.answer("reboot", None, 103.0) == {"ok": False, "error": "unknown command 'reboot'"}
