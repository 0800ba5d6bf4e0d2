"""Bounded decoding of TracimDaemon documents: nesting depth, numbers outside float64 (and Python's
4300-digit int limit), wrong-typed or unhashable values where Go expects a string. Every decoder
returns a malformed Message or raises the codec's DecodeError, never anything else, within the
fuzzing time budget; the daemon rules never raise on any document. Pure: no sockets."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.profiles import load_profile
from fieldctl.protocols.tracim import codec
from fieldctl.protocols.tracim.simulator_state import DaemonState
from tests.helpers.fuzzing import contained

MASTER = "/run/tracim/master.sock"
TYPES = [
    codec.CLIENT_ADD,
    codec.CLIENT_DELETE,
    codec.GET_CLIENTS,
    codec.GET_ACCOUNT_INFO,
    codec.DO_REQUEST,
    codec.ACK,
    codec.PING,
    codec.PONG,
    codec.TRACIM_EVENT,
    codec.CLIENT_ADDED,
    "foo",
    "",
]


@cache
def channels() -> codec.Channels:
    return codec.Channels.from_profile(load_profile("tracim"))


def decode(raw: bytes) -> Any:
    return codec.decode(raw, profile="tracim", channels=channels(), endpoint="client")


def nested(depth: int, inner: str = "1") -> str:
    return '{"a":[' * depth + inner + "]}" * depth


# --- each limit, with the error text the daemon would log ---------------------------------------------


@pytest.mark.parametrize("text", [nested(40), "[" * 100_000, '{"path":"/p","type":"x","data":' + "[" * 5000])
def test_deep_nesting_is_malformed(text: str) -> None:
    with pytest.raises(codec.DecodeError, match="exceeded max depth"):
        codec.parse(text.encode())
    msg = decode(text.encode())
    assert msg.kind == "invalid" and "exceeded max depth" in msg.error


def test_nesting_within_the_limit_decodes() -> None:
    data = json.loads(nested(30))
    assert codec.parse(json.dumps({"path": "/p", "type": "x", "data": data}).encode()).data == data


def test_deep_tlm_inside_a_tracim_event_is_malformed() -> None:
    deep = json.dumps(
        {"path": MASTER, "type": codec.TRACIM_EVENT, "data": '{"event_type":"x","f":' + nested(100) + "}"}
    )
    msg = decode(deep.encode())
    assert msg.channel == "tracim" and "exceeded max depth" in msg.error


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 400, "1e400", "-1.5e309", "9" * 309])
def test_numbers_outside_float64_are_malformed_as_in_go(number: str) -> None:
    raw = ('{"path":"/p","type":"daemon_client_delete","data":{"n":' + number + "}}").encode()
    with pytest.raises(codec.DecodeError, match=r"cannot unmarshal number .* into Go value of type float64"):
        codec.parse(raw)
    assert len(decode(raw).error) < 200  # the text shows the start of the number, not 5000 digits


def test_numbers_in_range_stay_exact_and_reencode_through_float64() -> None:
    envelope = codec.parse(b'{"path":"/p","type":"daemon_client_delete","data":{"n":12345678901234567890,"f":1.5}}')
    assert envelope.data == {"n": 12345678901234567890, "f": 1.5}
    state = DaemonState(MASTER)
    state.handle(b'{"path":"/p","type":"daemon_client_add","data":{"path":"/p","pid":"1"}}')
    handling = state.handle(b'{"path":"/q","type":"daemon_client_delete","data":{"n":' + b"9" * 308 + b"}}")
    assert handling.problem is None
    assert handling.outbox[0].raw.endswith(b'"data":{"n":1e+308}}')  # through float64, Go's e form


@pytest.mark.parametrize(
    "value, kind", [([1], "array"), ({"a": 1}, "object"), (1, "number"), (True, "bool"), (None, "null")]
)
def test_non_string_path_or_type_reads_like_go(value: Any, kind: str) -> None:
    for key in ("path", "Type"):
        with pytest.raises(codec.DecodeError) as caught:
            codec.parse(json.dumps({"path": "/p", "type": "x", key: value}).encode())
        assert (
            str(caught.value)
            == f"json: cannot unmarshal {kind} into Go struct field DaemonEvent.{key.lower()} of type string"
        )


def test_tracim_event_with_object_data_names_the_json_kind() -> None:
    msg = decode(json.dumps({"path": MASTER, "type": codec.TRACIM_EVENT, "data": {"event_type": "x"}}).encode())
    assert msg.error == "daemon_tracim_event data must be the TLM as a JSON string, got object"


@pytest.mark.parametrize("tlm", ['{"event_type": ["a"]}', '{"event_type": {"a": 1}}', "[1]", "NaN", "1e999"])
def test_tlm_with_wrong_types_is_malformed(tlm: str) -> None:
    msg = decode(json.dumps({"path": MASTER, "type": codec.TRACIM_EVENT, "data": tlm}).encode())
    assert msg.error and msg.channel == "tracim"


def test_lone_surrogate_escapes_become_u_fffd_as_in_go() -> None:
    envelope = codec.parse(rb'{"path":"\ud800x","type":"a","data":{"\uDC00":["\ud83d\ude00"]}}')
    assert envelope == codec.Envelope("\ufffdx", "a", {"\ufffd": ["\U0001f600"]})


def test_registration_with_unhashable_or_numeric_fields_is_kept_as_go_would() -> None:
    state = DaemonState(MASTER)
    handling = state.handle(
        json.dumps({"path": "/p", "type": codec.CLIENT_ADD, "data": {"path": {"x": [1]}, "pid": [2]}}).encode()
    )
    assert handling.problem is None and [(e.path, e.pid) for e in state.registry] == [("", "")]


# --- fuzzing: every decoder, any input ----------------------------------------------------------------

SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)
KEYS = st.sampled_from(["path", "type", "data", "PATH", "Type", "pid", "event_type", "fields"]) | st.text(max_size=6)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=16
)
TLM_TEXT = st.one_of(
    st.builds(
        lambda event_type, fields: json.dumps({"event_id": 1, "event_type": event_type, "fields": fields}),
        st.text(max_size=20) | VALUES,
        VALUES,
    ),
    VALUES.map(json.dumps),
    st.text(alphabet='[]{}",:\\ 0e9-.aNI', max_size=300),
)
ENVELOPES = st.builds(
    lambda path, type_, data: json.dumps({"path": path, "type": type_, "data": data}),
    st.text(max_size=20) | VALUES,
    st.sampled_from(TYPES) | VALUES,
    VALUES | TLM_TEXT,
)
HOSTILE_TEXT = st.one_of(
    st.builds(
        lambda n, opener, inner: opener * n + inner + ("]" if opener == "[" else "}") * n,
        st.integers(0, 3000),
        st.sampled_from(["[", '{"a":']),
        VALUES.map(json.dumps),
    ),
    st.builds(
        lambda digits, exponent: '{"path":"/p","type":"daemon_client_delete","data":[' + digits + exponent + "]}",
        st.text(alphabet="0123456789", min_size=1, max_size=6000),
        st.sampled_from(["", "e400", ".5", "e-400"]),
    ),
    st.text(alphabet='[]{}",:\\ 0e9-.aNIpthy', max_size=500),
)
DOCUMENTS = st.one_of(
    st.binary(max_size=600),
    ENVELOPES.map(str.encode),
    HOSTILE_TEXT.map(str.encode),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@pytest.mark.fuzz
@given(DOCUMENTS)
def test_parse_fuzz(raw: bytes) -> None:
    contained(codec.parse, raw, allowed=(codec.DecodeError,))


@pytest.mark.fuzz
@given(VALUES | TLM_TEXT | HOSTILE_TEXT)
def test_parse_tlm_fuzz(data: Any) -> None:
    contained(codec.parse_tlm, data, allowed=(codec.DecodeError,))


@pytest.mark.fuzz
@given(DOCUMENTS)
def test_decode_fuzz(raw: bytes) -> None:
    msg = contained(decode, raw)
    assert msg is not None and (msg.error is None or msg.kind is not None)
    assert "\n" not in msg.to_json()
    msg.to_json().encode("utf-8")  # strict UTF-8: no lone surrogate survives decoding


@pytest.mark.fuzz
@given(st.lists(DOCUMENTS, min_size=1, max_size=4))
def test_daemon_rules_fuzz(documents: list[bytes]) -> None:
    """The simulator's whole reaction to a client: the dispatch, registry and re-encoded broadcasts."""
    state = DaemonState(MASTER, api_root_body=b"{}")
    state.handle(b'{"path":"/a","type":"daemon_client_add","data":{"path":"/a","pid":"1"}}')
    for raw in documents:
        handling = contained(state.handle, raw)
        assert handling is not None
        for outgoing in handling.outbox:
            assert codec.parse(outgoing.raw).path == MASTER  # what we send decodes, within the limits
    contained(state.keepalive_tick)


@pytest.mark.fuzz
@given(ENVELOPES.map(str.encode) | DOCUMENTS)
def test_describe_fuzz(raw: bytes) -> None:
    """The table's summary of whatever decoded."""
    from fieldctl.protocols.tracim.client import describe

    contained(describe, decode(raw))


def test_a_hostile_daemon_config_file_is_ignored(tmp_path: Any) -> None:
    """config.json (§1.1) read within the same limits: too deep, NaN or huge is no socket_path."""
    from fieldctl.protocols.tracim.paths import configured_socket_path

    (tmp_path / "TracimDaemon").mkdir()
    config = tmp_path / "TracimDaemon" / "config.json"
    for text in ("[" * 100_000, '{"socket_path": ' + "9" * 5000 + "}", "x" * (2 << 20)):
        config.write_text(text)
        assert configured_socket_path(str(tmp_path)) is None
    config.write_text('{"Socket_Path": "/run/m.sock", "n": NaN}')
    assert configured_socket_path(str(tmp_path)) == "/run/m.sock"


def test_a_broadcast_is_encoded_once_for_all_clients() -> None:
    """A big re-broadcast (read-to-EOF mode allows 16 MiB) costs its size once, not once per client."""
    state = DaemonState(MASTER)
    for n in range(5):
        state.handle(
            json.dumps({"path": f"/c{n}", "type": codec.CLIENT_ADD, "data": {"path": f"/c{n}", "pid": "1"}}).encode()
        )
    handling = state.handle(
        json.dumps({"path": "/x", "type": codec.CLIENT_DELETE, "data": {"blob": "b" * 100_000}}).encode()
    )
    assert len(handling.outbox) == 5 and len({id(out.raw) for out in handling.outbox}) == 1
