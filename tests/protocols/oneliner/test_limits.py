"""Pure tests: hostile pickles and packets are refused as malformed, fast and without allocating what
they declare (safe_pickle.scan/check, the codec's Limits), and the simulator's declared methods take
keyword arguments as a real server's do. The pickles (tests/helpers/pickles.py) are also what test_hostile.py
sends over real sockets."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from typing import Any

import pytest

from fieldctl.protocols.core.limits import Limits, Malformed
from fieldctl.protocols.oneliner import codec, safe_pickle
from fieldctl.protocols.oneliner.safe_pickle import OverLimit
from fieldctl.protocols.oneliner.simulator_state import Router
from tests.helpers.pickles import BOMBS, memo_bomb, pickled, request_with, short_unicode

PROFILE = "oneliner"
#: Every refusal here is a few opcodes' work; generous for a loaded CI machine.
FAST_S = 1.0


def timed(decode: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return decode(*args, **kwargs)
    finally:
        assert time.perf_counter() - started < FAST_S


@pytest.mark.parametrize("name", BOMBS)
def test_safe_pickle_refuses_each_bomb_fast(name: str) -> None:
    with pytest.raises(pickle.UnpicklingError) as refused:
        timed(safe_pickle.loads, pickled(BOMBS[name]))
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 200


@pytest.mark.parametrize("name", BOMBS)
def test_a_stream_packet_carrying_a_bomb_is_a_malformed_message(name: str) -> None:
    packet = codec.encode_packet("frame", True, 1.5, pickled(BOMBS[name]))
    msg = timed(codec.decode_stream, PROFILE, [packet], {})
    assert msg.error and msg.channel == "frame" and msg.payload == {"success": True, "timestamp": 1.5, "data": None}
    assert msg.to_json().count("\n") == 0
    reply = timed(codec.decode_reply, PROFILE, [codec.encode_packet("", False, None, pickled(BOMBS[name]))], "x.y")
    assert reply.error and reply.payload["success"] is False


@pytest.mark.parametrize("name", BOMBS)
def test_a_request_carrying_a_bomb_gets_an_error_answer(name: str) -> None:
    body = request_with(BOMBS[name])
    outcome = timed(Router({}).handle, body)
    assert outcome.malformed and not outcome.success and outcome.value.startswith("malformed request: ")
    assert timed(codec.request_message, PROFILE, body).error
    assert codec.decode_reply(PROFILE, [outcome.reply(1.0).packet], "?").payload["success"] is False


def test_the_refusals_say_what_was_wrong() -> None:
    def why(name: str) -> str:
        with pytest.raises(pickle.UnpicklingError) as refused:
            safe_pickle.loads(pickled(BOMBS[name]))
        return str(refused.value)

    assert "memo bomb" in why("memo bomb") and "memo bomb" in why("memo bomb by get")
    assert why("bytearray(2**31-1)").startswith("bytearray(n) refused")
    assert "memo index 4294967295" in why("huge memo index")
    assert "expected 1099511627776 bytes" in why("bytes8 of 2**40 bytes")
    assert "nested deeper than 64 levels" in why("deep tuple") and "nested deeper" in why("deep list by aliasing")
    assert "contains itself" in why("self-referencing list") and "contains itself" in why("self-referencing dict")
    assert "decimal digits" in why("huge int") and "4300" in why("huge int as text")
    assert "hash flood" in why("hash flood")
    assert isinstance(OverLimit("x"), Malformed)


def test_legitimate_sharing_depth_and_ints_still_decode() -> None:
    label = "status ok"
    shared = [{"state": label, "seq": n} for n in range(2000)]  # keys and values by memo reference
    assert safe_pickle.loads(pickle.dumps(shared, protocol=4)) == shared
    nested: Any = 0
    for _ in range(60):
        nested = [nested]
    assert safe_pickle.loads(pickle.dumps(nested, protocol=4)) == nested
    assert safe_pickle.loads(pickle.dumps((10**4000, -(2**61), [-1, -2] * 50), protocol=4))[0] == 10**4000
    assert safe_pickle.loads(pickle.dumps(bytearray(b"ab"), protocol=2)) == bytearray(b"ab")


def test_a_trusted_payload_is_bounded_before_it_becomes_json() -> None:
    looped: list[Any] = []
    looped.append(looped)
    packet = codec.encode_packet("frame", True, 1.0, pickle.dumps(looped, protocol=4))
    assert "contains itself" in codec.decode_stream(PROFILE, [packet], {}, trusted=True).error
    bomb = codec.encode_packet("frame", True, 1.0, pickled(memo_bomb()))
    assert "memo bomb" in timed(codec.decode_stream, PROFILE, [bomb], {}, trusted=True).error


def test_json_payloads_are_bounded_in_depth_and_int_size() -> None:
    deep = codec.encode_packet("j", True, 1.0, b"[" * 5000 + b"]" * 5000)
    assert "nested deeper than 64" in timed(codec.decode_stream, PROFILE, [deep], {"j": codec.JSON}).error
    assert timed(codec.decode_stream, PROFILE, [deep], {}).payload["data"] == {
        "bytes_hex": deep[deep.index(b"[[") :].hex()
    }
    huge = codec.encode_packet("j", True, 1.0, b"1" * 5000)
    assert "not JSON" in codec.decode_stream(PROFILE, [huge], {"j": codec.JSON}).error


def test_frame_and_request_size_limits() -> None:
    small = Limits(max_frame_bytes=100)
    packet = codec.encode_packet("frame", True, 1.0, pickle.dumps(b"x" * 200, protocol=4))
    assert "over the limit of 100 bytes" in codec.decode_stream(PROFILE, [packet], {}, limits=small).error
    assert codec.decode_stream(PROFILE, [packet], {}).error is None
    body = codec.encode_request(codec.Request("counter", "echo", ["x" * 200], {}))
    assert "over the limit of 100 bytes" in codec.request_message(PROFILE, body, limits=small).error
    assert "over the limit" in Router({}).handle(body, small).value


def test_error_texts_quote_peer_values_short_and_on_one_line() -> None:
    meta = pickle.dumps(["\x1b]0;pwned\x07" * 1000], protocol=4)
    packet = b"x\x00" + len(meta).to_bytes(2, "little") + meta
    error = codec.decode_stream(PROFILE, [packet], {}).error
    assert "\x1b" not in error and "\x07" not in error and len(error) < 200
    name = "evil\n" + "x" * 10_000
    hostile = pickled(
        short_unicode("os") + b"\x8d" + len(name.encode()).to_bytes(8, "little") + name.encode() + b"\x93"
    )
    with pytest.raises(safe_pickle.UnsafePickle) as refused:
        safe_pickle.loads(hostile)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 200
    request = pickle.dumps(["a" * 10_000], protocol=4)
    assert len(Router({}).handle(request).value) < 200
    assert safe_pickle.short_repr(ValueError("z" * 1000), 40).endswith("…")


# --- the simulated server's methods --------------------------------------------------------------------


SERVER = {
    "objects": {
        "horn": {
            "attributes": {"value": 0},
            "methods": {
                "add": {"action": "sum"},
                "get": {"action": "get"},
                "bump": {"action": "add"},
                "nap": {"action": "sleep", "seconds": 0.5},
                "echo": {"action": "echo"},
            },
        }
    }
}


@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        ([2, 3], {}, (True, 5)),
        ([], {"a": 2, "b": 3}, (True, 5)),  # the real server's add(a=2, b=3)
        ([2], {"b": 3}, (True, 5)),
    ],
)
def test_declared_methods_take_keyword_arguments(
    args: list[Any], kwargs: dict[str, Any], expected: tuple[bool, Any]
) -> None:
    outcome = Router(SERVER).invoke("horn", "add", args, kwargs)
    assert (outcome.success, outcome.value) == expected


@pytest.mark.parametrize(
    "attr, args, kwargs, text",
    [
        ("get", [], {"a": 1}, "horn.get() got an unexpected keyword argument 'a'"),
        ("get", [1], {}, "horn.get() takes 0 positional arguments but 1 was given"),
        ("bump", [], {"by": 2}, "horn.bump() got an unexpected keyword argument 'by'"),
        ("nap", [], {"second": 1}, "horn.nap() got an unexpected keyword argument 'second'"),
        ("nap", [float("inf")], {}, "sleep: seconds must be between 0 and 3600"),
    ],
)
def test_a_wrong_call_names_the_declared_method(attr: str, args: list[Any], kwargs: dict[str, Any], text: str) -> None:
    outcome = Router(SERVER).invoke("horn", attr, args, kwargs)
    assert (outcome.success, outcome.value) == (False, text)
    assert "<locals>" not in outcome.value and "lambda" not in outcome.value


def test_keyword_arguments_reach_the_method() -> None:
    router = Router(SERVER)
    assert router.invoke("horn", "bump", [], {"step": 4}).value == 4
    assert router.invoke("horn", "nap", [], {"seconds": 0.1}).delay == 0.1
    assert router.invoke("horn", "echo", [1], {"k": [2]}).value == {"args": [1], "kwargs": {"k": [2]}}


def test_a_pickle_cannot_change_what_the_next_one_decodes_with() -> None:
    """BUILD on a referenced global sets attributes: on the allowed callables there are none to set."""
    bytearray_global = b"\x8c\x08builtins\x8c\tbytearray\x93"
    for state in (b"}\x8c\x01xK\x05sb", b"N}\x8c\x0c__defaults__K\x05\x85s\x86b", b"N}\x8c\x04argsK\x05s\x86b"):
        with pytest.raises(pickle.UnpicklingError):
            safe_pickle.loads(pickled(bytearray_global + state))
    for name in (b"set", b"complex", b"ValueError"):
        with pytest.raises(pickle.UnpicklingError):
            safe_pickle.loads(
                pickled(b"\x8c\x08builtins" + short_unicode(name.decode()) + b"\x93N}\x8c\x01xK\x05s\x86b")
            )
    assert safe_pickle.loads(pickle.dumps(bytearray(b"ab"), protocol=2)) == bytearray(b"ab")
    assert safe_pickle.loads(pickle.dumps(b"ab", protocol=2)) == b"ab"


def test_trusted_pickles_are_scanned_too() -> None:
    """--trust-pickle allows any class, not a memo sized by a hostile index or a tuple a million deep."""
    for name in ("huge memo index", "deep tuple", "bytes8 of 2**40 bytes", "huge int"):
        with pytest.raises(pickle.UnpicklingError):
            timed(safe_pickle.loads, pickled(BOMBS[name]), trusted=True)
    from collections import OrderedDict

    assert safe_pickle.loads(pickle.dumps(OrderedDict(a=1), protocol=4), trusted=True) == {"a": 1}
