"""The Message record and its NDJSON form: what listen writes, publish and simulate read back."""

from __future__ import annotations

import json

import pytest

from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import Message, link, read_ndjson


def test_ndjson_round_trip_keeps_every_field() -> None:
    msg = Message(
        profile="autotrainer",
        endpoint="events",
        direction="in",
        channel="event",
        kind="trialStarted",
        payload={"kind": 1301, "context": {"trialId": 3}},
        id=None,
        raw=(b"\xa1\x0f\x00\x00", b"{}"),
        error=None,
        ts=1.5,
    )
    line = msg.to_json()
    assert "\n" not in line
    data = json.loads(line)
    assert set(data) >= {"ts", "profile", "endpoint", "direction", "channel", "kind", "id", "payload", "error", "raw"}
    assert data["raw"] == ["oQ8AAA==", "e30="]
    assert next(read_ndjson([line], source="x")) == msg


def test_hand_written_lines_need_only_channel_kind_payload() -> None:
    lines = ["# a comment", "", '{"channel": "event", "kind": "tunnelEnter", "ts": 0}']
    (msg,) = read_ndjson(lines, source="scenario.ndjson", default_profile="autotrainer")
    assert (msg.profile, msg.channel, msg.kind, msg.raw, msg.direction) == (
        "autotrainer",
        "event",
        "tunnelEnter",
        (),
        "out",
    )


@pytest.mark.parametrize(
    "line, reason",
    [
        ("not json", "3: not JSON"),
        ("[1, 2]", "3: a message must be a JSON object"),
        ('{"raw": ["@@"]}', "3: raw frames are not base64"),
    ],
)
def test_bad_lines_name_source_and_line(line: str, reason: str) -> None:
    with pytest.raises(UsageError, match=f"^in.ndjson:{reason}"):
        list(read_ndjson(["{}", "", line], source="in.ndjson"))


def test_link_messages_are_marked() -> None:
    msg = link("autotrainer", "events", "connected", {"url": "tcp://x"})
    assert msg.is_link and msg.channel == "link" and msg.kind == "connected"


@pytest.mark.parametrize(
    "payload",
    [
        {"big": 2**70, "neg": -(2**65)},  # past 64 bits: orjson refuses, the json module writes them
        {"s": "x\ud800y"},  # a lone surrogate stays its escape
        {1: "int key", None: "null key", 1.5: "float key"},
        {True: "bool key"},  # not in the dict above: True == 1 would overwrite the int key
        {"when": __import__("datetime").datetime(2026, 1, 2, 3, 4, 5), "blob": b"\x00\xff", "set": {1}},
        {"nan": float("nan"), "inf": [float("-inf")], "t": (1, "two"), "deep": [[[[[[]]]]]]},
        {"text": 'ünïcödé \u2028 \x00 "quoted" \\ tab\t new\nline'},
    ],
)
def test_lines_are_the_json_modules_values(payload: object) -> None:
    """orjson writes the line, or the json module where orjson refuses: same values either way,
    non-JSON values as their repr, as the json module with default=repr had them."""
    from fieldctl.protocols.core.message import _slow_json

    msg = Message("p", "e", "in", "event", "k", payload, raw=(b"\x00\x01",), ts=1.25)
    line = msg.to_json()
    assert "\n" not in line and "\r" not in line
    line.encode("utf-8")
    assert json.loads(line) == json.loads(_slow_json(msg.to_dict()))
