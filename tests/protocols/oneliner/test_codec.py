"""Pure tests for one-liner: every byte string of every fixture in tests/fixtures/oneliner, the
restricted unpickler, and the simulated server's replies (router) against the real server's bytes.

One walker finds every hex string and sorts it into request, reply, stream packet, subscription or
envelope; `test_every_fixture_bytes_are_classified` fails when a new fixture or key carries bytes no
case reads. No sockets, no sleeps.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fieldctl.protocols.oneliner import codec, safe_pickle
from fieldctl.protocols.oneliner.codec import Request
from fieldctl.protocols.oneliner.safe_pickle import UnsafePickle
from fieldctl.protocols.oneliner.simulator_state import Outcome, Router
from tests.helpers.fixture_files import FIXTURES, load_fixture

PROFILE = "oneliner"
FIXTURE_NAMES = sorted(path.name for path in (FIXTURES / PROFILE).glob("*.json"))
JSON_STREAMS = {"status_json"}  # the fixtures' only stream with serializer "json"


@dataclass(frozen=True)
class Bytes:
    file: str
    path: str
    data: bytes
    category: str  # request | reply | stream | subscription | envelope
    entry: Any  # the JSON object the bytes belong to (its decoded views, client_returned, ...)

    def __str__(self) -> str:
        return f"{self.file}:{self.path}"


def _walk(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    if isinstance(node, dict):
        if isinstance(node.get("hex"), str):
            yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def _category(doc: dict[str, Any], path: tuple[Any, ...]) -> tuple[str, Any]:
    """What a part is, from where it sits: DEALER captures put an empty delimiter before bodies."""
    in_list = isinstance(path[-1], int)
    entry = _at(doc, path[:-2] if in_list else path[:-1])
    keys = [key for key in path if isinstance(key, str)]
    if "subscriptions_seen_by_XPUB" in keys or "unsubscriptions_after_client_close" in keys:
        return "subscription", entry
    if "request_parts_at_ROUTER" in keys:
        return ("request" if path[-1] == 2 else "envelope"), entry
    if "reply_body_sent" in keys:
        return "reply", entry
    if in_list and len(_at(doc, path[:-1])) == 2:  # [b"", body] as a DEALER sees it
        if path[-1] == 0:
            return "envelope", entry
        request = path[-2] == "request_parts" or entry.get("direction") == "client->server"
        return ("request" if request else "reply"), entry
    return "stream", entry


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@cache
def all_bytes() -> tuple[Bytes, ...]:
    found = []
    for name in FIXTURE_NAMES:
        doc = load_fixture(PROFILE, name)
        for path, node in _walk(doc, ()):
            category, entry = _category(doc, path)
            found.append(Bytes(name, "/".join(map(str, path)), bytes.fromhex(node["hex"]), category, entry))
    return tuple(found)


def of(category: str) -> list[Bytes]:
    return [item for item in all_bytes() if item.category == category]


def raw_value(packet: codec.Packet, encoding: str) -> Any:
    """The payload as Python (restricted), for re-encoding."""
    return codec.deserialize(packet.payload, encoding)


def test_every_fixture_bytes_are_classified() -> None:
    assert len(FIXTURE_NAMES) == 26
    counts = {category: len(of(category)) for category in ("request", "reply", "stream", "subscription", "envelope")}
    assert sum(counts.values()) == len(all_bytes())
    assert counts == {"request": 29, "reply": 32, "stream": 16, "subscription": 4, "envelope": 61}, counts
    assert {item.file for item in all_bytes()} == set(FIXTURE_NAMES)
    for item in of("envelope"):
        assert item.data == b"" or item.path.endswith("request_parts_at_ROUTER/0"), item


# --- requests ----------------------------------------------------------------------------------------


UNSAFE_REQUESTS = {"security_unpickle_runs_callable.json": "posix.getpid"}
MALFORMED_REQUESTS = {"rpc_malformed_request_kills_server.json"}


def expected_request_repr(item: Bytes) -> str | None:
    entry = item.entry
    if isinstance(entry, dict):
        for key in ("decoded", "request"):
            if isinstance(entry.get(key), dict) and "python_repr" in entry[key]:
                return entry[key]["python_repr"]
    return None


@pytest.mark.parametrize("item", of("request"), ids=str)
def test_request_decodes_and_reencodes_byte_for_byte(item: Bytes) -> None:
    if item.file in UNSAFE_REQUESTS:
        with pytest.raises(UnsafePickle) as refused:
            codec.decode_request(item.data)
        assert refused.value.name == UNSAFE_REQUESTS[item.file]
        return
    if item.file in MALFORMED_REQUESTS:
        with pytest.raises(codec.RequestError):
            codec.decode_request(item.data)
        return
    request = codec.decode_request(item.data)
    as_tuple = (request.obj, request.attr, request.args, request.kwargs, request.get_timestamp)
    expected = expected_request_repr(item)
    if expected is not None:
        assert repr(as_tuple) == expected
    assert codec.encode_request(request) == item.data  # what fieldctl's client sends


def test_real_client_requests_are_what_fieldctl_sends() -> None:
    """client_side_frames_from_real_RouterClient: the real client's calls, as fieldctl's command builds them."""
    from fieldctl.protocols.oneliner.client import build_request

    sent = {
        ex["client_api"]: bytes.fromhex(ex["request_parts_at_ROUTER"][2]["hex"])
        for ex in load_fixture(PROFILE, "client_side_frames_from_real_RouterClient.json")["rpc_exchanges"]
    }
    ours = {
        "call('horn','beep')": build_request("call", {"params": ["horn.beep"]}),
        "call('horn','echo', args=[1], kwargs={'a': 2}, get_timestamp=True)": build_request(
            "call", {"params": ["horn.echo"], "args": [1], "kwargs": {"a": 2}, "timestamp": True}
        ),
        "call('horn','fail')": build_request("call", {"params": ["horn.fail"]}),
        "call_by_name('add_defaults', args=[10])": build_request("named", {"params": ["add_defaults"], "args": [10]}),
        "enable_stream('counter')": build_request("enable", {"params": ["counter"]}),
        "disable_stream('counter')": build_request("disable", {"params": ["counter"]}),
        "server_version": build_request("version", {}),
        "get_stream_configurations(as_dict=True)": build_request("streams", {}),
    }
    assert set(ours) == set(sent)
    for api, request in ours.items():
        assert codec.encode_request(request) == sent[api], api


def test_request_message_refuses_without_running_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The security fixture and a pickle that would create a file: refused by name, nothing runs."""
    import posix

    called: list[Any] = []
    monkeypatch.setattr(posix, "getpid", lambda: called.append("getpid") or 1)
    body = bytes.fromhex(load_fixture(PROFILE, "security_unpickle_runs_callable.json")["frames"][0]["parts"][1]["hex"])
    msg = codec.request_message(PROFILE, body)
    assert msg.error == "unsafe pickle refused: posix.getpid" and called == []

    canary = tmp_path / "canary"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return os.system, (f"touch {canary}",)

    hostile = pickle.dumps(("counter", "add", [Exploit()], {}, False), protocol=4)
    with pytest.raises(UnsafePickle) as refused:
        safe_pickle.loads(hostile)
    assert refused.value.name in ("posix.system", "os.system") and not canary.exists()
    outcome = Router({}).handle(hostile)
    assert not outcome.success and "unsafe pickle refused" in outcome.value and not canary.exists()
    packet = codec.encode_packet("frame", True, 1.0, pickle.dumps(Exploit(), protocol=4))
    shown = codec.decode_stream(PROFILE, [packet], {})
    assert shown.error.startswith("unsafe pickle refused: ") and shown.payload["timestamp"] == 1.0
    assert not canary.exists()


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2.5,
        "s",
        b"b",
        bytearray(b"ba"),
        (1, 2),
        [1],
        {"a": 1},
        {1, 2},
        frozenset({3}),
        complex(1, 2),
        ValueError("x"),
        KeyError("k"),
    ],
    ids=repr,
)
def test_safe_pickle_builds_plain_values(value: Any) -> None:
    for protocol in (2, 4, 5):
        loaded = safe_pickle.loads(pickle.dumps(value, protocol=protocol))
        assert repr(loaded) == repr(value)


@pytest.mark.parametrize("hostile", [threading.Lock, os.getcwd, Path, pickle.loads], ids=repr)
def test_safe_pickle_refuses_other_globals(hostile: Any) -> None:
    data = pickle.dumps(hostile, protocol=4)
    with pytest.raises(UnsafePickle) as refused:
        safe_pickle.loads(data)
    assert str(refused.value).startswith("unsafe pickle refused: ")
    assert safe_pickle.loads(data, trusted=True) is hostile


def test_broken_pickles_are_unpickling_errors() -> None:
    for data in (b"", b"not a pickle", b"\x80\x04\x95", pickle.dumps([1, 2])[:-3]):
        with pytest.raises(pickle.UnpicklingError):
            safe_pickle.loads(data)


# --- replies -----------------------------------------------------------------------------------------


REFUSED_REPLIES = {"rpc_get_stream_configuration_object.json": "one_liner.stream_schema.Streams"}


def expected_reply_repr(item: Bytes) -> str | None:
    entry = item.entry if isinstance(item.entry, dict) else {}
    for key in ("decoded", "reply_decoded"):
        if isinstance(entry.get(key), dict) and "payload_python_repr" in entry[key]:
            return entry[key]["payload_python_repr"]
    returned = entry.get("client_returned")
    if isinstance(returned, str) and "Exception(" not in returned:
        return returned
    return None


@pytest.mark.parametrize("item", of("reply"), ids=str)
def test_reply_decodes_and_reencodes_byte_for_byte(item: Bytes) -> None:
    msg = codec.decode_reply(PROFILE, [item.data], "horn.x")
    if item.file in REFUSED_REPLIES:
        assert msg.error == f"unsafe pickle refused: {REFUSED_REPLIES[item.file]}"
        assert msg.payload == {"success": True, "timestamp": None, "data": None}
        return
    assert msg.error is None and msg.channel == "reply" and msg.endpoint == "calls"
    packet = codec.decode_packet(item.data)
    assert packet.topic == "" and msg.payload["success"] is packet.success
    value = raw_value(packet, codec.PICKLE)
    expected = expected_reply_repr(item)
    if expected is not None:
        returned = [packet.timestamp, value] if packet.timestamp is not None else value  # RouterClient.call's shape
        assert repr(value) == expected or repr(returned) == expected
    assert codec.encode_reply(packet.success, value, packet.timestamp) == item.data


# --- stream packets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("item", of("stream"), ids=str)
def test_stream_packet_decodes_and_reencodes_byte_for_byte(item: Bytes) -> None:
    encodings = dict.fromkeys(JSON_STREAMS, codec.JSON)
    msg = codec.decode_stream(PROFILE, [item.data], encodings)
    assert msg.error is None
    packet = codec.decode_packet(item.data)
    assert msg.channel == packet.topic and msg.kind == ("sample" if packet.success else "error")
    assert msg.payload["timestamp"] == packet.timestamp is not None  # streams always carry one
    decoded = item.entry.get("decoded") if isinstance(item.entry, dict) else None
    if decoded:
        assert decoded["topic"] == packet.topic
        assert decoded["metadata"] == [packet.success, packet.timestamp]
        if "payload_python_repr" in decoded:
            assert repr(raw_value(packet, encodings.get(packet.topic, codec.PICKLE))) == decoded["payload_python_repr"]
    encoding = encodings.get(packet.topic, codec.PICKLE)
    payload = codec.serialize(raw_value(packet, encoding), encoding)
    assert codec.encode_packet(packet.topic, packet.success, packet.timestamp, payload) == item.data
    assert codec.detect_encoding(packet.payload) == encoding


def test_hand_built_packets_give_what_the_real_client_returned() -> None:
    accepted = load_fixture(PROFILE, "client_side_frames_from_real_RouterClient.json")[
        "hand_built_publications_accepted"
    ]
    shown = [
        codec.decode_stream(PROFILE, [bytes.fromhex(p["parts"][0]["hex"])], {"status_json": "json"}) for p in accepted
    ]
    assert [(m.channel, m.payload["timestamp"], m.payload["data"]) for m in shown[:2]] == [
        ("counter", 123.5, 42),
        ("status_json", 124.0, {"seq": 7, "ok": True}),
    ]
    assert shown[2].kind == "error" and shown[2].payload["data"] == {
        "python_repr": "ValueError('sensor offline')",
        "python_type": "ValueError",
    }


def test_exact_topic_subscription_isolates_prefix_collisions() -> None:
    collision = load_fixture(PROFILE, "stream_subscription_prefix_collision.json")
    mine = bytes.fromhex(collision["example_new_frame_packet"]["hex"])
    other = bytes.fromhex(collision["example_new_frame_2_packet"]["hex"])
    bare = codec.topic_bytes("new_frame")
    assert mine.startswith(bare) and other.startswith(bare)  # what the real client subscribes to
    exact = codec.subscription("new_frame")
    assert mine.startswith(exact) and not other.startswith(exact)
    assert collision["topics_received_by_terminated_subscription"] == ["new_frame"]
    assert codec.decode_stream(PROFILE, [other], {}).channel == "new_frame_2"  # by its own topic, no confusion


@pytest.mark.parametrize("item", of("subscription"), ids=str)
def test_real_client_subscriptions(item: Bytes) -> None:
    name = item.entry["meaning"].split("b'")[1].rstrip("'")
    flag = b"\x01" if item.entry["meaning"].startswith("subscribe") else b"\x00"
    assert item.data == flag + codec.topic_bytes(name)


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"counter", "no 0x00"),
        (b"counter\x00\x18", "before the metadata length"),
        (b"counter\x00\x18\x00\x80\x04\x88.", "runs past the end"),
        (b"\xff\x00\x04\x00\x80\x04\x88.", "not UTF-8"),
        (b"x\x00\x05\x00\x80\x04K\x01.", "not success or (success, timestamp)"),
        (b"x\x00\x04\x00abcd", "metadata: not a pickle"),
    ],
)
def test_malformed_packets_are_errors_not_crashes(data: bytes, problem: str) -> None:
    msg = codec.decode_stream(PROFILE, [data], {})
    assert msg.error is not None and problem in msg.error
    assert problem in (codec.decode_reply(PROFILE, [data], "x").error or "")


def test_metadata_with_a_global_is_refused() -> None:
    meta = pickle.dumps((True, complex(1, 0)), protocol=4)
    data = b"x\x00" + len(meta).to_bytes(2, "little") + meta + pickle.dumps(1)
    assert codec.decode_stream(PROFILE, [data], {}).error == "metadata: unsafe pickle refused: builtins.complex"
    assert "2 parts" in codec.decode_stream(PROFILE, [data, b""], {}).error


def test_raw_and_json_payloads() -> None:
    raw = codec.encode_packet("blob", True, 2.0, b"\x01\x02")
    assert codec.decode_stream(PROFILE, [raw], {}).payload["data"] == {"bytes_hex": "0102"}
    text = codec.encode_packet("j", True, 2.0, codec.serialize({"a": [1, 2]}, codec.JSON))
    assert codec.decode_stream(PROFILE, [text], {}).payload["data"] == {"a": [1, 2]}
    assert codec.decode_stream(PROFILE, [text], {"j": codec.RAW}).payload["data"] == {"bytes_hex": b'{"a":[1,2]}'.hex()}
    assert "not JSON" in codec.decode_stream(PROFILE, [raw], {"blob": codec.JSON}).error
    assert codec.jsonable({1: {2, 3}, "c": complex(0, 1)}) == {
        1: {"python_repr": "{2, 3}", "python_type": "set"},
        "c": {"python_repr": "1j", "python_type": "complex"},
    }


# --- the simulated server against the real server's bytes ------------------------------------------------


HORN = {
    "version": "0.1.1.dev4",
    "objects": {
        "horn": {
            "attributes": {"volume": 11},
            "methods": {
                "beep": {"action": "return", "value": "Boop!"},
                "echo": {"action": "echo"},
                "fail": {"action": "raise", "message": "Crunch!"},
                "add": {"action": "sum"},
            },
        }
    },
    "named_calls": {"add_defaults": {"call": "horn.add", "args": [1, 2]}},
    "streams": {"counter": {"frequency_hz": 5, "generator": "count"}},
}
#: Exchanges the simulator cannot reproduce: a memory address, a lock, manual and relayed streams,
#: the pydantic object (answered with an error instead, as spec §10.2.3 allows).
NOT_REPRODUCED = {
    "rpc_call_unknown_attribute.json",
    "rpc_call_unpicklable_result.json",
    "rpc_get_stream_configuration.json",
    "rpc_get_stream_configuration_object.json",
    "stream_toggle_relay_errors.json",
    "security_unpickle_runs_callable.json",
    "rpc_malformed_request_kills_server.json",
}


def exchanges() -> Iterator[tuple[str, bytes, bytes]]:
    """(label, request body, reply body) in the order each fixture sent them."""
    for name in FIXTURE_NAMES:
        doc = load_fixture(PROFILE, name)
        if name in NOT_REPRODUCED:
            continue
        if name == "client_side_frames_from_real_RouterClient.json":
            for ex in doc["rpc_exchanges"]:
                if "echo" in ex["client_api"]:
                    continue  # that stand-in answered a made-up 'x', not what an echo returns
                yield (
                    ex["client_api"],
                    bytes.fromhex(ex["request_parts_at_ROUTER"][2]["hex"]),
                    bytes.fromhex(ex["reply_body_sent"]["hex"]),
                )
            continue
        frames = [
            bytes.fromhex(f["parts"][-1]["hex"]) for f in doc.get("frames", []) + doc.get("disable_again_frames", [])
        ]
        if len(frames) >= 2 and doc.get("frames", [{}])[0].get("direction") == "client->server":
            for index in range(0, len(frames), 2):
                yield f"{name}#{index // 2}", frames[index], frames[index + 1]
        for index, case in enumerate(doc.get("cases", [])):
            if "enable', ['events']" not in case["request"]["python_repr"]:  # a manual stream: none simulated
                yield (
                    f"{name}/cases/{index}",
                    bytes.fromhex(case["request_parts"][-1]["hex"]),
                    bytes.fromhex(case["reply_parts"][-1]["hex"]),
                )


def test_simulated_server_replies_byte_for_byte() -> None:
    """Each fixture's request into a fresh horn server (one per fixture, in capture order): our reply
    bytes are the real server's, timestamps included (the clock is the fixture's)."""
    seen = 0
    routers: dict[str, Router] = {}
    for label, body, expected in exchanges():
        fixture = label.split("#")[0].split("/")[0]
        router = routers.setdefault(fixture, Router(HORN))
        if "get_configuration" in label or b"get_configuration" in body:
            router = Router({})  # the real-client capture's stand-in server had no streams
        outcome = router.handle(body)
        stamp = codec.decode_packet(expected).timestamp
        assert outcome.reply(stamp if stamp is not None else 0.0).packet == expected, label
        seen += 1
    assert seen == 20
    disabled = Router(HORN)
    disabled.handle(codec.encode_request(Request("__streamer", "disable", ["counter"], {})))
    while_disabled = load_fixture(PROFILE, "stream_disable.json")["get_configuration_while_disabled_reply"]
    config = disabled.handle(codec.encode_request(Request("__streamer", "get_configuration", [], {"as_dict": True})))
    assert config.reply(0).packet == bytes.fromhex(while_disabled["parts"][-1]["hex"])


def test_simulated_server_failures_match_the_real_strings() -> None:
    router = Router(HORN)
    body = bytes.fromhex(load_fixture(PROFILE, "rpc_call_unknown_attribute.json")["frames"][0]["parts"][1]["hex"])
    text = router.handle(body).value
    assert text.startswith("Instance <") and text.endswith(
        "does not have attribute: nothere. Error: 'horn' object has no attribute 'nothere'"
    )
    unpicklable = load_fixture(PROFILE, "rpc_call_unpicklable_result.json")["frames"][1]["parts"][1]["hex"]
    assert router.invoke("horn", "beep", [], {}).value == "Boop!"

    assert Outcome(True, threading.Lock()).reply(0).packet == bytes.fromhex(unpicklable)
    assert router.invoke("horn", "volume", [], {}).value == "'int' object is not callable"
    as_object = router.handle(codec.encode_request(Request("__streamer", "get_configuration", [], {"as_dict": False})))
    assert not as_object.success and "as_dict=True" in as_object.value


@pytest.mark.parametrize(
    "body",
    [
        b"not a pickle",
        pickle.dumps(("o", "ping", [], {})),
        pickle.dumps(("o", 1, [], {}, 0)),
        pickle.dumps(("o", "a", "args", {}, 0)),
        pickle.dumps(("o", "a", [], {1: 2}, 0)),
        pickle.dumps(42),
        b"",
    ],
    ids=repr,
)
def test_malformed_requests_get_an_error_reply(body: bytes) -> None:
    outcome = Router(HORN).handle(body)
    assert not outcome.success and outcome.malformed and outcome.value.startswith("malformed request: ")
    reply = codec.decode_reply(PROFILE, [outcome.reply(0).packet], "?")
    assert reply.payload == {"success": False, "timestamp": None, "data": outcome.value}


def test_streams_configuration_and_toggles() -> None:
    from fieldctl.profiles import load_profile

    router = Router(load_profile(PROFILE).setting("simulate"))
    config = router.streamer.get_configuration(as_dict=True)["periodic_streams"]
    assert config["frame"] == {"encoding": "pickle", "return_type": "int", "frequency_hz": 10.0, "enabled": True}
    assert config["status_json"]["encoding"] == "json" and config["blob"]["encoding"] is None
    assert repr(router.streamer.streams["faulty"].sample()) == "(False, ValueError('sensor offline'))"
    assert router.invoke("counter", "add", [2], {}).value == 2
    assert router.streamer.streams["counter_value"].sample() == (True, 2)
    assert router.invoke("__rpc_server", "_call_by_name", ["add_five"], {}).value == 7
    assert router.invoke("counter", "sleep", [0.2], {}).delay == 0.2
    assert json.dumps(router.invoke("__rpc_server", "__getattribute__", ["named_call_signatures"], {}).value)


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(True, {"a": [1, 2.5, "x"]}, get_timestamp=True),
        Outcome(False, "no such method"),
        Outcome(True, threading.Lock()),
    ],
)
def test_a_reply_is_shown_as_built_the_same_as_decoded(outcome: Outcome) -> None:
    """The simulator shows its replies from the values it encoded, not by decoding its own packet."""
    reply = outcome.reply(12.5)
    built = codec.sent_packet(
        PROFILE,
        codec.CALLS,
        codec.REPLY,
        "o.m",
        reply.packet,
        reply.success,
        reply.timestamp,
        reply.value,
        reply.payload_bytes,
    )
    decoded = codec.decode_reply(PROFILE, [reply.packet], "o.m", direction="out")
    assert (built.payload, built.raw, built.error, built.kind, built.channel) == (
        decoded.payload,
        decoded.raw,
        decoded.error,
        decoded.kind,
        decoded.channel,
    )
