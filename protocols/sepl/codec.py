"""SEPL connector-client wire format, pure (text <-> values, no I/O): the device model and its
hashes, the client's json.dumps-spaced frames, the Go platform's compact sorted frames, and the
Messages both sides show. Spec: docs/protocols/sepl.md (§3, §4, §5, §7)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fieldctl.protocols.core import limits, redact
from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.core.message import Message

LOGIN_TOKEN = "credentials"
HANDLERS = ("clear", "put", "disconnect", "delete", "commit", "event", "response")
DEVICE_HANDLERS = ("clear", "put", "disconnect", "delete", "commit")
METADATA, DATA = "metadata", "data"
RESERVED_TAG_IDS = ("device_name", "device_type")
ENDPOINT = "platform"
#: How much of a peer's value an error text or table cell quotes.
QUOTED = 200


# --- devices and hashes (§7) ------------------------------------------------------------------


@dataclass
class Device:
    id: str
    type: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)  # insertion order is hashed and sent

    def __post_init__(self) -> None:
        for tag_id, tag in self.tags.items():
            check_tag(tag_id, tag)

    @property
    def tag_list(self) -> list[str]:
        return [f"{tag_id}:{tag}" for tag_id, tag in self.tags.items()]

    @property
    def hash(self) -> str:
        text = self.id + self.type + self.name + "".join(k + v for k, v in self.tags.items())
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def put_payload(self) -> dict[str, Any]:
        return {"uri": self.id, "name": self.name, "iot_type": self.type, "tags": self.tag_list}


def check_tag(tag_id: str, tag: str) -> None:
    if tag_id in RESERVED_TAG_IDS:
        raise ValueError(f"tag id {tag_id!r} is reserved")
    if any(ch in text for text in (tag_id, tag) for ch in ":;"):
        raise ValueError(f"tag {tag_id}={tag} may not contain ':' or ';'")


def collection_hash(devices: Iterable[Device]) -> str:
    return hashlib.sha1("".join(sorted(d.hash for d in devices)).encode("utf-8")).hexdigest()


def parse_device_spec(spec: str) -> Device:
    """`id:type:name[:tag=value...]`, as --device and each line of --devices-file give it."""
    parts = spec.strip().split(":")
    if len(parts) < 3 or not all(parts[:3]):
        raise ValueError(f"device {spec!r}: expected id:type:name[:tag=value...]")
    tags: dict[str, str] = {}
    for part in parts[3:]:
        tag_id, sep, tag = part.partition("=")
        if not sep or not tag_id:
            raise ValueError(f"device {spec!r}: tag {part!r} is not tag=value")
        tags[tag_id] = tag
    return Device(parts[0], parts[1], parts[2], tags)


def parse_device_lines(text: str) -> list[Device]:
    """A devices file: one spec per line; blank lines and # comments are skipped."""
    return [parse_device_spec(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- client frames (§3.1, §4.1, §5.9): Python json.dumps defaults -------------------------------


def credentials(user: str, password: str, gid: str) -> dict[str, str]:
    """The first frame's object, in the library's key order; it goes out as json.dumps(...)."""
    return {"user": user, "pw": password, "gid": gid, "token": LOGIN_TOKEN}


def request_envelope(handler: str, token: str, payload: Any, content_type: str = "") -> dict[str, Any]:
    return {"status": 0, "handler": handler, "token": token, "content_type": content_type, "payload": payload}


def request_frame(handler: str, token: str, payload: Any, content_type: str = "") -> str:
    return json.dumps(request_envelope(handler, token, payload, content_type))


def parts(metadata: Any, data: Any) -> list[dict[str, Any]]:
    """The standard-connector parts, metadata first (§6)."""
    return [{"name": METADATA, "value": metadata}, {"name": DATA, "value": data}]


def event_payload(device_uri: str, service_uri: str, data: str | None, metadata: str | None = None) -> dict[str, Any]:
    return {"device_uri": device_uri, "service_uri": service_uri, "value": parts(metadata, data)}


def response_frame(command: dict[str, Any], token: str, data: Any, metadata: Any = None) -> str:
    return json.dumps(response_envelope(command, token, data, metadata))


def response_envelope(command: dict[str, Any], token: str, data: Any, metadata: Any = None) -> dict[str, Any]:
    """The library's answer to a command: the command envelope re-sent as handler `response` with a
    fresh token, its other (truthy) fields and unknown keys kept, protocol_parts replaced in place."""
    payload = dict(command["payload"]) if isinstance(command.get("payload"), dict) else {}
    payload["protocol_parts"] = parts(metadata, data)
    envelope = {
        "status": command.get("status") or 0,
        "handler": "response",
        "token": token,
        "content_type": command.get("content_type") or "",
        "payload": payload,
    }
    envelope.update((k, v) for k, v in command.items() if k not in envelope and v)
    return envelope


def part_value(parts_list: Any, name: str) -> Any:
    for part in parts_list if isinstance(parts_list, list) else ():
        if isinstance(part, dict) and part.get("name") == name:
            return part.get("value")
    return None


def as_part_text(value: Any) -> str | None:
    """Part values are text (the platform rejects other JSON types): JSON data becomes its text."""
    return value if value is None or isinstance(value, str) else json.dumps(value)


def part_data(value: Any) -> Any:
    """A part's value as the data it carries: an object's or an array's JSON text decoded (within
    the limits), so it is shown once and not as a string of JSON; any other text (`42` may be a
    number's text or a name), or any other value, as it is."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return value
    try:
        return limits.loads(value)
    except ValueError:  # not JSON after all, or over a limit (Malformed is one)
        return value


# --- platform frames (§4.2): Go encoding/json ---------------------------------------------------

#: What Go's encoding/json escapes beyond JSON's own, as one table: str.translate walks a frame once,
#: in C (a lookup per character in Python took 0.2 s per MB of a peer's frame quoted back).
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def go_json(value: Any) -> str:
    """Compact, keys sorted at every level, UTF-8 kept, <>& escaped, numbers as float64."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).translate(_GO_ESCAPES)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return go_number(float(value))


def go_number(number: float) -> str:
    """strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json picks it."""
    if number != 0 and (abs(number) < 1e-6 or abs(number) >= 1e21):
        return repr(number).replace("e-0", "e-").replace("e+0", "e+")
    text = format(Decimal(repr(number)), "f")
    return text[:-2] if text.endswith(".0") else text


def go_kind(value: Any) -> str:
    """content_type: the Go reflect.Kind name of the payload after a JSON round trip."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    return "float64" if isinstance(value, (int, float)) else "invalid"


def platform_envelope(
    status: int, handler: str, token: str, payload: Any, content_type: str | None = None
) -> dict[str, Any]:
    kind = go_kind(payload) if content_type is None else content_type
    return {"status": status, "handler": handler, "token": token, "content_type": kind, "payload": payload}


def go_frame(envelope: dict[str, Any]) -> str:
    """A platform envelope as the Go platform writes it: its field order, go_json values."""
    return (
        f'{{"status":{envelope["status"]},"handler":{go_json(envelope["handler"])},'
        f'"token":{go_json(envelope["token"])},"content_type":{go_json(envelope["content_type"])},'
        f'"payload":{go_json(envelope["payload"])}}}'
    )


def platform_frame(status: int, handler: str, token: str, payload: Any, content_type: str | None = None) -> str:
    return go_frame(platform_envelope(status, handler, token, payload, content_type))


def login_answer_frame(token: str, gid: str, hash_: str, status: int = 200) -> str:
    return go_frame(login_answer_envelope(token, gid, hash_, status))


def login_answer_envelope(token: str, gid: str, hash_: str, status: int = 200) -> dict[str, Any]:
    return platform_envelope(status, "response", token, {"gid": gid, "hash": hash_}, "map")


def command_envelope(payload: dict[str, Any]) -> dict[str, Any]:
    return platform_envelope(0, "command", "", payload, "map")


def command_frame(payload: dict[str, Any]) -> str:
    return go_frame(command_envelope(payload))


def go_sprint_event(payload: dict[str, Any]) -> str:
    """fmt.Sprint of the Go event struct, as the `not listen to this device` error shows it."""
    values = " ".join(f"{{{p.get('name') or ''} {p.get('value') or ''}}}" for p in payload.get("value") or [])
    return f"{{{payload.get('device_uri') or ''} {payload.get('service_uri') or ''} [{values}]}}"


def go_type_name(value: Any) -> str:
    """The JSON type names in Go's UnmarshalTypeError text."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return _GO_CONTAINERS.get(type(value), "string")


_GO_CONTAINERS: dict[type[Any], str] = {dict: "object", list: "array"}


# --- decoding: every frame is hostile until it passes here ---------------------------------------

# A lone surrogate can only come from a \uD800-\uDFFF escape (text frames are valid UTF-8) that
# is not half of a pair; pairs (an emoji from an ensure_ascii encoder) are common and harmless.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_PAIR_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _mend(value: Any) -> Any:
    """Lone surrogates become U+FFFD, as Go's encoding/json decodes them: they cannot be encoded
    as UTF-8, so they could be neither shown nor sent on. Depth is bounded by limits.loads."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_mend(k): _mend(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mend(v) for v in value]
    return value


def parse_object(text: str, max_depth: int = limits.MAX_DEPTH) -> dict[str, Any]:
    """One frame as a JSON object, decoded within the depth limit (NaN/Infinity as null, lone
    surrogates as U+FFFD). Raises Malformed, and nothing else, for anything that is not one."""
    try:
        value = limits.loads(text, max_depth)
    except Malformed:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        reason = "an integer of more than 4300 digits" if "integer string conversion" in str(exc) else str(exc)
        raise Malformed(reason[:QUOTED]) from None
    if not isinstance(value, dict):
        raise Malformed(f"expected a JSON object, got {type(value).__name__}")
    lone = _SURROGATE_ESCAPE.search(text) and _SURROGATE_ESCAPE.search(_PAIR_ESCAPE.sub("", text))
    return _mend(value) if lone else value


def text_of(value: Any) -> str:
    """A field where the protocol wants a string (token, handler, gid, task id): anything else,
    lists and objects included, counts as absent (the library's truthiness rule, §4.3)."""
    return value if isinstance(value, str) else ""


def quoted(value: Any) -> str:
    """A peer's value as an error text may quote it: its start only, and no known secret (scrubbed
    before it is cut, so no part of one is left either)."""
    text = redact.scrub_text(value if isinstance(value, str) else json.dumps(value, default=repr))
    return text if len(text) <= QUOTED else text[:QUOTED] + "..."


def credentials_message(profile: str, direction: str, creds: dict[str, Any]) -> Message:
    """The credentials object as shown: secret-named fields (pw, PW, password ...) masked and
    remembered by redact.mask, whatever their type; the raw copy re-encoded from the masked
    object, so no escape spelling of the password survives in it. The login token is the literal
    "credentials" under a key redact takes for a secret's: a marker, shown as it is, never
    remembered (it would mask the word everywhere)."""
    marker = {k for k, v in creds.items() if k.lower() == "token" and v == LOGIN_TOKEN}
    masked = redact.mask(
        Message(
            profile, ENDPOINT, direction, "login", "credentials", {k: v for k, v in creds.items() if k not in marker}
        )
    )
    shown = {
        k: (redact.MASK if redact.is_secret_key(k) and k not in marker else masked.payload.get(k, v))
        for k, v in creds.items()
    }
    return dataclasses.replace(masked, payload=shown, raw=(json.dumps(shown).encode("utf-8"),))


#: The Go platform's credentials struct (§3.1): each field a string; null counts as empty.
LOGIN_FIELDS = ("user", "pw", "gid", "token")


def login_fields(creds: dict[str, Any]) -> dict[str, str]:
    """user, pw, gid and token as the Go platform decodes them: names matched case-insensitively,
    null as "". Malformed for any other type, which makes Go refuse the login."""
    fields = {k.lower(): v for k, v in creds.items() if k.lower() in LOGIN_FIELDS}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise Malformed(f"credentials: {key} is {go_type_name(value)}, not a string")
    return {key: fields.get(key) or "" for key in LOGIN_FIELDS}


def device_service(payload: Any, device_key: str, service_key: str) -> str:
    body = payload if isinstance(payload, dict) else {}
    return f"{quoted(text_of(body.get(device_key)) or '?')}:{quoted(text_of(body.get(service_key)) or '?')}"


def envelope_message(
    profile: str,
    direction: str,
    envelope: dict[str, Any],
    raw: bytes,
    *,
    from_client: bool,
    answered: str | None = None,
) -> Message:
    """The Message for one envelope. channel: device (clear/put/disconnect/delete/commit), event,
    command (platform -> client), response (the client's command result), reply (the platform's
    answers; kind = the handler answered, when known). Events, commands and responses have kind
    DEVICE:SERVICE."""
    handler = envelope.get("handler")
    payload = envelope.get("payload")
    channel, kind = "reply", answered or "response"
    if handler in DEVICE_HANDLERS:
        channel, kind = "device", handler
    elif handler == "event":
        channel, kind = "event", device_service(payload, "device_uri", "service_uri")
    elif handler == "command":
        channel, kind = "command", device_service(payload, "device_url", "service_url")
    elif handler == "response" and from_client:
        channel, kind = "response", device_service(payload, "device_url", "service_url")
    elif handler not in (None, "response"):
        channel, kind = "unknown", quoted(handler)
    return Message(
        profile=profile,
        endpoint=ENDPOINT,
        direction=direction,
        channel=channel,
        kind=kind,
        payload=envelope,
        id=text_of(envelope.get("token")) or None,
        raw=(raw,),
    )


def malformed_message(profile: str, direction: str, raw: bytes, error: str) -> Message:
    return Message(
        profile=profile,
        endpoint=ENDPOINT,
        direction=direction,
        channel="malformed",
        kind="frame",
        payload=raw[:QUOTED].decode("utf-8", errors="replace"),
        raw=(raw,),
        error=error,
    )


def decode_frame(
    profile: str, direction: str, text: str, *, from_client: bool, answered: str | None = None
) -> tuple[dict[str, Any] | None, Message]:
    """One envelope frame: (the envelope, its Message), or (None, a malformed Message)."""
    raw = text.encode("utf-8", errors="replace")
    try:
        envelope = parse_object(text)
    except Malformed as exc:
        return None, malformed_message(profile, direction, raw, str(exc))
    return envelope, envelope_message(profile, direction, envelope, raw, from_client=from_client, answered=answered)
