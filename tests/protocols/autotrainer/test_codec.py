"""Pure codec tests for auto-trainer-api 0.12.0, byte for byte against every captured fixture.

Every frame of every file in tests/fixtures/autotrainer is found by one walker (publications,
request/reply exchanges) and fed to the codec; `test_every_fixture_frame_is_exercised` fails when a new
fixture or a new key carries bytes that no case reads. Names and numbers come from the spec's tables
(docs/protocols/autotrainer.md), not from the profile, so a wrong profile entry shows up here.
No sockets, no sleeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from fieldctl.profiles import load_profile
from fieldctl.protocols.autotrainer import codec
from fieldctl.protocols.autotrainer.simulator_state import DeviceState, RequestEffects
from fieldctl.protocols.core.message import Message
from tests.helpers.fixture_files import FIXTURES, PROTOCOL_NOTES, frames_of, load_fixture

PROFILE = "autotrainer"
FIXTURE_DIR = FIXTURES / PROFILE
FIXTURE_NAMES = sorted(path.name for path in FIXTURE_DIR.glob("*.json"))
SPEC = PROTOCOL_NOTES / "autotrainer.md"

# spec §6.5, "Exact bytes of the unparseable reply (107 bytes, hex)"
SPEC_UNPARSEABLE_REPLY = bytes.fromhex(
    "7b226e6f6e6365223a20302c2022636f6d6d616e64223a20302c2022726573756c74223a20302c202264617461223a206e756c"
    "6c2c20226572726f724b696e64223a20302c20226572726f72436f6465223a20302c20226572726f724d657373616765223a20"
    "6e756c6c7d"
)
HEARTBEAT, EMERGENCY, EVENT, COMMAND_RESULT = 1001, 2001, 4001, 6001
EMERGENCY_KINDS = {101, 102}
VARIABLE_EVENT_KEYS = {"when", "index"}  # wall clock and perf counter: differ between runs


@cache
def vocab() -> codec.Vocabulary:
    return codec.Vocabulary.from_profile(load_profile(PROFILE))


# --- the spec's tables ---------------------------------------------------------------------------------


@cache
def spec_table(heading: str) -> dict[str, int]:
    """`| NAME | value | ...` rows of the table under one `##`/`###` heading of the spec."""
    text = SPEC.read_text()
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    rows = re.findall(r"^\|\s*([A-Za-z][A-Za-z0-9_]*)\s*\|\s*(\d+)\s*\|", text[start:end], re.MULTILINE)
    return {name: int(value) for name, value in rows}


def spec_topics() -> dict[str, int]:
    return spec_table("## 2. Publication framing")


def spec_events() -> dict[str, int]:
    return spec_table("### 5.3 ApiEventKind")


def spec_commands() -> dict[str, int]:
    return spec_table("### 6.3 ApiCommand")


def channel_name(topic: int) -> str:
    """HEARTBEAT -> heartbeat, COMMAND_RESULT -> command_result (the profile's channel names)."""
    return {value: name.lower() for name, value in spec_topics().items()}[topic]


def as_emitted(msg: Message) -> str:
    """The NDJSON line a Message is written as, apart from its clock."""
    return Message(**{**{name: getattr(msg, name) for name in Message.__slots__}, "ts": 0.0}).to_json()


def command_name(code: int) -> str:
    """GET_CONFIGURATION -> get-configuration (the profile's command names)."""
    return {value: name.lower().replace("_", "-") for name, value in spec_commands().items()}[code]


def event_name(code: int) -> str:
    return {value: name for name, value in spec_events().items()}[code]


# --- every byte-carrying part of every fixture ---------------------------------------------------------


@dataclass(frozen=True)
class Publication:
    fixture: str
    path: str
    frames: tuple[bytes, ...]

    @property
    def topic(self) -> int:
        return int.from_bytes(self.frames[0], "little")

    @property
    def body(self) -> Any:
        return json.loads(self.frames[1])


@dataclass(frozen=True)
class PublicationGroup:
    """One captured list of publications, in arrival order; `prefix` is the subscription it was seen with."""

    fixture: str
    path: str
    items: tuple[Publication, ...]
    prefix: bytes


@dataclass(frozen=True)
class Exchange:
    """One request and the reply it got (None: no reply was captured)."""

    fixture: str
    path: str
    sent: tuple[bytes, ...]  # as the client sent it; a DEALER request starts with the empty delimiter
    reply: bytes | None
    dealer: bool
    delegate_calls: tuple[dict[str, Any], ...] | None  # None: not recorded for this request
    publications: tuple[Publication, ...] | None  # None: not recorded for this request

    @property
    def request(self) -> tuple[bytes, ...]:
        """The frames the REP socket hands the device (REQ/DEALER delimiter stripped)."""
        return self.sent[1:] if self.dealer else self.sent

    @property
    def key(self) -> str:
        return f"{self.fixture}:{self.path}"


@dataclass
class FixtureBytes:
    groups: list[PublicationGroup]
    exchanges: list[Exchange]
    consumed: set[str]  # JSON paths of every frame read


REQUEST_KEYS = ("request", "first_request", "second_request")


def _frames(node: Any, path: str, consumed: set[str]) -> tuple[bytes, ...]:
    """Frames of a `{frames: [...]}` entry, a bare `{hex}` frame, or a text-only capture (bridge)."""
    if isinstance(node, str):
        consumed.add(path)
        return (node.encode("utf-8"),)
    if "frames" in node:
        consumed.update(f"{path}.frames[{i}]" for i in range(len(node["frames"])))
        return tuple(frames_of(node))
    consumed.add(path)
    return (bytes.fromhex(node["hex"]),)


def _publication(fixture: str, node: dict[str, Any], path: str, consumed: set[str]) -> Publication:
    if "frames" in node:
        return Publication(fixture, path, _frames(node, path, consumed))
    consumed.add(path)  # text-only capture: topic number and body text
    return Publication(fixture, path, (int(node["topic"]).to_bytes(4, "little"), node["body"].encode("utf-8")))


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, _join(path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


@cache
def fixture_bytes(name: str) -> FixtureBytes:
    doc = load_fixture(PROFILE, name)
    found = FixtureBytes([], [], set())
    for path, node in _walk(doc):
        if isinstance(node, list) and node and all(isinstance(item, dict) and "topic" in item for item in node):
            items = tuple(_publication(name, item, f"{path}[{i}]", found.consumed) for i, item in enumerate(node))
            prefix = EMERGENCY.to_bytes(4, "little") if "filtered_to_emergency" in path else b""
            found.groups.append(PublicationGroup(name, path, items, prefix))
        if not isinstance(node, dict):
            continue
        for key in REQUEST_KEYS:
            if key not in node:
                continue
            request, where = node[key], _join(path, key)
            beside = key == "request"  # its reply, calls and publications sit beside it; the others hold theirs
            owner, owner_path = (node, path) if beside else (request, where)
            reply_node = owner.get("reply")
            calls = node.get("delegate_calls") if beside else None
            pubs = node.get("publications") if beside else None
            reply_path = _join(owner_path, "reply")
            reply_frames = None if reply_node is None else _frames(reply_node, reply_path, found.consumed)
            found.exchanges.append(
                Exchange(
                    fixture=name,
                    path=where,
                    sent=_frames(request, where, found.consumed),
                    reply=None if reply_frames is None else _single(reply_frames),
                    dealer=False,
                    delegate_calls=None if calls is None else tuple(calls),
                    publications=None
                    if pubs is None
                    else tuple(
                        Publication(name, f"publications[{i}]", tuple(frames_of(p))) for i, p in enumerate(pubs)
                    ),
                )
            )
        if "requests" in node:  # DEALER: (empty delimiter, JSON) both ways
            for i, (request, reply) in enumerate(zip(node["requests"], node["replies"], strict=True)):
                where = f"{_join(path, 'requests')}[{i}]"
                sent = _frames(request, where, found.consumed)
                delimiter, body = _frames(reply, f"{_join(path, 'replies')}[{i}]", found.consumed)
                assert delimiter == b"", "a DEALER reply starts with the empty delimiter"
                found.exchanges.append(Exchange(name, where, sent, body, True, None, None))
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _single(frames: tuple[bytes, ...]) -> bytes:
    assert len(frames) == 1, "a REQ reply is one frame"
    return frames[0]


def all_publications() -> list[Publication]:
    return [pub for name in FIXTURE_NAMES for group in fixture_bytes(name).groups for pub in group.items]


def all_groups() -> list[PublicationGroup]:
    return [group for name in FIXTURE_NAMES for group in fixture_bytes(name).groups]


def all_exchanges() -> list[Exchange]:
    return [ex for name in FIXTURE_NAMES for ex in fixture_bytes(name).exchanges]


def replied() -> list[Exchange]:
    return [ex for ex in all_exchanges() if ex.reply is not None]


def pub_id(pub: Publication) -> str:
    return f"{pub.fixture}:{pub.path}"


def ex_id(ex: Exchange) -> str:
    return ex.key


# Fixtures that record an outcome but no bytes; each has a case of its own below.
OUTCOME_ONLY = {"event-unserializable-context.json"}


# --- 1. inventory --------------------------------------------------------------------------------------


def test_fixture_directory_is_populated() -> None:
    """An empty glob would silently parametrize every case below to nothing."""
    assert len(FIXTURE_NAMES) >= 25, FIXTURE_DIR


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_frame_is_exercised(name: str) -> None:
    """Each hex frame of each file is read by the walker, so a new fixture (or key) cannot be skipped."""
    doc = load_fixture(PROFILE, name)
    found = fixture_bytes(name)
    hex_paths = {path for path, node in _walk(doc) if isinstance(node, dict) and "hex" in node}
    assert hex_paths <= found.consumed, f"frames no case reads: {sorted(hex_paths - found.consumed)}"
    if name in OUTCOME_ONLY:
        assert not hex_paths and not found.groups and not found.exchanges
    else:
        assert found.groups or found.exchanges, "no publication or exchange found: teach the walker this file"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_frames_are_self_consistent(name: str) -> None:
    """`length` and `text` agree with `hex`, so the bytes used below are the ones the capture describes."""
    for path, node in _walk(load_fixture(PROFILE, name)):
        if isinstance(node, dict) and "hex" in node:
            data = bytes.fromhex(node["hex"])
            assert node["length"] == len(data), path
            if node.get("text") is not None:
                assert node["text"] == data.decode("utf-8"), path
            if "as_uint32_le" in node:
                assert node["as_uint32_le"] == int.from_bytes(data, "little"), path


# --- the profile's vocabulary against the spec ------------------------------------------------------------


def test_channels_are_the_spec_topics() -> None:
    """Channel name = ApiTopic name, topic frame = uint32 LE (spec §2); ANY is never a channel."""
    topics = {name.lower(): value for name, value in spec_topics().items() if name != "ANY"}
    assert vocab().channel_topic == topics
    assert {name: vocab().topic_frame(name).hex() for name in topics} == {
        "heartbeat": "e9030000",
        "emergency": "d1070000",
        "event": "a10f0000",
        "property_change": "89130000",
        "command_result": "71170000",
    }


def test_events_are_the_spec_event_kinds() -> None:
    """The complete ApiEventKind table (spec §5.3), both directions."""
    events = spec_events()
    assert len(events) > 100
    assert vocab().event_code == events
    assert vocab().event_name == {value: name for name, value in events.items()}


def test_commands_are_the_spec_commands() -> None:
    """The complete ApiCommand table (spec §6.3), named in kebab-case."""
    commands = {name.lower().replace("_", "-"): value for name, value in spec_commands().items()}
    assert len(commands) == 21
    assert vocab().command_code == commands


# --- 2. publications -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pub", all_publications(), ids=pub_id)
def test_decode_publication(pub: Publication) -> None:
    """Channel from the topic, kind named from the spec's tables, nonce as id, body parsed."""
    msg = codec.decode_publication(pub.frames, vocab())
    body = pub.body
    assert msg.error is None
    assert msg.raw == pub.frames
    assert msg.channel == channel_name(pub.topic)
    assert msg.payload == body
    if pub.topic == HEARTBEAT:
        assert (msg.kind, msg.id) == ("heartbeat", None)
    elif pub.topic == COMMAND_RESULT:
        assert (msg.kind, msg.id) == (command_name(body["command"]), body["nonce"])
    else:
        assert (msg.kind, msg.id) == (event_name(body["kind"]), None)
        assert codec.is_emergency(msg) == (body["kind"] in EMERGENCY_KINDS)


@pytest.mark.parametrize("pub", all_publications(), ids=pub_id)
def test_reencoding_the_parsed_body_reproduces_the_bytes(pub: Publication) -> None:
    """encode_publication(channel, parsed body) gives the captured frames; emergencies come as the pair."""
    encoded = codec.encode_publication(channel_name(pub.topic), pub.body, vocab())
    assert list(pub.frames) in encoded
    if pub.topic in (EMERGENCY, EVENT) and pub.body["kind"] in EMERGENCY_KINDS:
        body = pub.frames[1]
        assert encoded == [[EMERGENCY.to_bytes(4, "little"), body], [EVENT.to_bytes(4, "little"), body]]
    else:
        assert encoded == [list(pub.frames)]


@pytest.mark.parametrize("pub", all_publications(), ids=pub_id)
def test_publication_messages_are_what_decoding_their_frames_gives(pub: Publication) -> None:
    """The simulator reports a publication from the body it encoded (and recorded bytes by decoding
    them): the frames of encode_publication, and the lines decode_publication gives for them."""
    channel = channel_name(pub.topic)
    for body in (pub.body, pub.frames[1]):
        sent = codec.publication_messages(channel, body, vocab())
        assert [list(msg.raw) for msg in sent] == codec.encode_publication(channel, body, vocab())
        for msg in sent:
            decoded = codec.decode_publication(msg.raw, vocab())
            decoded.direction = "out"
            assert as_emitted(msg) == as_emitted(decoded)


def _posted(group: PublicationGroup) -> list[Publication]:
    """What the application posted: drop each EVENT copy that directly follows its EMERGENCY twin."""
    items = group.items
    return [
        pub
        for before, pub in zip((None, *items), items, strict=False)
        if not (before and (before.topic, pub.topic) == (EMERGENCY, EVENT) and before.frames[1] == pub.frames[1])
    ]


@pytest.mark.parametrize("group", all_groups(), ids=lambda g: f"{g.fixture}:{g.path}")
def test_reencoding_a_capture_reproduces_the_sequence(group: PublicationGroup) -> None:
    """Whole captured lists, in order: EMERGENCY then EVENT for emergencies, nothing else duplicated (spec §5.2)."""
    expected = [
        frames
        for pub in _posted(group)
        for frames in codec.encode_publication(channel_name(pub.topic), pub.body, vocab())
    ]
    subscribed = [frames for frames in expected if frames[0].startswith(group.prefix)]
    assert subscribed == [list(pub.frames) for pub in group.items]


@pytest.mark.parametrize("pub", all_publications(), ids=pub_id)
def test_publication_body_replays_recorded_bytes(pub: Publication) -> None:
    """A recorded message is re-published with its own bytes, whatever its shape."""
    msg = codec.decode_publication(pub.frames, vocab())
    body = codec.publication_body(msg, vocab())
    assert body == pub.frames[1]
    assert list(pub.frames) in codec.encode_publication(msg.channel, body, vocab())


INPUT_FIXTURES = [name for name in FIXTURE_NAMES if "input" in load_fixture(PROFILE, name)]


@pytest.mark.parametrize("name", INPUT_FIXTURES)
def test_build_event_from_the_senders_input(name: str) -> None:
    """build_event + encode_publication turn the application's (snake_case) input into the captured bytes."""
    fixture = load_fixture(PROFILE, name)
    given = fixture["input"]
    [pub] = fixture_bytes(name).groups[0].items
    when = pub.body["when"]  # the input gives a datetime; its epoch value is in the capture
    event = codec.build_event(given["kind"], given["context"], when=when, index=given["index"])
    assert list(event) == ["kind", "when", "index", "context"]
    assert codec.encode_publication("event", event, vocab()) == [list(pub.frames)]


@pytest.mark.parametrize(
    ("kind", "code"),
    [("trialStarted", 1301), ("emergencyStop", 101), (4242, 4242)],
)
def test_publication_body_fills_in_an_event(kind: str | int, code: int) -> None:
    """Hand-written scenario lines give a kind and a context; the body gets the code, a clock and an index."""
    context = {"sessionId": "s-1", "trialId": 3}
    msg = Message(profile=PROFILE, endpoint="events", direction="out", channel="event", kind=kind, payload=context)
    body = codec.publication_body(msg, vocab())
    assert isinstance(body, dict)
    assert list(body) == ["kind", "when", "index", "context"]
    assert (body["kind"], body["context"]) == (code, context)
    assert isinstance(body["when"], float) and isinstance(body["index"], int)


def test_publication_body_keeps_a_complete_event() -> None:
    """A payload that already is an event (integer kind) is published as given."""
    event = {"kind": 1101, "when": 1.5, "index": 7, "context": None, "repeat": 0}
    msg = Message(
        profile=PROFILE, endpoint="events", direction="out", channel="event", kind="tunnelEnter", payload=event
    )
    assert codec.publication_body(msg, vocab()) is event


@pytest.mark.parametrize(
    ("channel", "kind", "payload"),
    [("event", "noSuchKind", None), ("heartbeat", "heartbeat", ["not", "an", "object"])],
)
def test_publication_body_refuses_what_it_cannot_fill_in(channel: str, kind: str, payload: Any) -> None:
    """An unknown kind name or a non-object heartbeat is a usage error, not a silent guess."""
    msg = Message(profile=PROFILE, endpoint="events", direction="out", channel=channel, kind=kind, payload=payload)
    with pytest.raises(ValueError):
        codec.publication_body(msg, vocab())


COMMAND_RESULTS = [pub for pub in all_publications() if pub.topic == COMMAND_RESULT]


@pytest.mark.parametrize("pub", COMMAND_RESULTS, ids=pub_id)
def test_encode_command_result_reproduces_the_body(pub: Publication) -> None:
    """COMMAND_RESULT has its own key order and no errorKind (spec §6.7)."""
    body = pub.body
    assert list(body) == list(codec.RESULT_KEYS)
    assert (
        codec.encode_command_result(
            body["nonce"], body["command"], body["result"], body["data"], body["errorCode"], body["errorMessage"]
        )
        == pub.frames[1]
    )


def test_command_results_are_captured() -> None:
    """The async fixture must keep providing a COMMAND_RESULT, or the case above tests nothing."""
    assert COMMAND_RESULTS


def test_unencodable_context_is_refused_by_the_codec() -> None:
    """event-unserializable-context: the real device's thread dies on a set; the codec raises at once instead."""
    assert load_fixture(PROFILE, "event-unserializable-context.json")["results"][0][
        "service_thread_exception"
    ].startswith("TypeError")
    with pytest.raises(TypeError):
        codec.encode_publication("event", codec.build_event(1301, {"trialIds": {1, 2}}, when=0.0, index=0), vocab())


# --- 3. lenient decoding of odd publications -----------------------------------------------------------

EVENT_TOPIC = EVENT.to_bytes(4, "little")
GOOD_BODY = b'{"kind": 1101, "when": 1.5, "index": 1, "context": null}'


@pytest.mark.parametrize(
    ("frames", "channel", "kind"),
    [
        ((b"\x61\x1e\x00\x00", GOOD_BODY), "7777", "tunnelEnter"),  # unknown topic: its number is kept
        ((EVENT_TOPIC, b'{"kind": 4242, "when": 1.5, "index": 1, "context": null}'), "event", 4242),
        ((COMMAND_RESULT.to_bytes(4, "little"), b'{"result": 0, "command": 4242, "nonce": 5}'), "command_result", 4242),
    ],
)
def test_unknown_values_are_kept(frames: tuple[bytes, ...], channel: str, kind: str | int) -> None:
    """Consumers must accept unknown topics and kinds (spec 'What a compatible tool must do')."""
    msg = codec.decode_publication(frames, vocab())
    assert (msg.error, msg.channel, msg.kind, msg.raw) == (None, channel, kind, frames)


@pytest.mark.parametrize(
    "frames",
    [
        (),
        (EVENT_TOPIC,),
        (EVENT_TOPIC, GOOD_BODY, b"extra"),
        (b"\xa1\x0f\x00", GOOD_BODY),  # 3-byte topic
        (b"\xa1\x0f\x00\x00\x00", GOOD_BODY),  # 5-byte topic
        (EVENT_TOPIC, b"not json"),
        (EVENT_TOPIC, b'{"kind": 1101'),
        (EVENT_TOPIC, b"\xff\xfe\x00"),  # not UTF-8
        (EVENT_TOPIC, b"[1, 2]"),
        (EVENT_TOPIC, b'"text"'),
        (EVENT_TOPIC, b"42"),
        (EVENT_TOPIC, b'{"when": 1.5}'),  # an event without a kind
    ],
    ids=[
        "no-frames",
        "one-frame",
        "three-frames",
        "3-byte-topic",
        "5-byte-topic",
        "not-json",
        "truncated",
        "not-utf8",
        "array",
        "string",
        "number",
        "no-kind",
    ],
)
def test_malformed_publication_becomes_an_error_message(frames: tuple[bytes, ...]) -> None:
    """A listener must survive anything on the wire: error set, raw bytes kept, no exception."""
    msg = codec.decode_publication(frames, vocab())
    assert msg.error
    assert msg.raw == frames


# --- 4. requests ---------------------------------------------------------------------------------------


def _client_request(ex: Exchange) -> dict[str, Any] | None:
    """The parsed request if it is what a well-behaved client sends (an object with command and nonce)."""
    try:
        body = json.loads(ex.request[0])
    except ValueError:
        return None
    return body if isinstance(body, dict) and {"command", "nonce"} <= body.keys() else None


CLIENT_REQUESTS = [ex for ex in all_exchanges() if _client_request(ex) is not None]
# Requests no client of ours would send (they probe the device's handling), by fixture.
HAND_MADE_REQUESTS = {"command-unparseable.json", "command-missing-command-key.json", "command-sync-no-nonce.json"}


def test_hand_made_requests_are_only_the_probes() -> None:
    """Every other captured request must go through the encode case below."""
    assert {ex.fixture for ex in all_exchanges() if _client_request(ex) is None} == HAND_MADE_REQUESTS


@pytest.mark.parametrize("ex", CLIENT_REQUESTS, ids=ex_id)
def test_encode_request_reproduces_the_client_bytes(ex: Exchange) -> None:
    """Key order command, customCommand, nonce, data and json's separators, as the capture's client sent."""
    body = _client_request(ex)
    assert body is not None
    encoded = codec.encode_request(
        body["command"],
        body["nonce"],
        body.get("data"),
        custom_command=body.get("customCommand"),
        with_data="data" in body,
    )
    assert encoded == ex.request[0]
    assert ex.sent[:1] == ((b"",) if ex.dealer else (encoded,))


@pytest.mark.parametrize("ex", CLIENT_REQUESTS, ids=ex_id)
def test_request_message_is_what_decoding_its_frame_gives(ex: Exchange) -> None:
    """The client reports its request from the body it encoded: the same line as decode_request's."""
    body = _client_request(ex)
    assert body is not None
    msg = codec.request_message(
        codec.request_body(
            body["command"],
            body["nonce"],
            body.get("data"),
            custom_command=body.get("customCommand"),
            with_data="data" in body,
        ),
        vocab(),
    )
    assert msg.raw == ex.request[:1]  # (a multipart capture adds frames by hand)
    assert as_emitted(msg) == as_emitted(codec.decode_request(msg.raw, vocab()))


@pytest.mark.parametrize("ex", all_exchanges(), ids=ex_id)
def test_decode_request(ex: Exchange) -> None:
    """Shown as sent: command named, nonce as id; more than one frame or non-JSON is an error, not a crash."""
    msg = codec.decode_request(ex.request, vocab())
    assert msg.raw == ex.request
    if len(ex.request) != 1:
        assert msg.error == f"expected 1 frame, got {len(ex.request)}"
        return
    try:
        body = json.loads(ex.request[0])
    except ValueError:
        assert msg.error is not None and msg.error.startswith("not JSON")
        return
    assert (msg.error, msg.payload, msg.id) == (None, body, body.get("nonce"))
    if "command" in body:
        code = body["command"]
        assert msg.kind == (command_name(code) if code in spec_commands().values() else code)


def _is_rejected(ex: Exchange) -> bool:
    """The device rejects a request exactly when it answers with the unparseable reply."""
    return ex.reply == SPEC_UNPARSEABLE_REPLY


@pytest.mark.parametrize("ex", replied(), ids=ex_id)
def test_parse_request_is_what_the_device_saw(ex: Exchange) -> None:
    """Device side: None where the device rejected the request, else the reply's command and nonce and,
    where recorded, exactly the delegate's arguments (snake_case data keys, mangled strings)."""
    seen = codec.parse_request(ex.request, set(vocab().command_code.values()))
    if _is_rejected(ex):
        assert seen is None
        return
    reply = json.loads(ex.reply or b"")
    assert seen is not None
    assert (seen.command, seen.nonce) == (reply["command"], reply["nonce"])
    if ex.delegate_calls:
        [call] = ex.delegate_calls
        assert {
            "command": seen.command,
            "custom_command": seen.custom_command,
            "nonce": seen.nonce,
            "data": seen.data,
        } == call


def test_rejected_requests_are_the_probes() -> None:
    """command-unparseable, -missing-command-key and -none are rejected; nothing else is."""
    assert {ex.fixture for ex in replied() if _is_rejected(ex)} == {
        "command-unparseable.json",
        "command-missing-command-key.json",
        "command-none.json",
    }


def test_delegate_saw_mangled_snake_case_data() -> None:
    """command-unknown-value: 4242 becomes USER_DEFINED; the data's keys and strings are rewritten."""
    [ex] = fixture_bytes("command-unknown-value.json").exchanges
    seen = codec.parse_request(ex.request, set(vocab().command_code.values()))
    assert seen == codec.DeviceRequest(
        command=99999,
        nonce=9,
        custom_command=7,
        data={"animal_name": "_mouse_a", "note": "_hello_world", "plain_value": "abc"},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"command": 400.0, "nonce": 1}', (400, 1, -1, None)),  # an equal float is the member
        (b'{"command": true, "nonce": 1}', (99999, 1, -1, None)),
        (b'{"command": "400", "nonce": 1}', (99999, 1, -1, None)),
        (b'{"command": null, "nonce": 1}', (99999, 1, -1, None)),
        (b'{"command": 300}', (300, 0, -1, None)),  # nonce absent: 0
        (b'{"command": 300, "nonce": -1, "customCommand": -1, "data": null}', (300, -1, -1, None)),  # C# client
        (b'{"command": 99999, "nonce": 2, "custom_command": 5, "data": [1]}', (99999, 2, 5, [1])),
        (b'{\n  "command": 120,\n  "nonce": 3,\n  "data": {"mode": 100}\n}', (120, 3, -1, {"mode": 100})),
        (b'{"command": 400, "nonce": 1, "extra": 1}', (400, 1, -1, None)),  # other keys ignored
        (b'{"command": false, "nonce": 1}', None),  # equals 0 (NONE)
        (b'{"command": [400], "nonce": 1}', None),
        (b'{"command": {}, "nonce": 1}', None),
        (b'{"Command": 400, "nonce": 1}', None),  # becomes "_command"
        (b'{"COMMAND":400}', None),  # all upper-case text is left alone: no "command" key
        (b'{"command": 1E5, "nonce": 1}', None),  # the upper-case exponent breaks the JSON
        (b'[{"command": 400}]', None),
        (b'"command"', None),
        (b"400", None),
        (b'{"command": 400, "nonce": 1, "data": "\xff"}', None),  # not UTF-8
    ],
)
def test_parse_request_value_handling(text: bytes, expected: tuple[int, Any, Any, Any] | None) -> None:
    """The `command` value table of spec §6.2, beyond what the fixtures show."""
    seen = codec.parse_request([text], set(vocab().command_code.values()))
    got = None if seen is None else (seen.command, seen.nonce, seen.custom_command, seen.data)
    assert got == expected


# --- 5. replies ----------------------------------------------------------------------------------------

SERIALIZATION_FALLBACK = "command-serialization-fallback.json"


def _reply_cases() -> list[Any]:
    return [
        pytest.param(
            ex,
            id=ex.key,
            marks=pytest.mark.xfail(
                strict=True, reason="encode_reply cannot express errorKind 1 (SYSTEM_ERROR, spec §6.5 fallback)"
            ),
        )
        if ex.fixture == SERIALIZATION_FALLBACK
        else pytest.param(ex, id=ex.key)
        for ex in replied()
    ]


@pytest.mark.parametrize("ex", _reply_cases())
def test_encode_reply_reproduces_the_reply(ex: Exchange) -> None:
    """The fixture reply's values, with errorKind left to encode_reply (2 iff errorCode != 0)."""
    body = json.loads(ex.reply or b"")
    assert list(body) == list(codec.REPLY_KEYS)
    assert (
        codec.encode_reply(
            body["nonce"], body["command"], body["result"], body["data"], body["errorCode"], body["errorMessage"]
        )
        == ex.reply
    )


def test_unparseable_reply_is_the_spec_bytes() -> None:
    """The 107 bytes of spec §6.5, also what three fixtures received."""
    assert len(SPEC_UNPARSEABLE_REPLY) == 107
    assert codec.encode_reply(0, codec.NONE_COMMAND, codec.UNRECOGNIZED) == SPEC_UNPARSEABLE_REPLY


@pytest.mark.parametrize("ex", replied(), ids=ex_id)
def test_decode_reply(ex: Exchange) -> None:
    """Command named (99999 as user-defined, 0 as none), nonce as id, body parsed, no error."""
    body = json.loads(ex.reply or b"")
    msg = codec.decode_reply([ex.reply or b""], vocab())
    assert (msg.error, msg.channel, msg.kind, msg.id, msg.payload) == (
        None,
        codec.REPLY,
        command_name(body["command"]),
        body["nonce"],
        body,
    )


@pytest.mark.parametrize("ex", replied(), ids=ex_id)
def test_is_service_rejection(ex: Exchange) -> None:
    """Only the unparseable reply counts; a reply with nonce 0 for a real command (no-nonce) does not."""
    assert codec.is_service_rejection(json.loads(ex.reply or b"")) == _is_rejected(ex)


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        ((), "expected 1 frame, got 0"),
        ((b"", SPEC_UNPARSEABLE_REPLY), "expected 1 frame, got 2"),
        ((b"not json",), "not JSON"),
        ((b"[1]",), "expected a JSON object, got list"),
        ((b'{"nonce": 1, "command": 300}',), "reply without a result"),
    ],
)
def test_decode_reply_malformed(frames: tuple[bytes, ...], error: str) -> None:
    """A broken reply is reported with its raw bytes, never raised."""
    msg = codec.decode_reply(frames, vocab())
    assert msg.error is not None and msg.error.startswith(error)
    assert msg.raw == frames


# --- 6. the simulated device against the fixtures --------------------------------------------------------

ASYNC_COMMANDS = (120,)  # SET_APPLICATION_MODE, as in the profile and the async fixture


def configuration() -> dict[str, Any]:
    """The capture delegate's GET_CONFIGURATION data."""
    return load_fixture(PROFILE, "command-sync-get-configuration.json")["reply"]["parsed"]["data"]


def new_device() -> DeviceState:
    return DeviceState(vocab(), configuration(), ASYNC_COMMANDS)


# How DeviceState must answer each captured exchange whose delegate follows the simulator's rules:
#   exact: reply bytes equal; async: exact 201 reply, the publications come later;
#   except-data: equal apart from `data` (the capture's delegate echoed its input there).
# `stopped`: the device is in emergency stop first (the capture's delegate was).
DEVICE_CASES: dict[str, tuple[str, bool]] = {
    "command-async-pending-with-notification.json:request": ("async", False),
    "command-dealer-pipelined.json:requests[0]": ("exact", False),
    "command-dealer-pipelined.json:requests[1]": ("exact", False),
    "command-dealer-pipelined.json:requests[2]": ("exact", False),
    "command-emergency-stop.json:request": ("exact", False),
    "command-failed-with-error-code.json:preceding_call_that_succeeded.request": ("exact", True),
    "command-failed-with-error-code.json:request": ("exact", False),
    "command-missing-command-key.json:request": ("exact", False),
    "command-none.json:request": ("exact", False),
    "command-unparseable.json:request": ("exact", False),
    "command-req-relaxed-correlate.json:second_request": ("exact", False),
    "command-timeout-recovery.json:second_request": ("exact", False),
    "command-sync-get-configuration.json:request": ("exact", False),
    "command-sync-no-nonce.json:request": ("exact", False),
    "command-unknown-value.json:request": ("except-data", False),
}
# Captured replies that depend on a delegate unlike the simulator's.
DELEGATE_DIFFERS = {
    "command-delegate-raises.json:request": "the capture's delegate raised",
    "command-no-delegate.json:request": "no delegate was registered",
    "command-serialization-fallback.json:request": "the capture's delegate returned unencodable data",
    "bridge-socketio.json:steps[1].request": "the Socket.IO bridge answered",
    "bridge-socketio.json:steps[2].request": "the Socket.IO bridge answered",
    "bridge-socketio.json:steps[3].request": "the Socket.IO bridge answered",
}


def test_every_reply_is_classified_for_the_device() -> None:
    """A new captured reply must be compared with the simulator or explicitly declared different."""
    assert {ex.key for ex in replied()} == DEVICE_CASES.keys() | DELEGATE_DIFFERS.keys()


def reported_as_decoded(handling: RequestEffects) -> None:
    """The simulator reports what it sends from the bodies it encoded: the same lines as decoding
    the frames would give (a reply that fails the client's checks included)."""
    assert as_emitted(handling.reply) == as_emitted(codec.decode_reply(handling.reply.raw, vocab(), direction="out"))
    for msg in handling.publish + handling.later:
        decoded = codec.decode_publication(msg.raw, vocab())
        decoded.direction = "out"
        assert as_emitted(msg) == as_emitted(decoded)


def _same_publication(got: tuple[bytes, ...], want: tuple[bytes, ...]) -> None:
    """Topic and body equal, except an event's clock and counter (which differ between runs)."""
    assert got[0] == want[0]
    body, expected = json.loads(got[1]), json.loads(want[1])
    if "when" in expected:
        assert list(body) == list(expected)
        assert {k: v for k, v in body.items() if k not in VARIABLE_EVENT_KEYS} == {
            k: v for k, v in expected.items() if k not in VARIABLE_EVENT_KEYS
        }
    else:
        assert got[1] == want[1]


@pytest.mark.parametrize("key", sorted(DEVICE_CASES))
def test_device_answers_like_the_capture(key: str) -> None:
    """DeviceState.handle on the captured request frames gives the captured reply (and publications)."""
    [ex] = [ex for ex in replied() if ex.key == key]
    mode, stopped = DEVICE_CASES[key]
    device = new_device()
    if stopped:
        device.handle([codec.encode_request(200, 99)])
    handling = device.handle(ex.request)
    reported_as_decoded(handling)
    [reply] = handling.reply.raw
    if mode == "except-data":
        got, want = json.loads(reply), json.loads(ex.reply or b"")
        assert list(got) == list(want)
        assert {k: v for k, v in got.items() if k != "data"} == {k: v for k, v in want.items() if k != "data"}
    else:
        assert reply == ex.reply
    if ex.publications is not None:
        sent = handling.later if mode == "async" else handling.publish
        assert (handling.publish if mode == "async" else handling.later) == []
        assert len(sent) == len(ex.publications)
        for got, want in zip(sent, ex.publications, strict=True):
            _same_publication(got.raw, want.frames)


def test_async_command_result_is_byte_identical() -> None:
    """The delayed COMMAND_RESULT is exactly the capture's, and follows the applicationModeChanged event."""
    [ex] = fixture_bytes("command-async-pending-with-notification.json").exchanges
    assert ex.publications is not None
    handling = new_device().handle(ex.request)
    assert [msg.kind for msg in handling.later] == ["applicationModeChanged", "set-application-mode"]
    assert handling.later[-1].raw == ex.publications[-1].frames


def test_emergency_stop_publishes_the_pair() -> None:
    """EMERGENCY then EVENT, byte-identical bodies, as the capture (spec §5.2)."""
    [ex] = fixture_bytes("command-emergency-stop.json").exchanges
    handling: RequestEffects = new_device().handle(ex.request)
    assert [msg.raw[0] for msg in handling.publish] == [EMERGENCY.to_bytes(4, "little"), EVENT.to_bytes(4, "little")]
    assert handling.publish[0].raw[1] == handling.publish[1].raw[1]
    reported_as_decoded(handling)


def test_multi_frame_request_is_answered_unparseable() -> None:
    """Documented deviation: the real device's service thread dies (spec §9); the simulator answers instead."""
    [ex] = fixture_bytes("command-multipart-request.json").exchanges
    assert len(ex.request) == 2 and ex.reply is None
    handling = new_device().handle(ex.request)
    assert handling.reply.raw == (SPEC_UNPARSEABLE_REPLY,)
    assert (handling.publish, handling.later, handling.request) == ([], [], None)
    reported_as_decoded(handling)


@pytest.mark.parametrize(
    "body",
    [
        b'{"command": 400, "nonce": {"a": [1]}}',
        b'{"command": 300, "nonce": [1]}',
        b'{"command": 300, "nonce": NaN}',
        b'{"command": 120, "nonce": "x", "data": {"mode": 100}}',
        b'{"command": 1070, "nonce": 1.5, "data": {"enabled": true}}',
        b'{"command": 200, "nonce": 123456789012345678901234567890}',
        b'{"command": 4242, "nonce": null}',
        b"[1]",
    ],
)
def test_odd_requests_are_reported_as_decoded(body: bytes) -> None:
    reported_as_decoded(new_device().handle([body]))


def test_device_resume_then_resume_again() -> None:
    """command-failed-with-error-code as a sequence: resume after a stop succeeds, a second resume fails."""
    fixture = load_fixture(PROFILE, "command-failed-with-error-code.json")
    device = new_device()
    device.handle([codec.encode_request(200, 1)])
    for step in (fixture["preceding_call_that_succeeded"], fixture):
        assert device.handle(frames_of(step["request"])).reply.raw == (
            bytes.fromhex(step["reply"]["frames"][0]["hex"]),
        )
