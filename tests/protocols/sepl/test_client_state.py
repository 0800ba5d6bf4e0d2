"""The connector's books without sockets: the login verdict, requests matched by token, and the
report of requests a lost connection took with it."""

from __future__ import annotations

import json

from fieldctl.protocols.sepl import codec
from fieldctl.protocols.sepl.client_state import CLIENT_CLOSE, Registration, Requests, ShortRun, login_answer
from fieldctl.protocols.sepl.connection import Timing


def test_a_login_answer_with_the_token_and_a_gid_is_accepted() -> None:
    verdict = login_answer("sepl", codec.login_answer_frame(codec.LOGIN_TOKEN, "gw-1", "abc"))
    assert verdict.refused is None and (verdict.gid, verdict.hash) == ("gw-1", "abc")
    assert verdict.msg.channel == "login" and verdict.msg.kind == "answer"


def test_a_login_answer_without_gid_or_with_another_status_is_refused() -> None:
    assert "status 401" in str(login_answer("sepl", codec.login_answer_frame(codec.LOGIN_TOKEN, "gw", "", 401)).refused)
    assert login_answer("sepl", codec.login_answer_frame(codec.LOGIN_TOKEN, "", "")).refused
    assert login_answer("sepl", codec.login_answer_frame("other", "gw", "")).refused


def test_a_login_answer_that_is_not_an_object_is_refused_and_shown_malformed() -> None:
    verdict = login_answer("sepl", "[1]")
    assert "not a JSON object" in str(verdict.refused) and verdict.msg.channel == "malformed"


def test_a_request_is_shown_as_sent_without_parsing_it_back() -> None:
    requests = Requests("sepl")
    envelope = codec.request_envelope("put", "t1", {"uri": "d"})
    text, msg = requests.send(envelope)
    assert json.loads(text) == envelope and msg.raw == (text.encode(),)
    parsed = codec.decode_frame("sepl", "out", text, from_client=True)[1]
    assert (msg.channel, msg.kind, msg.id, msg.payload) == (parsed.channel, parsed.kind, parsed.id, parsed.payload)
    assert requests.open == {"t1": "put"}


def test_answers_are_matched_by_token_and_named_by_the_handler_answered() -> None:
    requests = Requests("sepl")
    requests.send(codec.request_envelope("commit", "t1", "hash"))
    incoming = requests.receive(codec.platform_frame(200, "response", "t1", "ok"))
    assert incoming.answers == "t1" and incoming.msg.kind == "commit" and incoming.msg.error is None
    stray = requests.receive(codec.platform_frame(200, "response", "t9", "ok"))
    assert stray.answers is None and "no open request" in str(stray.msg.error)


def test_commands_are_handed_on_and_garbage_is_only_shown() -> None:
    requests = Requests("sepl")
    command = requests.receive(codec.command_frame({"device_url": "d", "service_url": "s", "task_id": "x"}))
    assert command.command and command.envelope["handler"] == "command" and command.msg.kind == "d:s"
    garbage = requests.receive("{not json")
    assert garbage.envelope is None and garbage.msg.channel == "malformed" and not garbage.command


def test_a_timeout_and_a_lost_connection_are_reported_per_request() -> None:
    requests = Requests("sepl")
    requests.send(codec.request_envelope("put", "t1", {}))
    requests.send(codec.request_envelope("event", "t2", {}))
    late = requests.timed_out("t1", 2.5)
    assert late.kind == "put" and late.error == "no answer to put within 2.5 s"
    [(token, msg, notice)] = requests.abandon("no pong")
    assert token == "t2" and "not resent" in str(msg.error) and "event request t2" in notice
    assert requests.open == {}


def _short_run(requests: list[dict[str, object]]) -> ShortRun:
    return ShortRun("sepl", lambda: codec.credentials("u", "secret-pw", ""), Timing(login_s=5, request_s=2), requests)


def test_a_short_run_logs_in_sends_its_requests_one_by_one_and_closes() -> None:
    first, second = codec.request_envelope("event", "t1", {}), codec.request_envelope("event", "t2", {})
    run = _short_run([first, second])
    start = run.start(0.0)
    assert json.loads(str(start.send[0]))["pw"] == "secret-pw" and "secret-pw" not in str(start.emit[0].payload)
    assert start.wake_at == 5.0
    sent = run.receive(codec.login_answer_frame(codec.LOGIN_TOKEN, "gw-1", ""), 1.0)
    assert [json.loads(str(f))["token"] for f in sent.send] == ["t1"] and sent.wake_at == 3.0
    answered = run.receive(codec.go_frame(codec.platform_envelope(200, "response", "t1", "ok")), 1.5)
    assert [json.loads(str(f))["token"] for f in answered.send] == ["t2"] and answered.close is None
    done = run.receive(codec.go_frame(codec.platform_envelope(400, "response", "t2", "no")), 1.6)
    assert done.close == CLIENT_CLOSE and [a and a["status"] for a in run.answers] == [200, 400]
    assert run.refused("u", dropped=False) is None and run.logged_in_at == 1.0


def test_a_short_run_gives_up_on_a_login_or_an_answer_that_does_not_come() -> None:
    silent = _short_run([])
    silent.start(0.0)
    assert silent.tick(4.0).close is None and silent.tick(5.0).close == CLIENT_CLOSE
    assert silent.refused("u", dropped=False) == "no login answer within 5 s"
    assert "dropped the connection after the credentials of user 'u'" in str(silent.refused("u", dropped=True))
    slow = _short_run([codec.request_envelope("event", "t1", {})])
    slow.start(0.0)
    slow.receive(codec.login_answer_frame(codec.LOGIN_TOKEN, "gw-1", ""), 0.0)
    given_up = slow.tick(2.0)
    assert given_up.close == CLIENT_CLOSE and given_up.emit[0].error == "no answer to event within 2 s"
    assert slow.answers == [None]


def _registration(local_hash: str = "h-local") -> Registration:
    timing = Timing(login_s=5, request_s=2, idle_ping_s=15, pong_s=15)
    return Registration("sepl", lambda: codec.credentials("u", "pw", ""), timing, 0.5, local_hash, [{"uri": "d1"}])


def _answer(frame: object, status: int = 200) -> str:
    return codec.go_frame(codec.platform_envelope(status, "response", json.loads(str(frame))["token"], "ok"))


def test_a_registration_syncs_a_differing_hash_one_request_at_a_time_then_is_ready() -> None:
    reg = _registration()
    reg.start(0.0)
    clear = reg.receive(codec.login_answer_frame(codec.LOGIN_TOKEN, "gw-1", "h-old"), 0.1)
    assert reg.adopt and [json.loads(str(f))["handler"] for f in clear.send] == ["clear"]
    put = reg.receive(_answer(clear.send[0]), 0.2)
    commit = reg.receive(_answer(put.send[0]), 0.3)
    assert json.loads(str(commit.send[0]))["payload"] == "h-local"
    ready = reg.receive(_answer(commit.send[0]), 0.4)
    assert [m.kind for m in ready.emit if m.channel == "link"] == ["synced", "ready"] and reg.ready


def test_a_refused_sync_ends_the_run_and_a_refused_change_waits_for_the_next_sync() -> None:
    refused = _registration()
    refused.start(0.0)
    clear = refused.receive(codec.login_answer_frame(codec.LOGIN_TOKEN, "gw-1", "h-old"), 0.1)
    assert refused.receive(_answer(clear.send[0], 500), 0.2).close == CLIENT_CLOSE
    assert refused.failure == "device sync refused: clear answered 500 ok"
    reg = _registration()
    reg.start(0.0)
    reg.receive(codec.login_answer_frame(codec.LOGIN_TOKEN, "gw-1", "h-local"), 0.1)
    put = reg.change("put", {"uri": "d2"}, "h-new", 1.0)
    commit = reg.receive(_answer(put.send[0]), 1.1)
    assert json.loads(str(commit.send[0])) | {"token": ""} == codec.request_envelope("commit", "", "h-new")
    reg.receive(_answer(commit.send[0]), 1.2)
    gone = reg.change("delete", "d2", "h-gone", 2.0)
    assert "delete d2 was not accepted" in reg.receive(_answer(gone.send[0], 404), 2.1).warn[0]


def test_a_registration_asks_for_a_ping_after_silence_and_reports_a_response_never_answered() -> None:
    reg = _registration()
    reg.start(0.0)
    reg.receive(codec.login_answer_frame(codec.LOGIN_TOKEN, "gw-1", "h-local"), 0.0)
    text, _ = reg.respond(codec.request_envelope("response", "r1", {}), 1.0)
    assert json.loads(text)["token"] == "r1" and reg.tick(2.9).emit == []
    assert [m.error for m in reg.tick(3.0).emit] == ["no answer to response within 2 s"]
    assert reg.look and not reg.ping_due
    reg.tick(15.0)
    assert reg.ping_due
    no_pong = reg.no_pong()
    assert no_pong.close == "no pong" and no_pong.emit[0].payload == {"reason": "no pong within 15 s"}
