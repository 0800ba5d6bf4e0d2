"""Bytes <-> Message for the TracimDaemon local protocol, no I/O (spec §2-§4).

Every document is one DaemonEvent ``{"path", "type", "data"}``. What fieldctl writes follows Go's
``encoding/json`` (§4.3), so the daemon side is byte-identical with the real daemon; what it reads
is decoded leniently, as Go does (case-insensitive keys, ``data`` absent or null).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.protocols.core.limits import MAX_DEPTH, Malformed, check_depth
from fieldctl.protocols.core.message import IN, Message

CLIENT_ADD, CLIENT_DELETE = "daemon_client_add", "daemon_client_delete"
GET_CLIENTS, GET_ACCOUNT_INFO, DO_REQUEST = "daemon_get_clients", "daemon_get_account_info", "daemon_do_request"
ACK, PING, PONG = "daemon_ack", "daemon_ping", "daemon_pong"
REQUEST_RESULT, ACCOUNT_INFO, CLIENTS = "daemon_request_result", "daemon_account_info", "daemon_clients"
TRACIM_EVENT, CLIENT_ADDED, CLIENT_DELETED = "daemon_tracim_event", "daemon_client_added", "daemon_client_deleted"

#: The real daemon (and the Go SDK) do one read of at most this many bytes per connection (§2).
DAEMON_READ_LIMIT = 4096
#: Linux sun_path holds 108 bytes, one of them the terminating NUL.
MAX_SOCKET_PATH = 107
OTHER_CHANNEL = "other"
TRACIM_CHANNEL = "tracim"

_ABSENT = object()


class DecodeError(ValueError):
    """A document the daemon would reject; the text reads like the Go error it would log."""


# --- Go encoding (§4.3) -----------------------------------------------------------------------------

_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_NEEDS_ESCAPE = re.compile('["\\\\<>&\u2028\u2029\x00-\x1f\ud800-\udfff]')


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"  # a lone surrogate is not UTF-8: Go writes U+FFFD
    return f"\\u{ord(char):04x}"  # other controls, \b and \f included (Go 1.19)


def go_string(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def go_float(value: float) -> str:
    """strconv.FormatFloat as encoding/json uses it: 'f' form below 1e21, 'e' form outside."""
    if not math.isfinite(value):
        raise ValueError(f"unsupported value: {value}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(value))
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def go_json(value: Any, *, generic: bool = False) -> str:
    """Compact Go encoding. Dicts keep their order (Go structs) unless `generic`: then they are Go
    maps (sorted keys) and every number went through float64, as in a re-broadcast `data`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return go_string(value)
    if isinstance(value, (int, float)):
        return go_float(float(value)) if generic or isinstance(value, float) else str(value)
    if isinstance(value, dict):
        items = sorted(value.items()) if generic else value.items()
        return "{" + ",".join(f"{go_string(str(k))}:{go_json(v, generic=generic)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(item, generic=generic) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(path: str, type_: str, data: Any = _ABSENT, *, generic: bool = False) -> bytes:
    """One DaemonEvent as Go writes it: path, type, then data unless there is none (omitempty)."""
    text = '{"path":' + go_string(path) + ',"type":' + go_string(type_)
    if data is not _ABSENT and data is not None:
        text += ',"data":' + go_json(data, generic=generic)
    return (text + "}").encode("utf-8")


# --- renaming (the proxy) ----------------------------------------------------------------------------

#: A JSON string and, when it is a key, its colon: in a JSON document every `"` outside a string
#: opens one, so scanning from the start meets exactly the document's strings.
_STRING_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"(\s*:)?', re.DOTALL)
#: The longest a socket path can be written as a JSON string: every byte \u-escaped, and quotes.
_LONGEST_PATH_TOKEN = 6 * MAX_SOCKET_PATH + 2


def rename_paths(raw: bytes, names: Mapping[str, str]) -> bytes:
    """`raw` with every JSON string value equal to a key of `names` written (as Go writes it) as
    that key's value, and every other byte as it was: how the proxy swaps socket paths in a
    document it relays without re-encoding the rest."""

    def renamed(match: re.Match[bytes]) -> bytes:
        token = match.group()
        if match.group(1) is not None or len(token) > _LONGEST_PATH_TOKEN:
            return token
        try:
            text = json.loads(token)
        except ValueError:
            return token
        new = names.get(text)
        return token if new is None else go_string(new).encode("utf-8")

    return _STRING_TOKEN.sub(renamed, raw) if names else raw


# --- decoding --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    path: str
    type: str
    data: Any = None


def _no_constants(name: str) -> Any:
    raise DecodeError(f"invalid character '{name[0]}' looking for beginning of value")


def _go_number(text: str) -> int | float:
    """A JSON number as Go decodes it into `data` (float64): out of range is an error, not inf.
    Integers stay exact for display; a finite float64 has at most 309 integer digits, so int()
    never meets Python's 4300-digit limit."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise DecodeError(f"json: cannot unmarshal number {shown} into Go value of type float64")
    return int(text) if text.lstrip("-").isdigit() else value


_GO_DECODER = json.JSONDecoder(parse_constant=_no_constants, parse_int=_go_number, parse_float=_go_number)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(value: Any) -> Any:
    """Go decodes an unpaired \\uD800-\\uDFFF escape as U+FFFD; Python keeps a lone surrogate,
    which is no text at all (it cannot be written as UTF-8, nor be a socket path)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_no_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_no_surrogates(key): _no_surrogates(item) for key, item in value.items()}
    return value


def _loads(text: str, max_depth: int) -> Any:
    """json.loads within the depth limit, numbers and escapes as Go takes them; raises DecodeError
    or JSONDecodeError only (Go's own limit is 10,000 levels; ours guards the Python stack)."""
    try:
        check_depth(text, max_depth)
    except Malformed as exc:
        raise DecodeError(f"exceeded max depth: {exc}") from None
    value = _GO_DECODER.decode(text)
    return _no_surrogates(value) if _SURROGATE_ESCAPE.search(text) else value


def parse(raw: bytes, max_depth: int = MAX_DEPTH) -> Envelope:
    """A DaemonEvent decoded as the daemon decodes it: keys match case-insensitively (the last
    matching key wins), unknown keys are ignored, `path`/`type` must be strings when present."""
    text = raw.decode("utf-8", errors="replace")  # Go replaces invalid UTF-8 by U+FFFD
    if not text.strip():
        raise DecodeError("unexpected end of JSON input")
    try:
        document = _loads(text, max_depth)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc.msg} at byte {exc.pos}") from None
    if not isinstance(document, dict):
        raise DecodeError(f"json: cannot unmarshal {_go_type(document)} into Go value of type DaemonEvent")
    fields: dict[str, Any] = {"path": "", "type": "", "data": None}
    for key, value in document.items():
        name = key.lower()
        if name in fields:
            if name != "data" and not isinstance(value, str):
                raise DecodeError(
                    f"json: cannot unmarshal {_go_type(value)} into Go struct field DaemonEvent.{name} of type string"
                )
            fields[name] = value
    return Envelope(fields["path"], fields["type"], fields["data"])


def _go_type(value: Any) -> str:
    """The JSON kind as Go's UnmarshalTypeError names it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return _GO_KINDS.get(type(value), "null")


_GO_KINDS: dict[type[Any], str] = {dict: "object", list: "array", str: "string"}


def parse_tlm(data: Any, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The TLM inside a daemon_tracim_event: `data` is its JSON text, never an object (§4.9)."""
    if not isinstance(data, str):
        raise DecodeError(f"daemon_tracim_event data must be the TLM as a JSON string, got {_go_type(data)}")
    try:
        tlm = _loads(data, max_depth)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"TLM is not JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(tlm, dict) or not isinstance(tlm.get("event_type"), str):
        raise DecodeError("TLM has no string event_type")
    return tlm


@dataclass(frozen=True)
class Channels:
    """DaemonEvent type -> channel name, from the profile's [channels] (space-separated types)."""

    by_type: dict[str, str]

    @classmethod
    def from_profile(cls, profile: Profile) -> Channels:
        return cls({type_: name for name, types in profile.channels.items() for type_ in str(types).split()})

    def of(self, type_: str) -> str:
        return self.by_type.get(type_, OTHER_CHANNEL)


def malformed(error: str, *, profile: str, endpoint: str, raw: bytes = b"", direction: str = IN) -> Message:
    """A document that could not be taken: shown and counted, with what arrived of it."""
    return Message(
        profile=profile,
        endpoint=endpoint,
        direction=direction,
        channel=OTHER_CHANNEL,
        kind="invalid",
        raw=(raw,),
        error=error,
    )


def decode(
    raw: bytes,
    *,
    profile: str,
    channels: Channels,
    endpoint: str,
    direction: str = IN,
    peer: str | None = None,
    max_depth: int = MAX_DEPTH,
) -> Message:
    """A Message for one document. `id` is the other party's socket path (the sender's envelope
    path, or where an outgoing document went): the only correlation this protocol has.
    A tracim event's kind is its TLM event_type and its payload the decoded TLM."""
    try:
        envelope = parse(raw, max_depth)
    except DecodeError as exc:
        return malformed(str(exc), profile=profile, endpoint=endpoint, raw=raw, direction=direction)
    return message_of(
        envelope,
        raw,
        profile=profile,
        channels=channels,
        endpoint=endpoint,
        direction=direction,
        peer=peer,
        max_depth=max_depth,
    )


def message_of(
    envelope: Envelope,
    raw: bytes,
    *,
    profile: str,
    channels: Channels,
    endpoint: str,
    direction: str = IN,
    peer: str | None = None,
    max_depth: int = MAX_DEPTH,
) -> Message:
    """The Message for a parsed envelope, or for one we encoded ourselves (no need to parse it back)."""
    msg = Message(
        profile=profile,
        endpoint=endpoint,
        direction=direction,
        channel=channels.of(envelope.type),
        kind=envelope.type,
        payload=envelope.data,
        raw=(raw,),
    )
    msg.id = peer if peer is not None else envelope.path
    if envelope.type == TRACIM_EVENT:
        try:
            msg.payload = parse_tlm(envelope.data, max_depth)
            msg.kind = msg.payload["event_type"]
        except DecodeError as exc:
            msg.error = str(exc)
    return msg


# --- TLMs (Tracim live messages) ------------------------------------------------------------------


def tlm_text(tlm: dict[str, Any]) -> str:
    """A TLM as Tracim writes it on its SSE data line: Python json.dumps defaults (§4.9)."""
    return json.dumps(tlm)


def rfc3339(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def build_tlm(event_type: str, data: Any, event_id: int, when: float) -> dict[str, Any]:
    """A full TLM from `publish tracim EVENT_TYPE --data ...`: `data` is either a whole TLM (it has
    "fields") whose missing keys are filled in, or just the TLM's fields."""
    given = data if isinstance(data, dict) and "fields" in data else {"fields": data if data is not None else {}}
    tlm = {"event_id": event_id, "event_type": event_type, "read": None, "created": rfc3339(when), "fields": {}}
    tlm.update(given)
    return tlm


def event_text(msg: Message) -> str:
    """The TLM text a tracim-channel Message stands for: the recorded text when its raw document
    holds one (byte-exact replay), else its payload in Tracim's layout."""
    for raw in msg.raw:
        try:
            text = parse(raw).data
            if isinstance(text, str):
                parse_tlm(text)
                return text
        except DecodeError:
            continue
    return tlm_text(msg.payload)


def document_for(msg: Message, path: str) -> Envelope:
    """The DaemonEvent a Message asks to send, with `path` as the sender's socket."""
    if msg.channel == TRACIM_CHANNEL or msg.kind == TRACIM_EVENT:
        return Envelope(path, TRACIM_EVENT, event_text(msg))
    return Envelope(path, str(msg.kind), msg.payload)
