"""Pure codec tests for SEPL, byte for byte against every fixture in tests/fixtures/sepl.

Client frames (the real library's output) are rebuilt from their values by the client encoder;
platform frames by the Go-style encoder; and the whole transcript's client frames are replayed
through the simulator's rules (registry), whose answers must equal the recorded platform frames.
Hashes come from the spec's tables. No sockets, no sleeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldctl.profiles.secrets import Secret
from fieldctl.protocols.sepl import codec
from fieldctl.protocols.sepl.driver import describe
from fieldctl.protocols.sepl.simulator_state import Registry, Session
from fieldctl.protocols.sepl.store import DeviceStore
from tests.helpers.fixture_files import FIXTURES, load_fixture

PROFILE = "sepl"
FIXTURE_NAMES = sorted(path.name for path in (FIXTURES / PROFILE).glob("*.json"))
CLIENT, SERVER = "client->server", "server->client"


def text_frames(name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, frame in enumerate(load_fixture(PROFILE, name)["frames"]):
        if frame["opcode"] == "text":
            yield index, frame


def rebuild_client(text: str, last_command: dict[str, Any] | None) -> str:
    """The client encoder's output for the values in a recorded client frame."""
    value = json.loads(text)
    if value.get("token") == codec.LOGIN_TOKEN and "pw" in value:
        return json.dumps(codec.credentials(value["user"], value["pw"], value["gid"]))
    if value["handler"] == "response":
        assert last_command is not None, "a response needs the command it answers"
        parts = value["payload"]["protocol_parts"]
        return codec.response_frame(
            last_command, value["token"], codec.part_value(parts, codec.DATA), codec.part_value(parts, codec.METADATA)
        )
    return codec.request_frame(value["handler"], value["token"], value["payload"])


def rebuild_server(text: str) -> str:
    value = json.loads(text)
    if value["handler"] == "command":
        return codec.command_frame(value["payload"])
    if value["token"] == codec.LOGIN_TOKEN:
        return codec.login_answer_frame(
            value["token"], value["payload"]["gid"], value["payload"]["hash"], value["status"]
        )
    return codec.platform_frame(value["status"], value["handler"], value["token"], value["payload"])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_text_frame_is_rebuilt_byte_for_byte(name: str) -> None:
    last_command = None
    checked = 0
    for index, frame in text_frames(name):
        text = frame["text"]
        if frame["direction"] == CLIENT:
            assert rebuild_client(text, last_command) == text, f"{name} frame {index}"
        else:
            assert rebuild_server(text) == text, f"{name} frame {index}"
            if json.loads(text)["handler"] == "command":
                last_command = json.loads(text)
        checked += 1
    assert checked == sum(1 for _ in text_frames(name))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_text_frame_decodes_to_a_message(name: str) -> None:
    for _, frame in text_frames(name):
        text = frame["text"]
        from_client = frame["direction"] == CLIENT
        value = codec.parse_object(text)
        if "pw" in value:
            shown = codec.credentials_message(PROFILE, "in", value)
            assert shown.payload["pw"] == "***" and shown.payload["token"] == codec.LOGIN_TOKEN
            assert value["pw"].encode() not in shown.raw[0]
            continue
        msg = codec.envelope_message(PROFILE, "in", value, text.encode(), from_client=from_client)
        expected = {
            "clear": "device",
            "put": "device",
            "disconnect": "device",
            "delete": "device",
            "commit": "device",
            "event": "event",
            "command": "command",
        }.get(value["handler"])
        if value["handler"] == "response":
            expected = "response" if from_client else "reply"
        assert msg.channel == expected and msg.raw == (text.encode(),)
        assert describe(msg)


def test_the_transcript_replayed_through_the_platform_rules_gives_the_recorded_answers() -> None:
    """Every answer the platform recorded in 00 (login answers included) from the simulator's rules."""
    registry = Registry(["sepl_get", "sepl_set"], gid_prefix="fake-gateway-")
    session: Session | None = None
    expected: list[str] = []
    produced: list[str] = []
    for _, frame in text_frames("00-full-transcript.json"):
        text = frame["text"]
        if frame["direction"] == SERVER:
            if json.loads(text)["handler"] != "command":  # pushed, not an answer
                expected.append(text)
            continue
        value = json.loads(text)
        if value.get("token") == codec.LOGIN_TOKEN and "pw" in value:
            gateway = registry.provide(value["gid"])
            session = Session(registry, gateway)
            produced.append(codec.login_answer_frame(value["token"], gateway.gid, gateway.hash))
            continue
        assert session is not None
        produced += [codec.platform_frame(a.status, "response", a.token, a.payload) for a in session.handle(text)]
    assert produced == expected


def test_the_second_login_of_the_transcript_carries_the_committed_hash() -> None:
    frames = [f["text"] for _, f in text_frames("10-reconnect-login-hash-match.json")]
    answer = json.loads(frames[-1])
    assert answer["payload"]["hash"] == "52be0e9f6d014363cff0d0924acf8c918ee1c4fa"
    assert (
        codec.collection_hash([codec.Device("dev-1", "iot#type-lamp", "Lamp 1", {"location": "kitchen"})])
        == answer["payload"]["hash"]
    )


# --- hashes (spec §7) ---------------------------------------------------------------------------


def fixture_device(entry: dict[str, Any]) -> codec.Device:
    return codec.Device(entry["id"], entry["type"], entry["name"], dict(entry["tags"]))


def test_device_and_collection_hashes_of_the_sync_fixture() -> None:
    sync = load_fixture(PROFILE, "02-device-sync.json")
    devices = [fixture_device(entry) for entry in sync["devices"]]
    assert [d.hash for d in devices] == [entry["hash"] for entry in sync["devices"]]
    assert codec.collection_hash(devices) == sync["collection_hash"]
    assert codec.collection_hash(reversed(devices)) == sync["collection_hash"]  # order does not matter


def test_collection_hash_after_each_change_matches_the_commits() -> None:
    sync = load_fixture(PROFILE, "02-device-sync.json")
    devices = {entry["id"]: fixture_device(entry) for entry in sync["devices"]}
    added = load_fixture(PROFILE, "03-add-device.json")
    devices["dev-3"] = fixture_device(added["device"])
    assert codec.collection_hash(devices.values()) == added["collection_hash_after"]
    devices["dev-3"].name = "Lamp 3 renamed"
    assert (
        codec.collection_hash(devices.values())
        == load_fixture(PROFILE, "04-update-device.json")["collection_hash_after"]
    )
    del devices["dev-2"]
    assert (
        codec.collection_hash(devices.values())
        == load_fixture(PROFILE, "05-disconnect-device.json")["collection_hash_after"]
    )
    del devices["dev-3"]
    assert (
        codec.collection_hash(devices.values())
        == load_fixture(PROFILE, "06-delete-device.json")["collection_hash_after"]
    )
    assert codec.collection_hash([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709"


def test_device_specs() -> None:
    device = codec.parse_device_spec("dev-3:iot#type-lamp:Lamp 3:location=hall:floor=1")
    assert device.put_payload() == {
        "uri": "dev-3",
        "name": "Lamp 3",
        "iot_type": "iot#type-lamp",
        "tags": ["location:hall", "floor:1"],
    }
    for bad in ("dev-1:type", "dev-1::name", "a:b:c:notag", "a:b:c:device_name=x", "a:b:c:x=y;z"):
        with pytest.raises(ValueError):
            codec.parse_device_spec(bad)
    assert [d.id for d in codec.parse_device_lines("# lamps\ndev-1:t:n\n\n dev-2:t:m\n")] == ["dev-1", "dev-2"]


# --- Go encoding (spec §4.2) --------------------------------------------------------------------


def test_go_json_sorts_keys_escapes_html_and_prints_numbers_as_float64() -> None:
    assert (
        codec.go_json({"b": 1.0, "a": [True, None, "x<y>&z\u2028"], "c": {"z": 1, "é": 2.5}})
        == '{"a":[true,null,"x\\u003cy\\u003e\\u0026z\\u2028"],"b":1,"c":{"z":1,"é":2.5}}'
    )
    assert [codec.go_number(n) for n in (1e16, 1e21, 1e-7, 0.1, -3.0, 0)] == [
        "10000000000000000",
        "1e+21",
        "1e-7",
        "0.1",
        "-3",
        "0",
    ]
    assert [codec.go_kind(v) for v in ("ok", {}, [], 1, True)] == ["string", "map", "slice", "float64", "bool"]


# --- platform rules: the error texts of spec §5.10 ---------------------------------------------


def session_with(*devices: str) -> Session:
    registry = Registry(["sepl_get"])
    session = Session(registry, registry.provide(""))
    for uri in devices:
        session.handle(codec.request_frame("put", "t", {"uri": uri, "name": uri, "iot_type": "lamp", "tags": []}))
    return session


@pytest.mark.parametrize(
    "handler, payload, status, text",
    [
        ("disconnect", 1, 400, "expect uri as string in payload"),
        ("disconnect", "dev-9", 500, "not listening to device with uri 'dev-9'"),
        ("delete", "dev-9", 500, "cant find exactly one device with given uri"),
        ("commit", None, 400, "expect hash as string in payload"),
        ("put", {"uri": "new", "name": "n", "iot_type": "", "tags": []}, 500, "empty iot_type"),
        (
            "event",
            codec.event_payload("dev-1", "sepl_nope", "1"),
            400,
            "no matching service to 'sepl_nope' found in[sepl_get]",
        ),
        (
            "event",
            {"device_uri": "dev-1", "service_uri": "sepl_get", "value": [{"name": "data", "value": 42}]},
            400,
            "json: cannot unmarshal number into Go struct field ProtocolPart.value of type string",
        ),
        ("remove", "dev-1", 400, None),
        # what a hostile connector sends instead of strings: Go's unmarshal texts, as the real platform answers
        (
            "put",
            {"uri": "new", "name": "n", "iot_type": "lamp", "tags": 7},
            500,
            "json: cannot unmarshal number into Go struct field ConnectorDevice.tags of type []string",
        ),
        (
            "put",
            {"uri": ["x"], "name": "n", "iot_type": "lamp"},
            500,
            "json: cannot unmarshal array into Go struct field ConnectorDevice.uri of type string",
        ),
        (
            "put",
            {"uri": "new", "name": "n", "iot_type": "lamp", "tags": ["a:1", {"b": 2}]},
            500,
            "json: cannot unmarshal object into Go struct field ConnectorDevice.tags of type string",
        ),
        (
            "event",
            {"device_uri": ["dev-1"], "service_uri": "sepl_get", "value": []},
            400,
            "json: cannot unmarshal array into Go struct field Event.device_uri of type string",
        ),
        (
            "event",
            {"device_uri": "dev-1", "service_uri": "sepl_get", "value": 3},
            400,
            "json: cannot unmarshal number into Go struct field Event.value of type []model.ProtocolPart",
        ),
        (
            "event",
            {"device_uri": "dev-1", "service_uri": "sepl_get", "value": ["data"]},
            400,
            "json: cannot unmarshal string into Go struct field Event.value of type model.ProtocolPart",
        ),
        (
            "event",
            {"DEVICE_URI": "dev-1", "Service_Uri": "sepl_get", "value": [None, {"NAME": "data", "Value": None}]},
            200,
            "ok",
        ),  # Go: names match case-insensitively, null is the zero value
    ],
)
def test_platform_errors(handler: str, payload: Any, status: int, text: str | None) -> None:
    frame = codec.request_frame(handler, "tok", payload)
    [answer] = session_with("dev-1").handle(frame)
    assert (answer.status, answer.token) == (status, "tok")
    assert answer.payload == (text or f"unknown handler in request ({frame})")


@pytest.mark.parametrize(
    "frame",
    [
        '{"handler": "put", "token": ["unhashable"], "payload": {"uri": "d", "iot_type": "t"}}',
        '{"handler": {"a": 1}, "token": {"b": 2}, "payload": null}',
        '{"handler": "disconnect", "token": "t", "payload": "\\ud800"}',
        '{"handler": "commit", "token": "t", "payload": ' + "[" * 200 + "]" * 200 + "}",
    ],
)
def test_hostile_requests_get_answers_that_can_be_sent(frame: str) -> None:
    for answer in session_with("dev-1").handle(frame):
        assert answer.status in (200, 400, 500) and isinstance(answer.token, str)
        codec.platform_frame(answer.status, "response", answer.token, answer.payload).encode("utf-8")


def test_unparsable_frames_get_two_answers_and_count_towards_the_close() -> None:
    session = session_with()
    answers = session.handle("not json")
    assert [(a.status, a.token, a.payload) for a in answers] == [
        (400, "", "unable to parse request from message (not json)"),
        (400, "", "unknown handler in request (not json)"),
    ]
    assert session.consecutive_errors == 2
    session.handle(codec.request_frame("clear", "t", None))
    assert session.consecutive_errors == 0


def test_put_merges_tags_and_keeps_the_type_and_delete_removes() -> None:
    session = session_with()
    put = {"uri": "d", "name": "A", "iot_type": "lamp", "tags": ["a:1", "b:2"]}
    session.handle(codec.request_frame("put", "t", put))
    session.handle(codec.request_frame("put", "t", {**put, "name": "B", "iot_type": "other", "tags": ["a:9"]}))
    assert session.registry.devices["d"] == {"name": "B", "iot_type": "lamp", "tags": {"a": "9", "b": "2"}}
    [answer] = session.handle(codec.request_frame("delete", "t", "d"))
    assert answer.status == 200 and "d" not in session.registry.devices and "d" not in session.listening


# --- the device store (spec §10.3, parameterised) -----------------------------------------------


def test_store_keeps_order_tags_and_gid_and_takes_quotes_and_column_names_as_values(tmp_path: Path) -> None:
    path = str(tmp_path / "devices.sqlite")
    store = DeviceStore(path)
    tricky = codec.Device('say "hi"', "name", "id", {"k": 'v"'})
    store.put(codec.Device("dev-1", "lamp", "Lamp 1", {"location": "kitchen"}))
    store.put(tricky)
    store.put(codec.Device("dev-1", "lamp", "Lamp 1 renamed"))  # update keeps its place
    store.gid = "gw-1"
    store.close()
    again = DeviceStore(path)
    assert [(d.id, d.name, d.tags) for d in again.devices()] == [
        ("dev-1", "Lamp 1 renamed", {}),
        ('say "hi"', "id", {"k": 'v"'}),
    ]
    assert again.gid == "gw-1"
    again.remove("name")  # a column name is a value: removes nothing
    assert len(again.devices()) == 2
    again.remove('say "hi"')
    assert [d.id for d in again.devices()] == ["dev-1"]
    again.close()


def test_the_platform_accepts_a_known_user_and_provides_a_gateway() -> None:
    registry, users = Registry(["sepl_get"]), {"alice": Secret("pw")}
    verdict = registry.login(codec.credentials("alice", "pw", ""), users)
    assert verdict.session is not None and verdict.token == codec.LOGIN_TOKEN
    assert verdict.session.gateway.gid in registry.gateways
    wrong = registry.login(codec.credentials("alice", "nope", ""), users)
    assert wrong.session is None and wrong.refused == "wrong user or password" and not wrong.undecodable
    garbled = registry.login({"user": "alice", "pw": 7}, users)
    assert garbled.session is None and garbled.undecodable and "not a string" in str(garbled.refused)
