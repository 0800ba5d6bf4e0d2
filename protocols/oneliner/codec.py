"""Bytes <-> Message for one-liner 0.1.1 (RouterServer/RouterClient), both sides, no I/O.

The packet (spec §3): topic UTF-8 | 0x00 | uint16-le metadata length | pickle(success or
(success, perf_counter)) | payload. Streams use the stream's serializer for the payload, RPC replies
always pickle and have an empty topic. Requests are pickle((obj, attr, args, kwargs, get_timestamp)).
Everything from the network is unpickled with safe_pickle's restricted unpickler unless trusted, and
decoded within the profile's Limits (frame size, nesting depth); a value becomes JSON only once
safe_pickle.check has bounded it (no cycles, no explosive sharing, printable ints).
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fieldctl.protocols.core import limits as wire_limits
from fieldctl.protocols.core.limits import DEFAULT_LIMITS, Limits, Malformed
from fieldctl.protocols.core.message import IN, OUT, Message

from .safe_pickle import (
    NO_GLOBALS,
    PAYLOAD_GLOBALS,
    PLAIN_GLOBALS,
    OverLimit,
    UnsafePickle,
    check,
    clip,
    cost_limit,
    loads,
    short_repr,
)

PICKLE_PROTOCOL = 4  # what the real package writes on CPython 3.8-3.13 (spec §2)
TERMINATOR = b"\x00"
_LENGTH = struct.Struct("<H")

STREAMS, CALLS = "streams", "calls"  # endpoint names
CALL, REPLY = "call", "reply"  # channels of the RPC exchange
SAMPLE, ERROR = "sample", "error"  # kinds of a stream packet: success true or false
PICKLE, JSON, RAW = "pickle", "json", "raw"
ENCODINGS = (PICKLE, JSON, RAW)


class PacketError(ValueError):
    """Bytes that are not a one-liner packet, or a payload that does not decode."""


class RequestError(ValueError):
    """A request body that is not pickle((str, str, list, dict, bool))."""


@dataclass(frozen=True)
class Packet:
    topic: str
    success: bool
    timestamp: float | None
    payload: bytes


@dataclass(frozen=True)
class Request:
    obj: str
    attr: str
    args: list[Any]
    kwargs: dict[str, Any]
    get_timestamp: bool = False

    @property
    def target(self) -> str:
        return f"{self.obj}.{self.attr}"


# --- packets -----------------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=PICKLE_PROTOCOL)


def topic_bytes(name: str) -> bytes:
    data = name.encode("utf-8")
    if TERMINATOR in data:
        raise ValueError(f"stream name {name!r} contains NUL")
    return data


def subscription(name: str) -> bytes:
    """The exact-topic prefix: name + 0x00, so `frame` does not also match `frame_2` (spec §5.2)."""
    return topic_bytes(name) + TERMINATOR


def encode_packet(topic: str, success: bool, timestamp: float | None, payload: bytes) -> bytes:
    meta = dumps(bool(success) if timestamp is None else (bool(success), float(timestamp)))
    return topic_bytes(topic) + TERMINATOR + _LENGTH.pack(len(meta)) + meta + payload


def decode_packet(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Packet:
    """Spec §3.1: topic up to the first 0x00, metadata by its length (never by STOP)."""
    try:
        limits.check_size(len(data))
    except Malformed as exc:
        raise PacketError(str(exc)) from None
    end = data.find(TERMINATOR)
    if end < 0:
        raise PacketError("no 0x00 after the topic (a packet from before one-liner 35d8615?)")
    try:
        topic = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise PacketError("topic is not UTF-8") from None
    if len(data) < end + 3:
        raise PacketError("packet ends before the metadata length")
    (length,) = _LENGTH.unpack_from(data, end + 1)
    start = end + 3
    if len(data) < start + length:
        raise PacketError(f"metadata length {length} runs past the end of the packet")
    try:
        meta = loads(data[start : start + length], NO_GLOBALS, max_depth=limits.max_depth)
    except pickle.UnpicklingError as exc:
        raise PacketError(f"metadata: {exc}") from None
    if isinstance(meta, bool):
        success, timestamp = meta, None
    elif (
        isinstance(meta, tuple)
        and len(meta) == 2
        and isinstance(meta[0], bool)
        and isinstance(meta[1], (int, float))
        and not isinstance(meta[1], bool)
    ):
        success, timestamp = meta[0], float(meta[1])
    else:
        raise PacketError(f"metadata is {short_repr(meta, 80)}, not success or (success, timestamp)")
    return Packet(topic, success, timestamp, data[start + length :])


# --- payloads ----------------------------------------------------------------------------------------


def serialize(value: Any, encoding: str) -> bytes:
    """A stream payload as the real server's serializers write it (json: orjson's compact form)."""
    if encoding == PICKLE:
        return dumps(value)
    if encoding == JSON:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"a raw stream publishes bytes, not {type(value).__name__}")


def detect_encoding(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """For streams whose serializer is not declared: the wire does not say (spec §5.5)."""
    if len(payload) >= 2 and payload[0] == 0x80 and 2 <= payload[1] <= 5:
        return PICKLE
    try:
        wire_limits.loads(payload, limits.max_depth)
    except ValueError:
        return RAW
    return JSON


def deserialize(payload: bytes, encoding: str | None, trusted: bool = False, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A payload's value within the limits; raises PacketError or UnsafePickle."""
    encoding = encoding or detect_encoding(payload, limits)
    if encoding == PICKLE:
        try:
            return loads(payload, PAYLOAD_GLOBALS, trusted=trusted, max_depth=limits.max_depth)
        except UnsafePickle:
            raise
        except pickle.UnpicklingError as exc:
            raise PacketError(f"payload: {exc}") from None
    if encoding == JSON:
        try:
            return wire_limits.loads(payload, limits.max_depth)
        except ValueError as exc:
            raise PacketError(f"payload is not JSON: {clip(str(exc))}") from None
    return bytes(payload)


def jsonable(
    value: Any, budget: int = cost_limit(DEFAULT_LIMITS.max_frame_bytes), max_depth: int = DEFAULT_LIMITS.max_depth
) -> Any:
    """A decoded value in JSON terms; what JSON cannot hold is written as the fixtures write it.
    Raises OverLimit for a value over `budget` (see safe_pickle.check), nested too deep, or cyclic."""
    check(value, budget, max_depth)
    return _plain(value)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes_hex": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, (str, int, float, bool)) or key is None for key in value):
        return {key: _plain(item) for key, item in value.items()}
    return {"python_repr": short_repr(value, 4096), "python_type": type(value).__name__}


# --- requests ----------------------------------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    """Exactly what RouterClient.call sends (spec §4.1), byte for byte on CPython 3.8-3.13."""
    return dumps((request.obj, request.attr, list(request.args), dict(request.kwargs), bool(request.get_timestamp)))


def decode_request(body: bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """The server side, validated: the real server dies on what this rejects (spec §4.6)."""
    try:
        limits.check_size(len(body))
        value = loads(body, PLAIN_GLOBALS, max_depth=limits.max_depth)
    except UnsafePickle:
        raise
    except (OverLimit, Malformed) as exc:
        raise RequestError(str(exc)) from None
    except pickle.UnpicklingError:
        raise RequestError("the request is not a pickle") from None
    if not isinstance(value, (tuple, list)) or len(value) != 5:
        raise RequestError(
            f"the request is not a 5-tuple (obj, attr, args, kwargs, get_timestamp): {short_repr(value, 80)}"
        )
    obj, attr, args, kwargs, get_timestamp = value
    if not isinstance(obj, str) or not isinstance(attr, str):
        raise RequestError("obj_name and attr_name must be strings")
    if not isinstance(args, (list, tuple)):
        raise RequestError(f"args must be a list, not {type(args).__name__}")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise RequestError("kwargs must be a dict with string keys")
    return Request(obj, attr, list(args), kwargs, bool(get_timestamp))


def encode_reply(success: bool, value: Any, timestamp: float | None = None) -> bytes:
    """Spec §10.2.2: empty topic, bare success unless the request asked for a timestamp."""
    return encode_packet("", success, timestamp, dumps(value))


# --- Messages ----------------------------------------------------------------------------------------


def decode_stream(
    profile: str,
    frames: Sequence[bytes],
    encodings: Mapping[str, str | None],
    trusted: bool = False,
    direction: str = IN,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """One publication; a malformed one becomes a Message with `error` (the stream goes on)."""
    msg = Message(profile=profile, endpoint=STREAMS, direction=direction, channel="?", kind=SAMPLE, raw=tuple(frames))
    packet = _unpack(msg, frames, limits)
    if packet is not None:
        msg.channel, msg.kind = packet.topic, SAMPLE if packet.success else ERROR
        _decode_payload(msg, packet, encodings.get(packet.topic), trusted, limits)
    return msg


def decode_reply(
    profile: str,
    frames: Sequence[bytes],
    target: str,
    trusted: bool = False,
    direction: str = IN,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    msg = Message(profile=profile, endpoint=CALLS, direction=direction, channel=REPLY, kind=target, raw=tuple(frames))
    packet = _unpack(msg, frames, limits)
    if packet is not None and packet.topic:
        msg.error = f"a reply has an empty topic, not {short_repr(packet.topic, 80)}"
    elif packet is not None:
        _decode_payload(msg, packet, PICKLE, trusted, limits)
    return msg


def _unpack(msg: Message, frames: Sequence[bytes], limits: Limits) -> Packet | None:
    if len(frames) != 1:
        msg.error = f"{len(frames)} parts: a one-liner packet is one part"
        return None
    try:
        return decode_packet(frames[0], limits)
    except PacketError as exc:
        msg.error = str(exc)
        return None


def _decode_payload(msg: Message, packet: Packet, encoding: str | None, trusted: bool, limits: Limits) -> None:
    # Success and timestamp stay visible when the payload itself is refused.
    msg.payload = {"success": packet.success, "timestamp": packet.timestamp, "data": None}
    try:
        value = deserialize(packet.payload, encoding, trusted, limits)
        msg.payload["data"] = jsonable(value, cost_limit(len(packet.payload)), limits.max_depth)
    except (PacketError, UnsafePickle, OverLimit) as exc:
        msg.error = str(exc)


def sent_packet(
    profile: str,
    endpoint: str,
    channel: str,
    kind: str,
    packet: bytes,
    success: bool,
    timestamp: float | None,
    value: Any,
    payload_bytes: int,
) -> Message:
    """The Message for a packet we have just encoded from `value`: built from the values, not
    decoded back. A value past the limits (an attribute clients grew through calls) was sent,
    but is not shown."""
    msg = Message(
        profile=profile,
        endpoint=endpoint,
        direction=OUT,
        channel=channel,
        kind=kind,
        payload={"success": success, "timestamp": timestamp, "data": None},
        raw=(packet,),
    )
    try:
        msg.payload["data"] = jsonable(value, cost_limit(payload_bytes))
    except OverLimit as exc:
        msg.error = f"sent, but not shown: {exc}"
    return msg


def request_message(profile: str, body: bytes, direction: str = OUT, limits: Limits = DEFAULT_LIMITS) -> Message:
    msg = Message(profile=profile, endpoint=CALLS, direction=direction, channel=CALL, kind="?", raw=(body,))
    try:
        request = decode_request(body, limits)
    except (RequestError, UnsafePickle) as exc:
        msg.error = str(exc)
        return msg
    msg.kind = request.target
    budget = cost_limit(len(body))  # decode_request checked the whole request within this
    msg.payload = {
        "args": jsonable(request.args, budget),
        "kwargs": jsonable(request.kwargs, budget),
        "get_timestamp": request.get_timestamp,
    }
    return msg
