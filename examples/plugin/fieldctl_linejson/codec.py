"""One JSON object per line, {"type", "kind", "id", "data"}; pure, no I/O."""

from __future__ import annotations

import json
from typing import Any

from fieldctl.sdk import IN, Message, loads

TYPES = ("heartbeat", "event", "command", "reply")


def encode(channel: str, kind: Any, ident: Any, data: Any) -> bytes:
    return json.dumps(
        {"type": channel, "kind": kind, "id": ident, "data": data}, separators=(",", ":"), allow_nan=False
    ).encode()


def decode(frame: bytes, profile: str, endpoint: str, direction: str = IN) -> Message:
    """A Message; a frame that is not one of ours is a malformed Message, never an exception."""
    msg = Message(profile, endpoint, direction, "?", "?", raw=(frame,))
    try:
        body = loads(frame)
    except ValueError as exc:
        msg.error = f"not JSON: {exc}"
        return msg
    if not isinstance(body, dict) or body.get("type") not in TYPES:
        msg.error, msg.payload = "expected an object whose type is one of " + ", ".join(TYPES), body
        return msg
    kind, ident = body.get("kind"), body.get("id")
    if not isinstance(kind, str) or not (
        ident is None or (isinstance(ident, (int, str)) and not isinstance(ident, bool))
    ):
        msg.error, msg.payload = "kind must be a string and id a string or an integer", body
        return msg
    msg.channel, msg.kind, msg.id, msg.payload = body["type"], kind, ident, body.get("data")
    return msg
