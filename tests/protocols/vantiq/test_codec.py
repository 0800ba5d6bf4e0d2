"""The vantiq codec on every fixture: connector frames byte-equal to the real SDK's, server frames
equal as JSON with the variable fields masked, every frame decoded; plus server.config, URL
normalisation, query collection, scenario steps and data-file answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldctl.protocols.core.message import Message
from fieldctl.protocols.vantiq import answers, codec, scenario
from fieldctl.protocols.vantiq.driver import describe
from tests.helpers.fixture_files import FIXTURES

FIXTURE_FILES = sorted((FIXTURES / "vantiq").glob("*.json"))


def frames(name: str) -> list[dict]:
    return [f for f in json.loads((FIXTURES / "vantiq" / name).read_text())["frames"] if f["frame"] is not None]


def masked(frame: dict, fields: list[str]) -> dict:
    for dotted in fields:
        node = frame
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.get(part, {})
        if leaf in node:
            node[leaf] = "<masked>"
    return frame


def decode(text: str, direction: str = "in") -> Message:
    return codec.decode(text, profile="vantiq", endpoint="server", direction=direction, source="s")


# --- connector frames: the SDK's exact text ----------------------------------------------------


def test_validate_and_connect_extension_are_byte_equal() -> None:
    assert codec.encode(codec.validate("good-token")) == frames("01_validate_ok.json")[0]["frame"]
    sent = frames("02_connect_extension.json")[0]["frame"]
    secret = json.loads(sent)["parameters"]["reconnectSecret"]
    assert codec.encode(codec.connect_extension("peerSource", secret)) == sent
    for frame in frames("15_multi_source_connect.json"):
        data = json.loads(frame["frame"])
        if data["op"] == "connectExtension":
            assert (
                codec.encode(codec.connect_extension(data["resourceId"], data["parameters"]["reconnectSecret"]))
                == frame["frame"]
            )


def test_secret_is_source_prefixed_and_stable_when_fixed() -> None:
    assert codec.reconnect_secret("a", "fixed") == "a_fixed"
    generated = codec.reconnect_secret("src")
    assert generated.startswith("src_") and len(generated) == len("src_") + 36


def test_notification_and_query_responses_are_byte_equal() -> None:
    note = frames("06_notification.json")[0]["frame"]
    assert codec.encode(codec.notification("peerSource", json.loads(note)["object"])) == note
    for name, statuses in (
        ("07_query_partial_complete.json", [100, 200]),
        ("08_query_empty.json", [204]),
        ("09_query_error.json", [400]),
    ):
        query, *responses = frames(name)
        reply_to = json.loads(query["frame"])["messageHeaders"]["REPLY_ADDR_HEADER"]
        for frame, code in zip(responses, statuses, strict=True):
            body = json.loads(frame["frame"]).get("body")
            assert codec.encode(codec.query_response(reply_to, code, body)) == frame["frame"]
    error = json.loads(frames("09_query_error.json")[1]["frame"])["body"]
    assert codec.query_error(error["messageCode"], error["messageTemplate"], error["parameters"]) == error


# --- server frames: equal as JSON, variable fields masked ---------------------------------------


@pytest.mark.parametrize(
    "name,build",
    [
        ("04_configure_extension.json", lambda d: codec.configure_extension(d["resourceId"], d["object"]["config"])),
        ("05_publish.json", lambda d: codec.publish(d["resourceId"], d["object"])),
        ("10_publish_binary_frame.json", lambda d: codec.publish(d["resourceId"], d["object"])),
        ("07_query_partial_complete.json", lambda d: codec.query(d["resourceId"], d["object"], "r")),
    ],
)
def test_server_operations_match_the_fixtures(name: str, build) -> None:
    fields = ["address", "messageHeaders.REPLY_ADDR_HEADER"]
    frame = json.loads(frames(name)[0]["frame"])
    assert masked(build(frame), fields) == masked(frame, fields)


def test_server_status_frames_match_the_fixtures() -> None:
    assert codec.status(200) == json.loads(frames("03_status_before_configure.json")[0]["frame"])
    ok = json.loads(frames("01_validate_ok.json")[1]["frame"])
    assert codec.validated().keys() == ok.keys() and codec.validated()["body"]["userInfo"].keys() <= ok["body"][
        "userInfo"
    ].keys() | {"profiles"}
    refused = json.loads(frames("13_validate_failed.json")[1]["frame"])
    assert codec.refusal(401, "io.vantiq.authentication.failed", "The supplied access token is not valid") == refused
    rejected = json.loads(frames("14_connect_rejected.json")[3]["frame"])
    assert (
        codec.refusal(
            400,
            "io.vantiq.resource.not.found",
            "The source peerSource does not have an associated stream",
            ["peerSource"],
        )
        == rejected
    )
    assert codec.reconnect_required("peerSource") == json.loads(
        frames("11_reconnect_required_sequence.json")[0]["frame"]
    )
    assert codec.client_close() == json.loads(frames("12_test_close.json")[0]["frame"])


# --- decoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_fixture_frame_decodes(path: Path) -> None:
    for frame in frames(path.name):
        msg = decode(frame["frame"])
        assert msg.error is None, (frame, msg.error)
        assert msg.channel in (codec.RESPONSE, codec.STATUS) or msg.channel == json.loads(frame["frame"])["op"]


def test_decoded_fields() -> None:
    query, partial, _final = frames("07_query_partial_complete.json")
    msg = decode(query["frame"])
    assert (msg.channel, msg.kind, msg.id, msg.payload) == (
        "query",
        "peerSource",
        "9368c684-a026-4155-924a-b0c4cce6e3d7",
        {"table": "items", "chunk": 2},
    )
    response = decode(partial["frame"])
    assert (response.channel, response.id, response.payload["status"]) == ("response", msg.id, 100)
    assert decode(frames("08_query_empty.json")[1]["frame"]).payload == {"status": 204}
    configure = decode(frames("04_configure_extension.json")[0]["frame"])
    assert configure.payload == {"peerConfig": {"greeting": "hello", "rows": 3}}
    binary = codec.decode(frames("10_publish_binary_frame.json")[0]["frame"].encode(), profile="v", endpoint="server")
    assert binary.payload == {"binaryFrame": True} and binary.raw[0].startswith(b'{"op": "publish"')


def test_the_token_never_appears_in_a_decoded_message() -> None:
    msg = decode(codec.encode(codec.validate("good-token")), "out")
    assert msg.payload == {"credentials": "***"}
    assert b"good-token" not in msg.raw[0] and "good-token" not in msg.to_json()
    assert codec.credentials_of(codec.encode(codec.validate("good-token"))) == ("validate", "good-token")


@pytest.mark.parametrize(
    "text,error",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"status": "200"}', "integer status"),
        ('{"op": 7}', "op is not a string"),
        ('{"op": "configureExtension", "object": {}}', "without object.config"),
        ('{"op": "query", "resourceId": "s", "object": {}}', "REPLY_ADDR_HEADER"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_frames_become_messages_with_an_error(text, error: str) -> None:
    msg = codec.decode(text, profile="vantiq", endpoint="server")
    assert error in (msg.error or "")
    assert describe(msg)  # shown in the table, not dropped


def test_refusal_text_reads_both_error_shapes() -> None:
    listed = json.loads(frames("13_validate_failed.json")[1]["frame"])
    assert codec.refusal_text(listed) == "401 io.vantiq.authentication.failed: The supplied access token is not valid"
    single = json.loads(frames("09_query_error.json")[1]["frame"])
    assert codec.refusal_text(single).startswith(
        "400 peer.query.unsupported: Unsupported query parameter colour; allowed: ["
    )


# --- server.config and URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "given,expected",
    [
        ("http://localhost:8080", "ws://localhost:8080/api/v1/wsock/websocket"),
        ("https://dev.vantiq.com/", "wss://dev.vantiq.com/api/v1/wsock/websocket"),
        ("http://h:1/vantiq/", "ws://h:1/vantiq/api/v1/wsock/websocket"),
        ("wss://h/api/v2/wsock/websocket", "wss://h/api/v2/wsock/websocket"),
        ("http://h/prefix/api/v1/wsock/websocket", "ws://h/prefix/api/v1/wsock/websocket"),
        ("http://h/api/v1/wsock/websocket/", "ws://h/api/v1/wsock/websocket"),
        ("http://h:1/x?tok=1#f", "ws://h:1/x/api/v1/wsock/websocket?tok=1#f"),
        ("dev.vantiq.com", "wss://dev.vantiq.com/api/v1/wsock/websocket"),
        ("localhost:8080", "wss://localhost:8080/api/v1/wsock/websocket"),
        ("HTTPS://Dev.vantiq.com", "wss://Dev.vantiq.com/api/v1/wsock/websocket"),
    ],
)
def test_url_normalisation(given: str, expected: str) -> None:
    assert codec.normalize_url(given) == expected


def test_properties_as_jprops_reads_them() -> None:
    text = (
        "# comment\n! also\n  targetServer = http://h:1\nsources: a, b ,\\\n  c\nauthToken tok  \n"
        "sendPings=false\nfailOnConnectionError=false\ntcpProbePort=8123\nkey\\=x=v\\u00e9\n"
    )
    props = codec.parse_properties(text)
    assert props["targetServer"] == "http://h:1" and props["sources"] == "a, b ,c"
    assert props["authToken"] == "tok  " and props["key=x"] == "v\u00e9"
    config = codec.ServerConfig.from_properties(props)
    assert config.sources == ("a", "b", "c") and config.target_server == "ws://h:1/api/v1/wsock/websocket"
    assert config.send_pings is False and config.fail_on_connection_error is False and config.tcp_probe_port == 8123
    assert codec.ServerConfig.from_properties({"authToken": "", "sources": "a"}).token is None
    with pytest.raises(ValueError):
        codec.ServerConfig.from_properties({"tcpProbePort": "http"})


# --- queries, scenario, answers ------------------------------------------------------------------


def test_query_result_collects_until_the_first_final_frame() -> None:
    result = codec.QueryResult("s", "r")
    assert not result.add(100, [{"a": 1}, {"a": 2}]) and not result.add(100, {"a": 3})
    assert result.add(200, [{"a": 4}]) and result.rows == [{"a": i} for i in range(1, 5)] and result.ok
    empty = codec.QueryResult("s", "r")
    assert empty.add(204, {"ignored": True}) and empty.rows == [] and empty.ok
    failed = codec.QueryResult("s", "r")
    failed.add(400, [{"messageCode": "x", "messageTemplate": "t {0}", "parameters": [1]}])
    assert not failed.ok and "error 400 x: t 1" in failed.summary()
    assert scenario.check_query({"status": "error", "messageCode": "x"}, failed) == []
    assert scenario.check_query({"status": 200, "count": 4, "partials": 2}, result) == []
    assert scenario.check_query({"rows": []}, result) and scenario.check_query({"status": 204}, result)


def test_query_result_keeps_rows_from_a_bounded_number_of_bytes() -> None:
    result = codec.QueryResult("s", "r", max_bytes=100, sent_at=1.0)
    assert not result.add(100, [{"a": 1}, {"a": 2}], now=1.25, size=60)
    assert not result.add(100, [{"a": 3}], now=2.0, size=60) and result.add(200, [{"a": 4}], size=10)
    assert result.rows == [{"a": 1}, {"a": 2}] and result.count == 4 and result.rtt_s == 0.25
    assert "4 row(s)" in result.summary() and "2 past the first 100 bytes counted, not kept" in result.summary()
    assert scenario.check_query({"count": 4}, result) == [] and scenario.check_query({"rows": []}, result)


def test_scenario_steps() -> None:
    lines = [
        {"channel": "link", "kind": "bound", "ts": 1},
        {"channel": "publish", "kind": "s", "payload": {"a": 1}, "ts": 1},
        {"channel": "query", "kind": "s", "payload": {"params": {"id": 1}, "expect": {"status": 200}}, "ts": 1.5},
        {"channel": "query", "kind": "s", "payload": {"id": 2}, "ts": 1.5},
        {"channel": "response", "direction": "in", "kind": "s", "payload": {"status": 200}, "ts": 2},
        {"channel": "notification", "direction": "in", "kind": "s", "payload": {"a": 1}, "ts": 2},
    ]
    steps, skipped = scenario.steps_of([Message.from_dict(line) for line in lines])
    assert [(s.action, s.data, s.delay_s) for s in steps] == [
        ("publish", {"a": 1}, 0.0),
        ("query", {"id": 1}, 0.5),
        ("query", {"id": 2}, 0.0),
        ("notification", {"a": 1}, 0.5),
    ]
    assert steps[1].expect == {"status": 200} and skipped == 1
    assert scenario.contains({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1}}) and not scenario.contains(
        {"a": 1}, {"b": 1}
    )


def test_data_file_answers_filter_chunk_and_refuse_unknown_parameters(tmp_path: Path) -> None:
    rows = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "b"}]
    (tmp_path / "rows.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "rows.csv").write_text("id,name\n1,a\n2,b\n3,b\n")
    for path in ("rows.ndjson", "rows.csv"):
        data = answers.DataFileAnswers(str(tmp_path / path), chunk_rows=1)
        assert [status for status, _ in data.answer({"name": "b"})] == [100, 200]
        assert data.answer({"id": 2})[0][1][0]["name"] == "b"  # CSV text "2" matches the number 2
        assert data.answer({"id": 9}) == [(204, None)]
        status, error = data.answer({"colour": "red"})[0]
        assert status == 400 and error["parameters"] == ["colour", ["id", "name"]]
    assert answers.chunked([1, 2, 3], 2) == [(100, [1, 2]), (200, [3])]
    assert answers.unanswerable("s")[0][1]["parameters"] == ["s"]
