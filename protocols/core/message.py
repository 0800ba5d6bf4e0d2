"""The one Message record that views, NDJSON output, --record files and replay all share."""

from __future__ import annotations

import base64
import json
import math
import time
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fieldctl.protocols.core.errors import UsageError

IN = "in"
OUT = "out"

#: Channel of the pseudo-messages that report connection state; never sent on a wire.
LINK = "link"

# orjson writes the line (the hot path of `listen --json`: about 20 times the speed of the json
# module): compact, UTF-8, NaN/Infinity as null. Dates and dataclasses go to `repr` as they did
# with the json module; what orjson refuses (an integer past 64 bits, a lone surrogate, deeper
# than 255 levels, an odd key) is written by the json module instead, the same line as before.
# Imported at the first line: profiles (and so completion) import this module and write none.
_dumps: Callable[[Any], bytes] | None = None
# allow_nan=False: NaN/Infinity are not JSON, and NDJSON readers (jq) reject them.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr, allow_nan=False)


@dataclass(slots=True)
class Message:
    profile: str
    endpoint: str
    direction: str
    channel: str
    kind: str | int
    payload: Any = None
    id: str | int | None = None
    raw: tuple[bytes, ...] = ()
    error: str | None = None
    ts: float = field(default_factory=time.time)
    #: On the first reply to a command: seconds from the request leaving to this reply arriving.
    rtt_s: float | None = None
    #: What a fault rule did to this frame on its way (`dropped`, `delayed 200.0 ms`): see
    #: protocols/sdk/faults.py; None for a frame relayed as it came.
    fault: str | None = None

    @property
    def is_link(self) -> bool:
        return self.channel == LINK

    def to_dict(self) -> dict[str, Any]:
        data = {
            "ts": self.ts,
            "profile": self.profile,
            "endpoint": self.endpoint,
            "direction": self.direction,
            "channel": self.channel,
            "kind": self.kind,
            "id": self.id,
            "payload": self.payload,
            "error": self.error,
            "raw": [b2a_base64(frame, newline=False).decode("ascii") for frame in self.raw],
        }
        if self.rtt_s is not None:
            data["rtt_s"] = self.rtt_s
        if self.fault is not None:
            data["fault"] = self.fault
        return data

    def to_json(self) -> str:
        """One NDJSON line, always: no raw newline, no NaN, whatever the peer sent."""
        data = self.to_dict()
        try:
            return (_dumps or _orjson())(data).decode("utf-8")
        except TypeError:  # orjson.JSONEncodeError
            return _slow_json(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, default_profile: str = "") -> Message:
        """Lenient: hand-written scenario lines may carry only channel, kind and payload."""
        if not isinstance(data, dict):
            raise UsageError("a message must be a JSON object")
        try:
            raw = tuple(base64.b64decode(frame, validate=True) for frame in data.get("raw") or ())
        except (ValueError, TypeError) as exc:
            raise UsageError(f"raw frames are not base64: {exc}") from None
        ts = data.get("ts")
        rtt = data.get("rtt_s")
        fault = data.get("fault")
        return cls(
            profile=str(data.get("profile") or default_profile),
            endpoint=str(data.get("endpoint") or ""),
            direction=str(data.get("direction") or OUT),
            channel=str(data.get("channel") or ""),
            kind=data.get("kind", ""),
            payload=data.get("payload"),
            id=data.get("id"),
            raw=raw,
            error=data.get("error"),
            ts=float(ts) if isinstance(ts, (int, float)) else time.time(),
            rtt_s=float(rtt) if isinstance(rtt, (int, float)) else None,
            fault=fault if isinstance(fault, str) else None,
        )


def _orjson() -> Callable[[Any], bytes]:
    global _dumps  # noqa: PLW0603  orjson is imported at the first line written, not at every start-up
    import functools

    import orjson

    options = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    _dumps = functools.partial(orjson.dumps, default=repr, option=options)
    return _dumps


def _slow_json(data: dict[str, Any]) -> str:
    """The json module's line, for what orjson refuses."""
    try:
        line = _ENCODER.encode(data)
    except ValueError:  # a non-finite float somewhere: it goes out as null
        line = _ENCODER.encode(_finite(data))
    if not line.isascii():
        # A lone surrogate (a peer's "\ud800" decoded) cannot be written as UTF-8: keep it as
        # the JSON escape it came as, so the line stays valid and the output never crashes.
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def link(profile: str, endpoint: str, state: str, detail: Any = None) -> Message:
    """A connection-state change, shown and recorded like any other message."""
    return Message(profile=profile, endpoint=endpoint, direction=IN, channel=LINK, kind=state, payload=detail)


def read_ndjson(lines: Iterable[str], *, source: str, default_profile: str = "") -> Iterator[Message]:
    """Messages from NDJSON text; a bad line is a usage error naming the source and line."""
    for number, text in enumerate(lines, 1):
        line = text.strip()
        if not line or line.startswith("#"):
            continue
        try:
            yield Message.from_dict(json.loads(line), default_profile=default_profile)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{source}:{number}: not JSON ({exc.msg})") from None
        except UsageError as exc:
            raise UsageError(f"{source}:{number}: {exc}") from None
