"""What a peer's bytes may cost us to decode: frame size, nesting depth, non-finite numbers.

Every byte from a wire is hostile until decoded within these limits. Crossing one raises
``Malformed`` (a ValueError, so codecs report it like any other bad frame: shown, counted, and
the stream goes on); it never crashes a role or grows memory without bound.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fieldctl.profiles import Profile

#: The default for a profile's ``limits.max_frame_bytes``: one frame, message or document.
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: Nesting of JSON arrays and objects; real payloads of all five systems stay below 10.
MAX_DEPTH = 64


class Malformed(ValueError):
    """Input that crosses a decoding limit; a codec turns it into a malformed Message."""


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_depth: int = MAX_DEPTH

    @classmethod
    def of(cls, profile: "Profile") -> "Limits":
        """The profile's ``[limits]`` table (checked by the profile validator)."""
        table = profile.data.get("limits") or {}
        return cls(max_frame_bytes=int(table.get("max_frame_bytes", MAX_FRAME_BYTES)),
                   max_depth=int(table.get("max_depth", MAX_DEPTH)))

    def check_size(self, size: int) -> None:
        if size > self.max_frame_bytes:
            raise Malformed(f"frame of {size} bytes is over the limit of {self.max_frame_bytes} bytes")


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raises Malformed when JSON text nests deeper than max_depth. Counting brackets settles
    almost every real message at C speed; only a text with more brackets than the limit is
    measured, by peeling innermost pairs (one C-speed pass per level, at most max_depth passes)."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return
        brackets = _INNERMOST.sub("", brackets)
    if brackets:
        raise Malformed(f"nested deeper than {max_depth} levels")


def _no_constant(name: str) -> None:
    """NaN and ±Infinity are not JSON; Python peers send them anyway. They decode as null, the
    way the peers' own JSON encoders with allow_nan=False would have had them."""
    return None


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads within the depth limit; NaN/Infinity become None. Raises ValueError
    (Malformed, JSONDecodeError or UnicodeDecodeError) and nothing else."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
    check_depth(text, max_depth)
    return _DECODER.decode(text)


def reusable_text(text: str) -> str | None:
    """The wire's JSON text as it may be copied into one NDJSON line, or None where it must be
    encoded afresh (it holds a NaN/Infinity token). Raw newlines can only be whitespace between
    tokens (strict JSON forbids them in strings), so they become spaces: a peer cannot forge an
    extra NDJSON record."""
    if "NaN" in text or "Infinity" in text:
        return None
    if "\n" in text or "\r" in text:
        return text.replace("\n", " ").replace("\r", " ")
    return text
