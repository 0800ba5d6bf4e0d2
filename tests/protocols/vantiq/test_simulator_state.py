"""The simulated Vantiq server's rules without sockets: frames in (decoded Messages, time as an
argument), actions out."""

from __future__ import annotations

import pytest

from fieldctl.protocols.core.errors import RemoteFailure
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.vantiq import codec
from fieldctl.protocols.vantiq import simulator_state as rules


def frame_in(frame: dict, source: str = "") -> Message:
    return codec.decode(codec.encode(frame), profile="vantiq", endpoint="server", source=source)


def sent(actions: list) -> list[dict]:
    return [action.frame for action in actions if isinstance(action, rules.Send)]


def warnings(actions: list) -> list[str]:
    return [action.text for action in actions if isinstance(action, rules.Warn)]


def server(**kwargs) -> rules.Server:
    return rules.Server({"pump": {"rate": 2}}, {"good"}, **kwargs)


def configured(srv: rules.Server, secret: str = "pump_1") -> rules.Peer:
    peer = srv.open()
    srv.authenticate(peer, codec.VALIDATE, "good")
    srv.receive(peer, frame_in(codec.connect_extension("pump", secret)), 0.0)
    return peer


def test_a_valid_token_is_answered_with_the_user_info() -> None:
    srv = server()
    peer = srv.open()
    assert sent(srv.authenticate(peer, codec.VALIDATE, "good")) == [codec.validated()]
    assert peer.authenticated


@pytest.mark.parametrize(
    "op, token, why",
    [
        (codec.VALIDATE, "bad", "not valid"),
        (codec.VALIDATE, ["good"], "not valid"),  # not hashable: a TypeError dropped the connection
        (codec.VALIDATE, {"token": "good"}, "not valid"),
        (codec.AUTHENTICATE, {"user": "u"}, "not simulated"),
        (codec.NOTIFICATION, None, "must authenticate"),
    ],
)
def test_refusals_say_why_and_warn_once_per_connection(op: str, token: object, why: str) -> None:
    srv = server()
    peer = srv.open()
    first, second = srv.authenticate(peer, op, token), srv.authenticate(peer, op, token)
    assert [frame["status"] for frame in sent(first)] == [codec.AUTH_REFUSED]
    assert why in sent(first)[0]["body"][0]["message"]
    assert len(warnings(first)) == 1 and warnings(second) == []
    assert not peer.authenticated and peer.refused == 2


def test_any_token_goes_when_none_is_configured() -> None:
    srv = rules.Server({"pump": {}}, None)
    assert srv.authenticate(srv.open(), codec.VALIDATE, "whatever")[0].peer.authenticated
    assert not srv.authenticate(srv.open(), codec.VALIDATE, ["whatever"])[-1].peer.authenticated  # a token is text


def test_connect_sends_statuses_then_the_configuration() -> None:
    srv = server(status_frames=2)
    peer = srv.open()
    srv.authenticate(peer, codec.VALIDATE, "good")
    actions = srv.receive(peer, frame_in(codec.connect_extension("pump", "pump_1")), 0.0)
    frames = sent(actions)
    assert frames[:2] == [codec.status(200)] * 2
    assert frames[2]["op"] == codec.CONFIGURE and frames[2]["object"] == {"config": {"rate": 2}}
    assert actions[-1] == rules.Configured(peer, "pump", first=True)
    assert srv.peer_of("pump") is peer and srv.configured_after("pump", 0) and not srv.configured_after("pump", 1)


def test_an_unknown_source_is_refused() -> None:
    srv = server()
    peer = srv.open()
    srv.authenticate(peer, codec.VALIDATE, "good")
    [refusal] = sent(srv.receive(peer, frame_in(codec.connect_extension("tank", "s")), 0.0))
    assert refusal["body"][0]["code"] == "io.vantiq.resource.not.found"
    with pytest.raises(RemoteFailure, match="no connected connector"):
        srv.peer_of("tank")


def test_a_held_source_is_taken_over_only_with_the_holders_secret() -> None:
    srv = server()
    holder = configured(srv, "pump_1")
    other = srv.open()
    srv.authenticate(other, codec.VALIDATE, "good")
    [refusal] = sent(srv.receive(other, frame_in(codec.connect_extension("pump", "pump_2")), 0.0))
    assert refusal["body"][0]["code"] == "io.vantiq.source.in.use"
    actions = srv.receive(other, frame_in(codec.connect_extension("pump", "pump_1")), 0.0)
    assert rules.TakeOver(holder) in actions and holder.source is None
    assert srv.peer_of("pump") is other
    assert srv.close(holder) == [] and srv.peer_of("pump") is other  # the old socket closing frees nothing
    assert actions[-1] == rules.Configured(other, "pump", first=False)


def test_notifications_are_acknowledged_and_kept_for_a_scenario() -> None:
    srv = server()
    srv.keep_notifications()
    peer = configured(srv)
    actions = srv.receive(peer, frame_in(codec.notification("pump", {"level": 3, "unit": "m"}), "pump"), 0.0)
    assert sent(actions) == [codec.status(200)] and rules.Notified() in actions
    assert not srv.take_notification("pump", {"level": 4})
    assert srv.take_notification("pump", {"level": 3})
    assert not srv.take_notification("pump", {"level": 3})  # taken once


def test_malformed_frames_get_400_and_one_warning() -> None:
    srv = server()
    peer = configured(srv)
    bad = codec.decode(b"[1, 2]", profile="vantiq", endpoint="server")
    first, second = srv.receive(peer, bad, 0.0), srv.receive(peer, bad, 0.0)
    assert sent(first)[0]["status"] == 400 and len(warnings(first)) == 1 and warnings(second) == []
    assert peer.malformed == 2


def test_a_query_collects_its_responses_until_the_final_one() -> None:
    srv = server()
    peer = configured(srv)
    target, frame, result = srv.begin_query("pump", {"n": 1}, "r-1", now=10.0)
    assert target is peer and frame["op"] == codec.QUERY and frame["object"] == {"n": 1}
    [partial] = srv.receive(peer, frame_in(codec.query_response("r-1", codec.PARTIAL, [{"a": 1}])), 10.5)
    assert partial == rules.Answered("r-1", partial.msg, done=False) and result.rtt_s == 0.5
    [final] = srv.receive(peer, frame_in(codec.query_response("r-1", codec.COMPLETE, [{"a": 2}])), 11.0)
    assert final.done and result.rows == [{"a": 1}, {"a": 2}] and result.ok
    assert warnings(srv.receive(peer, frame_in(codec.query_response("r-1", 200, [])), 12.0))  # after the end
    assert srv.end_query(peer, "r-1", "too late to matter") is result and result.problem is None


def test_a_closed_connection_ends_its_open_queries() -> None:
    srv = server()
    peer = configured(srv)
    _, _, result = srv.begin_query("pump", {}, "r-2", now=0.0)
    assert srv.close(peer) == ["r-2"] and "closed" in str(result.problem)
    assert srv.only_source() is None
    srv.end_query(peer, "r-2")
    assert srv.queries == {}


def test_a_query_without_answer_ends_with_the_problem_given() -> None:
    srv = server()
    peer = configured(srv)
    srv.begin_query("pump", {}, "r-3", now=0.0)
    assert srv.end_query(peer, "r-3", "no final response within 1 s").problem == "no final response within 1 s"


def test_stray_frames_are_warned_about() -> None:
    srv = server()
    peer = configured(srv)
    assert warnings(srv.receive(peer, frame_in(codec.query_response("nobody", 200, [])), 0.0))
    assert warnings(srv.receive(peer, frame_in(codec.publish("pump", {})), 0.0))
    assert srv.receive(peer, frame_in(codec.status(200)), 0.0) == []


def test_sent_builds_the_message_a_decode_would() -> None:
    for frame in (
        codec.publish("pump", {"x": [1, 2]}),
        codec.query("pump", {"n": 1}, "r"),
        codec.status(200),
        codec.refusal(400, "e", "m"),
        codec.configure_extension("pump", {"rate": 2}),
        codec.client_close(),
    ):
        text = codec.encode(frame)
        built = codec.sent(frame, text, profile="vantiq", endpoint="server", source="pump")
        parsed = codec.decode(text, profile="vantiq", endpoint="server", direction="out", source="pump")
        assert (built.channel, built.kind, built.id, built.payload, built.raw, built.error) == (
            parsed.channel,
            parsed.kind,
            parsed.id,
            parsed.payload,
            parsed.raw,
            parsed.error,
        )
