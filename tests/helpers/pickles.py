"""Hostile pickles for the one-liner protocol: bombs that declare far more than they are, nesting,
self-reference and huge integers, as opcodes a test can embed in a request or a payload."""

from __future__ import annotations

import pickle
from typing import Any


def short_unicode(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


def pickled(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def memo_bomb(levels: int = 60) -> bytes:
    """[] then (x, x) `levels` times, by DUP: 2 bytes a level, 2**levels elements once walked."""
    return b"]" + b"2\x86" * levels


def memo_bomb_by_get(levels: int = 40) -> bytes:
    """The same through the memo: each level a list holding the previous one twice (BINGET)."""
    body = b"]"
    for index in range(levels):
        body += b"\x94(" + bytes([0x68, index, 0x68, index]) + b"l"
    return body


def alias_deep(levels: int = 1000) -> bytes:
    """A list nested `levels` deep with a stack two slots high: each new list takes the previous
    one from the memo, so only the walk of the result can see the depth."""
    body = b"]\x94"
    for index in range(levels):
        body += b"]j" + index.to_bytes(4, "little") + b"a\x940"
    return body + b"j" + levels.to_bytes(4, "little")


def _self_referencing() -> bytes:
    looped: list[Any] = []
    looped.append(looped)
    return pickle.dumps(looped, protocol=4)[2:-1]


def _dict_referencing_itself() -> bytes:
    looped: dict[str, Any] = {}
    looped["me"] = looped
    return pickle.dumps(looped, protocol=4)[2:-1]


#: name -> pickle opcodes (no PROTO, no STOP), so a test can embed them in a request or a payload.
BOMBS: dict[str, bytes] = {
    "memo bomb": memo_bomb(),
    "memo bomb by get": memo_bomb_by_get(),
    "bytearray(2**31-1)": b"\x8c\x08builtins\x8c\tbytearray\x93J\xff\xff\xff\x7f\x85R",
    "huge memo index": b"Nr\xff\xff\xff\xff",
    "bytes8 of 2**40 bytes": b"\x8e" + (2**40).to_bytes(8, "little") + b"ab",
    "bytearray8 of 2**40 bytes": b"\x96" + (2**40).to_bytes(8, "little") + b"ab",
    "deep tuple": b")" + b"\x85" * 100_000,
    "deep list by aliasing": alias_deep(),
    "self-referencing list": _self_referencing(),
    "self-referencing dict": _dict_referencing_itself(),
    "huge int": pickle.dumps(10**5000, protocol=4)[2:-1],
    "huge int as text": b"L" + b"7" * 5000 + b"L\n",
    "hash flood": pickle.dumps({index * (2**61 - 1) for index in range(1, 200)}, protocol=4)[2:-1],
}


def request_with(argument: bytes) -> bytes:
    """pickle(("counter", "echo", [ARGUMENT], {}, False)) with hand-made opcodes for ARGUMENT."""
    return pickled(b"(" + short_unicode("counter") + short_unicode("echo") + b"]" + argument + b"a}\x89t")
