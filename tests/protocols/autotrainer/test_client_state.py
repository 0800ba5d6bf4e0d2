"""A technician's tool's rules without sockets: results matched by nonce, replies judged,
emergencies de-duplicated."""

from __future__ import annotations

import pytest

from fieldctl.profiles import load_profile
from fieldctl.protocols.autotrainer import codec
from fieldctl.protocols.autotrainer.client_state import EmergencyDeduper, Waiting, judge_reply, outcome
from fieldctl.protocols.core.errors import ProtocolFailure
from fieldctl.protocols.core.message import Message

VOCAB = codec.Vocabulary.from_profile(load_profile("autotrainer"))
START = VOCAB.command_code.get("start", next(iter(VOCAB.command_code.values())))


def result(nonce: int, status: int = codec.SUCCESS) -> Message:
    body = codec.encode_command_result(nonce, START, status, {"ok": True})
    return codec.decode_publication([VOCAB.topic_frame("command_result"), body], VOCAB)


def reply(nonce: int, status: int, data: object = None) -> Message:
    return codec.decode_reply([codec.encode_reply(nonce, START, status, data)], VOCAB)


def test_a_result_goes_to_the_command_waiting_for_its_nonce_only() -> None:
    books = Waiting()
    books.expect(7)
    assert books.answered(result(7)) == 7
    assert books.answered(result(8)) is None  # another client's
    books.forget(7)
    assert books.answered(result(7)) is None


def test_a_reply_with_another_nonce_is_a_protocol_failure() -> None:
    with pytest.raises(ProtocolFailure, match="does not match request nonce 5"):
        judge_reply(reply(6, codec.SUCCESS), 5, "tcp://x")


def test_a_201_reply_waits_for_the_result_and_the_result_decides() -> None:
    first = reply(5, codec.PENDING_WITH_NOTIFICATION)
    verdict = judge_reply(first, 5, "tcp://x")
    assert verdict.pending and not verdict.rejected
    done = outcome(first, verdict, [first], 0.01, final=result(5, codec.SUCCESS))
    assert done.ok and done.result == {"ok": True}


def test_a_plain_reply_is_the_outcome() -> None:
    answer = reply(5, codec.SUCCESS, {"v": 1})
    verdict = judge_reply(answer, 5, "tcp://x")
    assert not verdict.pending and outcome(answer, verdict, [answer], 0.01).result == {"v": 1}


def test_a_malformed_reply_is_a_protocol_failure() -> None:
    bad = codec.decode_reply([b"not json"], VOCAB)
    with pytest.raises(ProtocolFailure, match="malformed reply from tcp://x"):
        judge_reply(bad, 5, "tcp://x")


def test_the_event_copy_of_an_emergency_is_dropped_once() -> None:
    dedupe = EmergencyDeduper()
    body = codec.build_event(codec.EMERGENCY_KINDS[0])
    emergency, event = [
        codec.decode_publication(frames, VOCAB) for frames in codec.encode_publication("emergency", body, VOCAB)
    ]
    assert (emergency.channel, event.channel) == ("emergency", "event")
    assert not dedupe.is_duplicate(emergency) and dedupe.is_duplicate(event) and not dedupe.is_duplicate(event)
