"""MQTT topic + payload <-> Message, pure (no I/O). Under a device's prefix P: P/heartbeat and
P/event/KIND carry their data as JSON; P/command/NAME is {"id", "data"} and P/reply/NAME
{"id", "ok", "data" | "error"} (MQTT 3.1.1 has no correlation property, so the id travels in
the body); P/presence is retained `online`, `offline` (the device's last will) or empty (cleared)."""

from __future__ import annotations

import json
from typing import Any

from fieldctl.sdk import IN, Limits, Message, link, loads

ENDPOINT = "broker"
CHANNELS = ("heartbeat", "event", "command", "reply")
PRESENCE = "presence"
#: The presence topic's payloads and the link state each is.
STATES = {b"online": "present", b"offline": "absent", b"": "absent"}


class Topics:
    """A device's topics under its prefix; each channel is the topic level the profile's
    [channels] table names (its own name by default)."""

    def __init__(self, prefix: str, channels: dict[str, Any]) -> None:
        self.prefix = prefix.rstrip("/")
        self.levels = {channel: str(channels.get(channel, channel)) for channel in CHANNELS}
        self.channels = {level: channel for channel, level in self.levels.items()}
        self.everything = f"{self.prefix}/#"
        self.presence = f"{self.prefix}/{PRESENCE}"

    def topic(self, channel: str, kind: str = "") -> str:
        """Where a message of this channel and kind goes; a heartbeat's topic has no kind."""
        level = f"{self.prefix}/{self.levels[channel]}"
        return level if channel == "heartbeat" else f"{level}/{kind}"

    def decode(self, topic: str, payload: bytes, profile: str, limits: Limits, direction: str = IN) -> Message:
        """A Message (a link `present`/`absent` for presence); anything that is not one of ours is
        a malformed Message, never an exception."""
        raw = (topic.encode(), payload)
        msg = Message(profile, ENDPOINT, direction, "?", "?", raw=raw)
        rest = topic[len(self.prefix) + 1 :] if topic.startswith(self.prefix + "/") else ""
        if rest == PRESENCE:
            state = STATES.get(payload)
            if state is None:
                msg.error = "presence: expected online, offline or nothing"
                return msg
            presence = link(profile, ENDPOINT, state, {"topic": topic})
            presence.raw = raw
            return presence
        level, _, kind = rest.partition("/")
        channel = self.channels.get(level)
        if channel is None or (channel == "heartbeat") == bool(kind):
            msg.error = f"not a topic of this device: {topic}"
            return msg
        if len(payload) > limits.max_frame_bytes:
            msg.error = f"payload of {len(payload)} bytes, over the limit of {limits.max_frame_bytes}"
            return msg
        try:
            body = loads(payload, limits.max_depth)
        except ValueError as exc:
            msg.error = f"not JSON: {exc}"
            return msg
        if channel in ("command", "reply"):
            ident = body.get("id") if isinstance(body, dict) else None
            if not isinstance(ident, (int, str)) or isinstance(ident, bool):
                msg.error, msg.payload = "expected an object with an id (a string or an integer)", body
                return msg
            msg.id = ident
            body = body.get("data") if channel == "command" else {k: v for k, v in body.items() if k != "id"}
        msg.channel, msg.kind, msg.payload = channel, kind or channel, body
        return msg


def encode(channel: str, ident: Any, payload: Any) -> bytes:
    """The body of a message: a command's data and a reply's fields carry the id beside them."""
    if channel == "command":
        payload = {"id": ident, "data": payload}
    elif channel == "reply":
        payload = {"id": ident, **(payload if isinstance(payload, dict) else {"data": payload})}
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
