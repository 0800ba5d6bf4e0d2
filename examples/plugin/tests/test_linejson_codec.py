"""The linejson codec: what it encodes decodes back, and any line at all decodes to a Message."""

from __future__ import annotations

import pytest
from fieldctl_linejson import codec
from hypothesis import given
from hypothesis import strategies as st


def test_round_trip() -> None:
    frame = codec.encode("command", "echo", 7, {"text": "hi"})
    msg = codec.decode(frame, "linejson", "hub")
    assert (msg.channel, msg.kind, msg.id, msg.payload, msg.error, msg.raw) == (
        "command",
        "echo",
        7,
        {"text": "hi"},
        None,
        (frame,),
    )


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"nope",
        b"[1]",
        b'{"type": "x"}',
        b'{"type": "event", "kind": 1}',
        b'{"type": "event", "kind": "k", "id": true}',
        b"[" * 1000,
    ],
)
def test_foreign_lines_are_malformed_messages(frame: bytes) -> None:
    msg = codec.decode(frame, "linejson", "hub")
    assert msg.error and msg.raw == (frame,)


@pytest.mark.fuzz
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_a_message(frame: bytes) -> None:
    assert codec.decode(frame, "linejson", "hub").raw == (frame,)
