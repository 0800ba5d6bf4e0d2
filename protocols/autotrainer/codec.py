"""Bytes <-> Message for auto-trainer-api 0.12.0, both directions, no I/O (spec §2-§6, §10)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.protocols.core.limits import DEFAULT_LIMITS, MAX_DEPTH, Limits, loads
from fieldctl.protocols.core.message import IN, OUT, Message

from .casing import camelize, decamelize_text

SUCCESS, PENDING, PENDING_WITH_NOTIFICATION = 100, 200, 201
UNRECOGNIZED, FAILED, EXCEPTION, UNAVAILABLE = 0, 400, 500, 9999
RESULT_NAMES = {
    UNRECOGNIZED: "unrecognized",
    SUCCESS: "success",
    PENDING: "pending",
    PENDING_WITH_NOTIFICATION: "pending-with-notification",
    FAILED: "failed",
    EXCEPTION: "exception",
    UNAVAILABLE: "unavailable",
}
NONE_COMMAND, USER_DEFINED = 0, 99999
EMERGENCY_KINDS = (101, 102)
REPLY_KEYS = ("nonce", "command", "result", "data", "errorKind", "errorCode", "errorMessage")
RESULT_KEYS = ("result", "data", "errorCode", "errorMessage", "command", "nonce")

PUBLICATION_CHANNELS = ("heartbeat", "emergency", "event", "property_change", "command_result")
REPLY, REQUEST = "reply", "command"


def dumps(obj: Any) -> bytes:
    """The device's text form: json defaults (", " and ": ", ASCII escapes)."""
    return json.dumps(obj).encode("utf-8")


def result_name(code: Any) -> str:
    return RESULT_NAMES.get(code, str(code)) if _is_int(code) else str(code)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: The kinds the codec gives messages itself, beside the profile's event and command names.
OWN_KINDS = ("heartbeat", "malformed", "unknown")


@dataclass(frozen=True)
class Vocabulary:
    """The profile's channel, event and command tables, indexed both ways, and its limits."""

    profile: str
    topic_channel: dict[int, str]
    channel_topic: dict[str, int]
    event_name: dict[int, str]
    event_code: dict[str, int]
    command_name: dict[int, str]
    command_code: dict[str, int]
    limits: Limits = DEFAULT_LIMITS

    @classmethod
    def from_profile(cls, profile: Profile) -> Vocabulary:
        channels = {name: int(code) for name, code in profile.channels.items()}
        events = {name: int(code) for name, code in profile.events.items()}
        commands = {name: int(spec.code) for name, spec in profile.commands.items()}
        return cls(
            profile=profile.name,
            topic_channel={code: name for name, code in channels.items()},
            channel_topic=channels,
            event_name={code: name for name, code in events.items()},
            event_code=events,
            command_name={code: name for name, code in commands.items()},
            command_code=commands,
            limits=profile.limits,
        )

    def topic_frame(self, channel: str) -> bytes:
        return self.channel_topic[channel].to_bytes(4, "little")

    def kind_of_event(self, code: int) -> str | int:
        return self.event_name.get(code, code)

    def kind_of_command(self, code: Any) -> str | int:
        if code is None:
            return "unknown"
        return self.command_name.get(code, code) if _is_int(code) else str(code)


def _json_object(frame: bytes, max_depth: int) -> tuple[Any, str | None]:
    try:
        body = loads(frame, max_depth)
    except ValueError as exc:  # Malformed, JSONDecodeError, UnicodeDecodeError, too many digits
        return None, f"not JSON: {exc}"
    if not isinstance(body, dict):
        return body, f"expected a JSON object, got {type(body).__name__}"
    return body, None


#: Fields the device always writes as integers (or null where it may be absent): anything else is
#: malformed, never a crash further on. The nonce is the requester's, echoed: any scalar.
_INT_FIELDS = {
    "reply": ("command", "result", "errorKind", "errorCode"),
    "command_result": ("command", "result", "errorCode"),
}


def _field_error(body: dict[str, Any], channel: str) -> str | None:
    for key in _INT_FIELDS[channel]:
        value = body.get(key)
        if value is not None and not _is_int(value):
            return f"{key} is {_json_type(value)}, expected an integer"
    if isinstance(body.get("nonce"), (list, dict)):
        return f"nonce is {_json_type(body['nonce'])}, expected a scalar"
    message = body.get("errorMessage")
    if message is not None and not isinstance(message, str):
        return f"errorMessage is {_json_type(message)}, expected a string"
    return None


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", list: "an array", dict: "an object", float: "a number"}
    return names.get(type(value), type(value).__name__)


# --- publications (PUB -> SUB) ---------------------------------------------------------------


def decode_publication(frames: Sequence[bytes], vocab: Vocabulary, endpoint: str = "events") -> Message:
    """Built in one go: this runs once per received frame."""
    raw = tuple(frames)
    if len(raw) != 2:
        return _malformed_publication(raw, vocab, endpoint, "unknown", f"expected 2 frames, got {len(raw)}")
    topic_frame, body_frame = raw
    if len(topic_frame) != 4:
        return _malformed_publication(
            raw, vocab, endpoint, "unknown", f"topic frame is {len(topic_frame)} bytes, expected 4"
        )
    channel = _channel_of(topic_frame, vocab)
    try:
        body = loads(body_frame, vocab.limits.max_depth)
    except ValueError as exc:  # Malformed, JSONDecodeError, UnicodeDecodeError, too many digits
        return _malformed_publication(raw, vocab, endpoint, channel, f"not JSON: {exc}")
    if not isinstance(body, dict):
        msg = _malformed_publication(
            raw, vocab, endpoint, channel, f"expected a JSON object, got {type(body).__name__}"
        )
        msg.payload = body
        return msg
    return _publication_message(raw, channel, body, vocab, endpoint, IN)


def _channel_of(topic_frame: bytes, vocab: Vocabulary) -> str:
    topic = int.from_bytes(topic_frame, "little")
    return vocab.topic_channel.get(topic) or str(topic)


def _publication_message(
    raw: tuple[bytes, ...], channel: str, body: dict[str, Any], vocab: Vocabulary, endpoint: str, direction: str
) -> Message:
    """The Message of a publication whose body is a JSON object, decoded or about to be sent."""
    ident, error = None, None
    if channel == "heartbeat":
        kind: str | int = "heartbeat"
    elif channel == "command_result":
        error = _field_error(body, channel)
        kind, ident = ("malformed", None) if error else (vocab.kind_of_command(body.get("command")), body.get("nonce"))
    elif "kind" in body:
        if _is_int(body["kind"]):
            kind = vocab.kind_of_event(body["kind"])
        else:
            kind, error = "malformed", f"kind is {_json_type(body['kind'])}, expected an integer"
    else:
        kind = "unknown"
        error = "event without a kind" if channel in ("event", "emergency") else None
    return Message(vocab.profile, endpoint, direction, channel, kind, body, ident, raw, error)


def _malformed_publication(
    raw: tuple[bytes, ...], vocab: Vocabulary, endpoint: str, channel: str, error: str
) -> Message:
    return Message(vocab.profile, endpoint, IN, channel, "malformed", None, None, raw, error)


def is_emergency(msg: Message) -> bool:
    return isinstance(msg.payload, dict) and msg.payload.get("kind") in EMERGENCY_KINDS


def build_event(
    code: int, context: Any = None, *, when: float | None = None, index: int | None = None
) -> dict[str, Any]:
    return {
        "kind": code,
        "when": time.time() if when is None else when,
        "index": time.perf_counter_ns() if index is None else index,
        "context": context,
    }


def encode_publication(channel: str, body: Any, vocab: Vocabulary) -> list[list[bytes]]:
    """Frames for one publication; emergency kinds go out twice, EMERGENCY then EVENT (spec §5.2)."""
    if isinstance(body, bytes):
        return _publication_frames(channel, body, body, vocab)
    wire = camelize(body)
    return _publication_frames(channel, wire, dumps(wire), vocab)


def publication_messages(channel: str, body: Any, vocab: Vocabulary) -> list[Message]:
    """One publication as the outgoing Messages that report it, their frames as `raw` (emergency
    kinds twice, as encode_publication). Built from the body the frames were made from (payload:
    it with the device's camelCase keys), not by decoding them again; what decode_publication
    would make of them. Recorded bytes, and a body that is no JSON object, are decoded."""
    if isinstance(body, dict):
        return _sent_publication(channel, camelize(body), vocab)
    messages = [decode_publication(frames, vocab) for frames in encode_publication(channel, body, vocab)]
    for msg in messages:
        msg.direction = OUT
    return messages


def _sent_publication(channel: str, wire: dict[str, Any], vocab: Vocabulary) -> list[Message]:
    return [
        _publication_message(tuple(frames), _channel_of(frames[0], vocab), wire, vocab, "events", OUT)
        for frames in _publication_frames(channel, wire, dumps(wire), vocab)
    ]


def _publication_frames(channel: str, body: Any, data: bytes, vocab: Vocabulary) -> list[list[bytes]]:
    if channel in ("event", "emergency") and _kind_in(body, EMERGENCY_KINDS):
        return [[vocab.topic_frame("emergency"), data], [vocab.topic_frame("event"), data]]
    return [[vocab.topic_frame(channel), data]]


def _kind_in(body: Any, kinds: tuple[int, ...]) -> bool:
    if isinstance(body, bytes):
        body, _ = _json_object(body, MAX_DEPTH)
    return isinstance(body, dict) and body.get("kind") in kinds


def publication_body(msg: Message, vocab: Vocabulary) -> dict[str, Any] | bytes:
    """The body a message should be published with: its recorded bytes, a complete body, or one
    filled in from a kind name and a context (hand-written scenarios, `publish KIND --data`)."""
    if len(msg.raw) == 2 and not msg.error:
        return msg.raw[1]
    payload = msg.payload
    if msg.channel in ("event", "emergency"):
        if isinstance(payload, dict) and isinstance(payload.get("kind"), int):
            return payload
        code = msg.kind if isinstance(msg.kind, int) else vocab.event_code.get(str(msg.kind))
        if code is None:
            raise ValueError(f"unknown event kind {msg.kind!r}")
        return build_event(code, payload)
    if not isinstance(payload, dict):
        raise ValueError(f"{msg.channel} needs a JSON object as payload")
    return payload


# --- requests and replies (REQ -> REP) -------------------------------------------------------


def request_body(
    code: int, nonce: int, data: Any = None, *, custom_command: Any = None, with_data: bool = False
) -> dict[str, Any]:
    request: dict[str, Any] = {"command": code}
    if custom_command is not None:
        request["customCommand"] = custom_command
    request["nonce"] = nonce
    if with_data:
        request["data"] = data
    return request


def encode_request(
    code: int, nonce: int, data: Any = None, *, custom_command: Any = None, with_data: bool = False
) -> bytes:
    return dumps(request_body(code, nonce, data, custom_command=custom_command, with_data=with_data))


def request_message(body: dict[str, Any], vocab: Vocabulary) -> Message:
    """A request to send (see request_body): its frame as `raw` and the Message that reports it,
    built from the body, not by decoding the frame: what decode_request would make of it."""
    return _command_message((dumps(body),), body, vocab, REQUEST, OUT)


def mangled_values(data: Any, path: str = "data") -> list[tuple[str, Any, Any]]:
    """Values the device would rewrite: it decamelizes the whole request text (spec §6.2)."""
    found: list[tuple[str, Any, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found += mangled_values(value, f"{path}.{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += mangled_values(value, f"{path}[{index}]")
    elif isinstance(data, str):
        # Judge the value inside an object, as in a real request: decamelize leaves a text with no
        # lower-case letters alone, which a lone '"ABC"' would be but a whole request never is.
        text = dumps({"value": data}).decode()
        try:
            after = json.loads(decamelize_text(text))["value"]
        except ValueError:
            after = "<breaks the request>"
        if after != data:
            found.append((path, data, after))
    return found


def _decode_command_frame(frames: Sequence[bytes], vocab: Vocabulary, channel: str, direction: str) -> Message:
    raw = tuple(frames)
    if len(raw) != 1:
        return Message(
            vocab.profile,
            "commands",
            direction,
            channel,
            "malformed",
            None,
            None,
            raw,
            f"expected 1 frame, got {len(raw)}",
        )
    body, error = _json_object(raw[0], vocab.limits.max_depth)
    if error:
        return Message(vocab.profile, "commands", direction, channel, "malformed", body, None, raw, error)
    return _command_message(raw, body, vocab, channel, direction)


def _command_message(
    raw: tuple[bytes, ...], body: dict[str, Any], vocab: Vocabulary, channel: str, direction: str
) -> Message:
    """The Message of a request or reply whose body is a JSON object, decoded or about to be sent."""
    if channel == REPLY and (error := _field_error(body, channel)):
        return Message(vocab.profile, "commands", direction, channel, "malformed", body, None, raw, error)
    return Message(
        vocab.profile,
        "commands",
        direction,
        channel,
        vocab.kind_of_command(body.get("command")),
        body,
        body.get("nonce"),
        raw,
        "reply without a result" if channel == REPLY and "result" not in body else None,
    )


def decode_request(frames: Sequence[bytes], vocab: Vocabulary, direction: str = OUT) -> Message:
    """A request as shown and recorded (what the client meant; the device's rewrite is separate)."""
    return _decode_command_frame(frames, vocab, REQUEST, direction)


def decode_reply(frames: Sequence[bytes], vocab: Vocabulary, direction: str = IN) -> Message:
    return _decode_command_frame(frames, vocab, REPLY, direction)


def is_service_rejection(reply: dict[str, Any]) -> bool:
    """nonce 0, command 0, result 0: the device could not parse the request (spec §6.5)."""
    return reply.get("nonce") == 0 and reply.get("command") == 0 and reply.get("result") == 0


# --- the device side of requests -------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRequest:
    """A request as the real package's delegate sees it (after its whole-text decamelize)."""

    command: int
    nonce: Any
    custom_command: Any
    data: Any


def parse_request(
    frames: Sequence[bytes], known_commands: set[int], max_depth: int = MAX_DEPTH
) -> DeviceRequest | None:
    """None where the real device answers 'unparseable' (bad UTF-8/JSON, no command, command 0).

    A multi-frame request kills the real device's service thread (spec §9); we answer it as
    unparseable instead."""
    if len(frames) != 1:
        return None
    try:
        obj = loads(decamelize_text(frames[0].decode("utf-8")), max_depth)
    except ValueError:  # Malformed, JSONDecodeError, UnicodeDecodeError, too many digits
        return None
    if not isinstance(obj, dict) or "command" not in obj:
        return None
    command = obj["command"]
    if isinstance(command, (list, dict)):
        return None  # unhashable: the real device's parsing fails on it (spec §6.2)
    command = int(command) if command in known_commands else USER_DEFINED
    if command == NONE_COMMAND:
        return None
    return DeviceRequest(
        command=command, nonce=obj.get("nonce", 0), custom_command=obj.get("custom_command", -1), data=obj.get("data")
    )


def _reply_body(
    nonce: Any, command: int, result: int, data: Any = None, error_code: int = 0, error_message: str | None = None
) -> dict[str, Any]:
    error_kind = 2 if error_code != 0 else 0
    body: dict[str, Any] = camelize(
        {
            "nonce": nonce,
            "command": command,
            "result": result,
            "data": data,
            "errorKind": error_kind,
            "errorCode": error_code,
            "errorMessage": error_message,
        }
    )
    return body  # camelize keeps a dict a dict


def encode_reply(
    nonce: Any, command: int, result: int, data: Any = None, error_code: int = 0, error_message: str | None = None
) -> bytes:
    return dumps(_reply_body(nonce, command, result, data, error_code, error_message))


def reply_message(
    vocab: Vocabulary,
    nonce: Any,
    command: int,
    result: int,
    data: Any = None,
    error_code: int = 0,
    error_message: str | None = None,
) -> Message:
    """A reply to send (encode_reply's frame as `raw`) and the Message that reports it, built from
    its body, not by decoding the frame: what decode_reply(direction=OUT) would make of it."""
    body = _reply_body(nonce, command, result, data, error_code, error_message)
    return _command_message((dumps(body),), body, vocab, REPLY, OUT)


def _command_result_body(
    nonce: Any, command: int, result: int, data: Any = None, error_code: int = 0, error_message: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = camelize(
        {
            "result": result,
            "data": data,
            "errorCode": error_code,
            "errorMessage": error_message,
            "command": command,
            "nonce": nonce,
        }
    )
    return body  # camelize keeps a dict a dict


def encode_command_result(
    nonce: Any, command: int, result: int, data: Any = None, error_code: int = 0, error_message: str | None = None
) -> bytes:
    return dumps(_command_result_body(nonce, command, result, data, error_code, error_message))


def command_result_messages(
    vocab: Vocabulary,
    nonce: Any,
    command: int,
    result: int,
    data: Any = None,
    error_code: int = 0,
    error_message: str | None = None,
) -> list[Message]:
    """A COMMAND_RESULT publication to send, as publication_messages makes it."""
    return _sent_publication(
        "command_result", _command_result_body(nonce, command, result, data, error_code, error_message), vocab
    )
