"""What a peer's bytes may cost us to decode: frame size, nesting depth, non-finite numbers; and
how long or how many a user's numbers may ask for.

Every byte from a wire is hostile until decoded within these limits. Crossing one raises
``Malformed`` (a ValueError, so codecs report it like any other bad frame: shown, counted, and
the stream goes on); it never crashes a role or grows memory without bound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The default for a profile's ``limits.max_frame_bytes``: one frame, message or document.
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: Nesting of JSON arrays and objects; real payloads of all five systems stay below 10.
MAX_DEPTH = 64


#: The longest wait a user may ask for (a timeout, an interval, a threshold, in a file or on the
#: command line): a day. `inf`, `nan` and 1e308 are refused, never waited for.
MAX_SECONDS = 86_400.0
#: The longest run (`--duration`): 30 days.
MAX_RUN_SECONDS = 30 * MAX_SECONDS
#: The most of anything a user may ask to be counted or sent (`--count`, `--requests`).
MAX_COUNT = 1_000_000_000
#: The most a profile's [limits] may allow: a frame of 1 GiB, nesting of 200 levels (orjson,
#: which writes every Message, refuses 255).
MAX_FRAME_BYTES_ALLOWED = 1 << 30
MAX_DEPTH_ALLOWED = 200


def finite_within(value: object, low: float, high: float, *, above_low: bool = False) -> bool:
    """Whether `value` is a number (not a bool) from `low` (excluded when `above_low`) to `high`;
    NaN and the infinities never are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (low < value if above_low else low <= value) and value <= high  # NaN fails both


class Malformed(ValueError):
    """Input that crosses a decoding limit; a codec turns it into a malformed Message."""


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_depth: int = MAX_DEPTH

    def check_size(self, size: int) -> None:
        if size > self.max_frame_bytes:
            raise Malformed(f"frame of {size} bytes is over the limit of {self.max_frame_bytes} bytes")


#: The limits of a profile without a ``[limits]`` table: what a codec decodes within by default.
DEFAULT_LIMITS = Limits()


def within_depth(value: Any, max_depth: int) -> bool:
    """Whether nested dicts and lists stay within `max_depth` levels; iterative and depth-first,
    so a too-deep branch is found without visiting the rest (and without recursing)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return False
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def _decode_within(text: str, max_depth: int) -> Any:
    """Counting brackets settles almost every real message at C speed. Past that, the C decoder
    refuses absurd nesting by itself (RecursionError, at once), and the decoded value is measured
    in one walk: linear in the size of the document, whatever its shape."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise Malformed(f"nested deeper than {max_depth} levels") from None
    if text.count("[") + text.count("{") > max_depth and not within_depth(value, max_depth):
        raise Malformed(f"nested deeper than {max_depth} levels")
    return value


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raises Malformed when JSON text nests deeper than max_depth; for a codec that decodes with
    its own options afterwards. Text that is not JSON passes: the codec's decoder says why."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    try:
        _decode_within(text, max_depth)
    except Malformed:
        raise
    except ValueError:
        return


def _no_constant(name: str) -> None:
    """NaN and ±Infinity are not JSON; Python peers send them anyway. They decode as null, the
    way the peers' own JSON encoders with allow_nan=False would have had them."""
    return


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_fast_decode: Callable[[Any], Any] | None = None
_FAST_REFUSES: tuple[type[Exception], ...] = (UnicodeEncodeError,)


def _fast() -> Callable[[Any], Any]:
    """msgspec's decoder, imported at the first decode: profiles (and so completion) import this
    module too, and need none of it."""
    global _fast_decode, _FAST_REFUSES  # noqa: PLW0603  msgspec is imported at the first decode, not at start-up
    import msgspec

    _FAST_REFUSES = (msgspec.DecodeError, UnicodeEncodeError)
    _fast_decode = msgspec.json.Decoder().decode
    return _fast_decode


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads within the depth limit; NaN/Infinity become None. Raises ValueError
    (Malformed, JSONDecodeError or UnicodeDecodeError) and nothing else.

    msgspec decodes a frame about ten times as fast as the json module, to the same values
    (integers of any size included); whatever it refuses (NaN, a lone surrogate, a number out of
    range, bad JSON) goes to the json module, which gives the value or the error it always did."""
    if isinstance(data, memoryview):
        data = data.tobytes()
    brackets = data.count("[") + data.count("{") if isinstance(data, str) else data.count(b"[") + data.count(b"{")
    if brackets <= max_depth:
        decode = _fast_decode or _fast()
        try:
            return decode(data)
        except _FAST_REFUSES:
            pass
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    return _decode_within(text, max_depth)
