"""Fuzzing the one-liner decoders and the restricted unpickler (tests/fuzzing.py sets the case count
and the time budget): random bytes, and pickles built from opcode sequences, since random bytes
rarely get past a pickle's first opcode. Only the project's own errors may come out, within the
budget; the Message-returning decoders raise nothing at all."""

from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fieldctl.protocols.oneliner import codec, safe_pickle
from fieldctl.protocols.oneliner.simulator_state import Router
from tests.helpers.fuzzing import contained

PROFILE = "oneliner"
PICKLE_ERRORS = (pickle.UnpicklingError,)  # UnsafePickle and OverLimit included
ENCODINGS = {"p": codec.PICKLE, "j": codec.JSON, "r": codec.RAW}


def _counted(prefix: bytes, width: str, data: bytes) -> bytes:
    return prefix + struct.pack(width, len(data)) + data


def _text(draw: st.DrawFn) -> bytes:
    return draw(st.sampled_from([b"", b"a", b"os", b"builtins", b"set", b"bytearray", b"system", b"\xff", b"\n"]))


@st.composite
def opcode(draw: st.DrawFn) -> bytes:
    """One opcode with an argument that is usually well-formed, sometimes not."""
    index = draw(st.integers(0, 12) | st.sampled_from([255, 2**31 - 1, 2**32 - 1]))
    small = draw(st.binary(max_size=12))
    choices = [
        # pushes
        b"N",
        b"\x88",
        b"\x89",
        b"K" + bytes([index % 256]),
        b"M" + struct.pack("<H", index % 65536),
        b"J" + struct.pack("<i", draw(st.integers(-(2**31), 2**31 - 1))),
        _counted(b"\x8a", "<B", draw(st.binary(max_size=20))),  # LONG1
        _counted(b"\x8b", "<i", draw(st.binary(max_size=40))),  # LONG4
        b"G" + struct.pack(">d", draw(st.floats(allow_nan=True))),
        b"I" + small.hex().encode() + b"\n",
        b"L" + str(draw(st.integers(-(10**30), 10**30))).encode() + b"L\n",
        _counted(b"\x8c", "<B", small),
        _counted(b"X", "<I", small),
        _counted(b"C", "<B", small),
        _counted(b"B", "<I", small),
        _counted(b"\x8e", "<Q", small),
        _counted(b"\x96", "<Q", small),
        b"\x8e" + struct.pack("<Q", 2**40) + small,
        b"B" + struct.pack("<I", 2**31) + small,
        b"]",
        b"}",
        b")",
        b"\x8f",
        # structure
        b"(",
        b"a",
        b"e",
        b"s",
        b"u",
        b"\x90",
        b"\x91",
        b"t",
        b"\x85",
        b"\x86",
        b"\x87",
        b"l",
        b"d",
        b"0",
        b"1",
        b"2",
        b"\x94",
        b"h" + bytes([index % 256]),
        b"j" + struct.pack("<I", index),
        b"q" + bytes([index % 256]),
        b"r" + struct.pack("<I", index),
        b"g" + str(index).encode() + b"\n",
        b"p" + str(index).encode() + b"\n",
        # globals and calls
        b"\x8c\x08builtins"
        + _counted(
            b"\x8c",
            "<B",
            draw(
                st.sampled_from(
                    [b"bytearray", b"set", b"frozenset", b"complex", b"ValueError", b"KeyError", b"eval", b"getattr"]
                )
            ),
        )
        + b"\x93",
        b"c" + _text(draw) + b"\n" + _text(draw) + b"\n",
        b"R",
        b"b",
        b"\x81",
        b"\x92",
        b"\x95" + struct.pack("<Q", draw(st.integers(0, 2**63))),
        b"\x97",
        b"\x98",
    ]
    return draw(st.sampled_from(choices))


@st.composite
def pickles(draw: st.DrawFn) -> bytes:
    """PROTO, a sequence of opcodes, STOP; sometimes a bomb-like repetition of one pattern."""
    ops = draw(st.lists(opcode(), max_size=40))
    if draw(st.booleans()):
        pattern = b"".join(draw(st.lists(opcode(), min_size=1, max_size=4)))
        ops.append(pattern * draw(st.integers(1, 600)))  # a memo bomb needs 60
    return b"\x80" + bytes([draw(st.integers(2, 5))]) + b"".join(ops) + b"."


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real pickle of a plain value with a few bytes changed, cut or repeated."""
    data = bytearray(pickle.dumps(draw(plain), protocol=draw(st.integers(0, 5))))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "cut", "repeat", "insert"]))
        if action == "flip" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[where:]
        elif action == "repeat":
            data[where:where] = data[where : where + 4] * draw(st.integers(1, 200))
        else:
            data[where:where] = draw(opcode())
    return bytes(data)


any_pickle = pickles() | mutated() | st.binary(max_size=300)


def _packet(topic: bytes, meta: bytes, payload: bytes) -> bytes:
    return topic + b"\x00" + struct.pack("<H", len(meta) % 65536) + meta + payload


packets = st.builds(
    _packet,
    st.sampled_from([b"p", b"j", b"r", b"x", b""]),
    st.sampled_from([b"\x80\x04\x88.", pickle.dumps((True, 1.5), 4)]) | any_pickle,
    any_pickle | st.binary(max_size=200),
) | st.binary(max_size=300)


@pytest.mark.fuzz
@given(any_pickle)
def test_restricted_unpickler(data: bytes) -> None:
    for allowed in (safe_pickle.PAYLOAD_GLOBALS, safe_pickle.NO_GLOBALS):
        contained(safe_pickle.loads, data, allowed, allowed=PICKLE_ERRORS)


@pytest.mark.fuzz
@given(any_pickle)
def test_payload_decoders(data: bytes) -> None:
    for encoding in (*codec.ENCODINGS, None):
        contained(codec.deserialize, data, encoding, allowed=(codec.PacketError, safe_pickle.UnsafePickle))


@pytest.mark.fuzz
@given(packets)
def test_packet_decoders(data: bytes) -> None:
    contained(codec.decode_packet, data, allowed=(codec.PacketError,))
    stream = contained(codec.decode_stream, PROFILE, [data], ENCODINGS)
    assert stream.to_json().count("\n") == 0
    contained(codec.decode_reply, PROFILE, [data], "x.y")


@pytest.mark.fuzz
@given(any_pickle)
def test_request_decoders_and_the_simulated_server(data: bytes) -> None:
    contained(codec.decode_request, data, allowed=(codec.RequestError, safe_pickle.UnsafePickle))
    contained(codec.request_message, PROFILE, data)
    outcome = contained(Router({"objects": {"o": {"methods": {"echo": {"action": "echo"}}}}}).handle, data)
    contained(codec.decode_reply, PROFILE, [outcome.reply(1.0).packet], "?")


@pytest.mark.fuzz
@given(st.lists(opcode(), max_size=30))
@example(ops=[b"\x8c\x08builtins\x8c\tbytearray\x93"])  # a class as an argument, echoed back as the real server does
def test_requests_with_fuzzed_arguments_reach_a_method_or_an_error(ops: list[bytes]) -> None:
    body = b"\x80\x04(\x8c\x01o\x8c\x04echo](" + b"".join(ops) + b"e}\x89t."
    outcome = contained(Router({"objects": {"o": {"methods": {"echo": {"action": "echo"}}}}}).handle, body)
    reply = contained(codec.decode_reply, PROFILE, [outcome.reply(1.0).packet], "o.echo")
    assert reply.error is None
