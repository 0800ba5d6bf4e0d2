"""Pure codec and daemon-rule tests for the TracimDaemon protocol, byte for byte against every
captured fixture in tests/fixtures/tracim (notes: docs/protocols/tracim.md).

Every daemon->client fixture is reproduced by the pure daemon state machine from the requests
of its capture scenario; every client->daemon fixture is decoded, and the compact ones are what
fieldctl's client writes. `test_every_fixture_is_exercised` fails when a fixture is added that
no case names. No sockets, no sleeps.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fieldctl.profiles import load_profile
from fieldctl.protocols.core.message import OUT
from fieldctl.protocols.tracim import codec
from fieldctl.protocols.tracim.simulator_state import FATAL_DATA, DaemonState
from tests.helpers.fixture_files import FIXTURES, load_fixture

PROFILE = "tracim"
FIXTURE_NAMES = sorted(path.stem for path in (FIXTURES / PROFILE).glob("*.json"))
MASTER = "/run/tracim/master.sock"
PROBE = "/run/tracim/probe.sock"
API_ROOT_BODY = b'{"fake": "tracim api root"}'
#: The HTTP side (daemon <-> Tracim): fieldctl does not play Tracim; the SSE bodies feed 07/14/16.
HTTP_ONLY = {"10-real-daemon-login-request", "11-real-daemon-sse-request", "12-tracim-sse-stream-open"}
#: What crosses the Unix sockets, either way: every one of these is decoded.
UNIX_FIXTURES = [
    name
    for name in FIXTURE_NAMES
    if name not in HTTP_ONLY
    and load_fixture(PROFILE, f"{name}.json")["direction"] in ("daemon->client", "client->daemon")
]


def fixture(name: str) -> dict[str, Any]:
    return load_fixture(PROFILE, f"{name}.json")


def raw(name: str) -> bytes:
    return fixture(name)["raw"].encode("utf-8")


def sse_data(name: str) -> str:
    """The text after `data:` on a Tracim SSE message, trimmed: what the daemon relays (§6)."""
    return fixture(name)["raw"].split("data:", 1)[1].strip()


@cache
def channels() -> codec.Channels:
    return codec.Channels.from_profile(load_profile(PROFILE))


def decode(data: bytes, **kwargs: Any) -> Any:
    return codec.decode(data, profile=PROFILE, channels=channels(), endpoint="client", **kwargs)


def daemon() -> DaemonState:
    return DaemonState(MASTER, "42", API_ROOT_BODY)


def sent(outbox: list, destination: str | None = None) -> list[bytes]:
    return [out.raw for out in outbox if destination is None or out.destination == destination]


# --- the daemon side: fixtures (a), the fake daemon with the Python SDK -------------------------------


def test_python_sdk_scenario_bytes() -> None:
    state = daemon()
    sdk = "/run/tracim/client.sock"
    added = state.handle(raw("01-py-sdk-client-add"))
    assert [(o.destination, o.raw) for o in added.outbox] == [
        (sdk, raw("02-daemon-account-info")),
        (sdk, raw("03-daemon-client-added")),
    ]
    _, pings = state.keepalive_tick()
    assert sent(pings) == [raw("04-daemon-ping")]
    assert sent(state.handle(raw("05-py-sdk-pong")).outbox) == [raw("06-daemon-ack-after-pong")]
    assert sent(state.tracim_event(sse_data("13-tracim-sse-message"))) == [raw("07-daemon-tracim-event")]
    assert state.handle(raw("08-py-sdk-client-delete")).outbox == [] and state.registry == []
    assert state.handle(raw("09-py-sdk-client-delete-repeat")).outbox == []  # unknown path: tolerated


# --- the daemon side: fixtures (b), the real Go daemon with a raw probe client -----------------------


def registered_as_in_capture() -> DaemonState:
    """The registry of capture (b): probe, the Python SDK, a silent client, and R whose data.path
    differs from its envelope path and whose pid is a number."""
    state = daemon()
    first = state.handle(raw("17-probe-client-add"))
    assert [(o.destination, o.raw) for o in first.outbox] == [
        (PROBE, raw("18-real-daemon-reply-to-client-add")),
        (PROBE, raw("19-real-daemon-reply-to-client-add-2")),
    ]
    for path, pid in (("/run/tracim/sdk.sock", "14695"), ("/run/tracim/quiet.sock", "202")):
        state.handle(codec.encode(path, codec.CLIENT_ADD, {"path": path, "pid": pid}))
    state.handle(
        json.dumps(
            {
                "path": "/run/tracim/r.sock",
                "type": codec.CLIENT_ADD,
                "data": {"path": "/run/tracim/r-data-path.sock", "pid": 303},
            }
        ).encode()
    )
    return state


@pytest.mark.parametrize(
    ("request_name", "reply_name"),
    [
        ("20-probe-get-clients", "21-real-daemon-reply-to-get-clients"),
        ("22-probe-get-account-info", "23-real-daemon-reply-to-get-account-info"),
        ("24-probe-ping", "25-real-daemon-reply-to-ping"),
        ("26-probe-unknown-type", "27-real-daemon-reply-to-unknown-type"),
        ("28-probe-do-request", "29-real-daemon-reply-to-do-request"),
    ],
)
def test_real_daemon_replies(request_name: str, reply_name: str) -> None:
    outbox = registered_as_in_capture().handle(raw(request_name)).outbox
    assert [(o.destination, o.raw) for o in outbox] == [(PROBE, raw(reply_name))]


def test_real_daemon_tracim_events_from_sse() -> None:
    state = registered_as_in_capture()
    assert sent(state.tracim_event(sse_data("13-tracim-sse-message")), PROBE) == [raw("14-real-daemon-tracim-event")]
    assert sent(state.tracim_event(sse_data("15-tracim-sse-message-raw-utf8")), PROBE) == [
        raw("16-real-daemon-tracim-event-raw-utf8")
    ]


def test_not_json_gets_no_reply() -> None:
    handling = registered_as_in_capture().handle(raw("30-probe-not-json"))
    assert handling.envelope is None and handling.outbox == [] and handling.problem


def test_client_deleted_broadcasts() -> None:
    state = registered_as_in_capture()
    sdk_delete = codec.encode(
        "/run/tracim/sdk.sock", codec.CLIENT_DELETE, {"pid": "14695", "path": "/run/tracim/sdk.sock"}
    )  # unsorted: Go sorts a map
    for _ in range(2):  # the Python SDK deletes twice; both are broadcast
        assert sent(state.handle(sdk_delete).outbox, PROBE) == [raw("31-real-daemon-client-deleted")]
    no_data = codec.encode("/run/tracim/nobody.sock", codec.CLIENT_DELETE)
    assert sent(state.handle(no_data).outbox, PROBE) == [raw("32-real-daemon-client-deleted-no-data")]
    assert [entry.path for entry in state.registry] == [PROBE, "/run/tracim/quiet.sock", "/run/tracim/r-data-path.sock"]


# --- the client side --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "17-probe-client-add",
        "20-probe-get-clients",
        "22-probe-get-account-info",
        "24-probe-ping",
        "26-probe-unknown-type",
        "28-probe-do-request",
        "33-go-sdk-client-add",
        "34-go-sdk-pong",
    ],
)
def test_fieldctl_client_writes_go_compact_bytes(name: str) -> None:
    parsed = fixture(name)["parsed"]
    assert codec.encode(parsed["path"], parsed["type"], parsed.get("data")) == raw(name)


@pytest.mark.parametrize("name", UNIX_FIXTURES)
def test_every_unix_fixture_decodes(name: str) -> None:
    entry = fixture(name)
    msg = decode(raw(name))
    if entry["parsed"] is None:
        assert msg.error and msg.kind == "invalid"
        return
    assert msg.error is None and msg.raw == (raw(name),)
    parsed = entry["parsed"]
    assert msg.id == parsed["path"]
    if parsed["type"] == codec.TRACIM_EVENT:
        tlm = json.loads(parsed["data"])
        assert (msg.channel, msg.kind, msg.payload) == ("tracim", tlm["event_type"], tlm)
    else:
        assert (msg.kind, msg.payload) == (parsed["type"], parsed.get("data"))
        assert msg.channel == channels().of(parsed["type"])


def test_tracim_event_payload_is_the_double_decoded_tlm() -> None:
    msg = decode(raw("07-daemon-tracim-event"))
    assert msg.payload["fields"]["workspace"]["label"] == "R&D <team>"
    assert msg.payload["fields"]["content"]["label"] == "Café notes"
    assert codec.event_text(msg) == sse_data("13-tracim-sse-message")  # byte-exact replay from a recording


def test_every_fixture_is_exercised() -> None:
    """Each fixture is decoded by test_every_unix_fixture_decodes or named by a case of this module
    (read from its source, so the answer does not depend on which tests ran before)."""
    named = set(re.findall(r'"(\d\d-[a-z0-9-]+)"', Path(__file__).read_text())) - HTTP_ONLY
    assert UNIX_FIXTURES and named
    assert set(FIXTURE_NAMES) - HTTP_ONLY - set(UNIX_FIXTURES) - named == set()


# --- Go encoding rules (§4.3) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a<b>&c", r'"a\u003cb\u003e\u0026c"'),
        ("\u2028\u2029", r'"\u2028\u2029"'),
        ("\b\f\n\r\t\x01\x7f", '"\\u0008\\u000c\\n\\r\\t\\u0001\x7f"'),
        ('q"b\\', r'"q\"b\\"'),
        ("é€😀", '"é€😀"'),
        ("\ud800", '"\ufffd"'),
    ],
)
def test_go_string_escaping(value: str, expected: str) -> None:
    assert codec.go_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (12345678901234567890, "12345678901234567000"),
        (1e21, "1e+21"),
        (0.1, "0.1"),
        (1.5e-7, "1.5e-7"),
        (-0.0, "-0"),
        (123456.789, "123456.789"),
        (3, "3"),
    ],
)
def test_go_float64_numbers(value: float, expected: str) -> None:
    assert codec.go_float(float(value)) == expected


def test_generic_data_sorts_keys_and_goes_through_float64() -> None:
    data = {"z": [1, {"b": 2.0, "a": None}], "a": True}
    assert codec.go_json(data, generic=True) == '{"a":true,"z":[1,{"a":null,"b":2}]}'
    assert codec.go_json({"z": 1, "a": 2}) == '{"z":1,"a":2}'  # structs keep their order


def test_decoding_follows_go() -> None:
    envelope = codec.parse(b'{"PATH": "/p", "Type": "daemon_ping", "extra": 1}\n')
    assert (envelope.path, envelope.type, envelope.data) == ("/p", "daemon_ping", None)
    assert codec.parse(b'{"path":"a","Path":"b"}').path == "b"  # the last matching key wins
    for bad in (b"", b"[1]", b'{"path": 5}', b'{"type":"a"}{"type":"b"}', b'{"data": NaN}', b'{"path":"/p"'):
        with pytest.raises(codec.DecodeError):
            codec.parse(bad)


# --- daemon rules that no capture shows (§4.1, §4.6, §5) --------------------------------------------


@pytest.mark.parametrize("data", [None, "x", 5, True])
def test_data_that_crashes_the_real_daemon_is_reported_not_fatal(data: Any) -> None:
    for type_ in (codec.CLIENT_ADD, codec.DO_REQUEST):
        document = json.dumps({"path": PROBE, "type": type_, **({} if data is None else {"data": data})}).encode()
        handling = daemon().handle(document)
        assert handling.fatal_on_real_daemon and handling.problem == FATAL_DATA and handling.outbox == []


def test_array_data_is_logged_without_reply() -> None:
    handling = daemon().handle(codec.encode(PROBE, codec.CLIENT_ADD, [1]))
    assert handling.outbox == [] and not handling.fatal_on_real_daemon and handling.problem


def test_reregistration_gets_only_account_info() -> None:
    state = daemon()
    state.handle(raw("17-probe-client-add"))
    again = state.handle(raw("17-probe-client-add")).outbox
    assert sent(again) == [raw("18-real-daemon-reply-to-client-add")] and len(state.registry) == 1


def test_keepalive_drops_silent_clients_without_broadcast() -> None:
    state = daemon()
    for name in ("a", "b"):
        state.handle(codec.encode(f"/s/{name}", codec.CLIENT_ADD, {"path": f"/s/{name}", "pid": "1"}))
    dropped, pings = state.keepalive_tick()
    assert dropped == [] and [o.destination for o in pings] == ["/s/a", "/s/b"]
    state.handle(codec.encode("/s/a", codec.PONG))
    dropped, pings = state.keepalive_tick()
    assert [e.path for e in dropped] == ["/s/b"] and [o.destination for o in pings] == ["/s/a"]


def test_pong_from_another_envelope_path_does_not_keep_a_client() -> None:
    state = registered_as_in_capture()
    state.keepalive_tick()
    state.handle(codec.encode("/run/tracim/r.sock", codec.PONG))
    dropped, _ = state.keepalive_tick()
    assert "/run/tracim/r-data-path.sock" in [e.path for e in dropped]


def test_ack_is_not_acked_and_delete_gets_no_reply_to_sender() -> None:
    state = registered_as_in_capture()
    assert state.handle(codec.encode(PROBE, codec.ACK)).outbox == []
    assert PROBE not in [o.destination for o in state.handle(codec.encode(PROBE, codec.CLIENT_DELETE)).outbox]


def test_no_api_root_means_no_request_result() -> None:
    assert DaemonState(MASTER).handle(raw("28-probe-do-request")).outbox == []


def test_outgoing_decoded_as_sent_to_the_peer() -> None:
    msg = decode(raw("04-daemon-ping"), direction=OUT, peer="/run/tracim/client.sock")
    assert (msg.direction, msg.id, msg.channel, msg.kind) == (
        OUT,
        "/run/tracim/client.sock",
        "keepalive",
        "daemon_ping",
    )


def test_publication_tlm_from_fields_or_whole() -> None:
    tlm = codec.build_tlm("user.modified", {"user": {"user_id": 1}}, 9, 0)
    assert tlm == {
        "event_id": 9,
        "event_type": "user.modified",
        "read": None,
        "created": "1970-01-01T00:00:00Z",
        "fields": {"user": {"user_id": 1}},
    }
    whole = codec.build_tlm("user.modified", {"event_id": 3, "fields": {}}, 9, 0)
    assert whole["event_id"] == 3 and whole["fields"] == {}
