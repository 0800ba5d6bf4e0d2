"""A registered client's rules without sockets: when it registers (again), which link states it
reports, what it answers; and the daemon's documents shown as built, not parsed back."""

from __future__ import annotations

from fieldctl.protocols.core.message import Message
from fieldctl.protocols.tracim import codec
from fieldctl.protocols.tracim.client_state import LinkState, Registration
from fieldctl.protocols.tracim.simulator_state import DaemonState

MASTER = "/run/tracim/master.sock"


def document(type_: str, data: object = None, path: str = MASTER) -> Message:
    return codec.decode(
        codec.encode(path, type_, data), profile="tracim", channels=codec.Channels({}), endpoint="client"
    )


def test_a_new_master_socket_is_registered_with_at_once_then_not_again() -> None:
    rules = Registration(stale_s=60, retry_s=1, now=0)
    assert rules.look((1, 2, 3), now=0.0) == (True, None)
    assert rules.sent((1, 2, 3)) == LinkState("registering", {})
    assert rules.look((1, 2, 3), now=0.5) == (False, None)


def test_a_restarted_daemon_is_registered_with_again_but_not_faster_than_retry_s() -> None:
    rules = Registration(stale_s=60, retry_s=1, now=0)
    rules.look((1, 2, 3), now=0.0)
    rules.sent((1, 2, 3))
    assert rules.look((1, 2, 4), now=0.5) == (False, None)
    assert rules.look((1, 2, 4), now=1.0) == (True, None)


def test_a_silent_daemon_is_registered_with_again_after_stale_s() -> None:
    rules = Registration(stale_s=10, retry_s=1, now=0)
    rules.look((1, 2, 3), now=0.0)
    rules.sent((1, 2, 3))
    rules.heard(document(codec.ACK), now=5.0)
    assert rules.look((1, 2, 3), now=14.0) == (False, None)
    assert rules.look((1, 2, 3), now=15.0) == (True, None)


def test_states_are_reported_once_each() -> None:
    rules = Registration(stale_s=60, retry_s=1, now=0)
    assert rules.look(None, now=0.0) == (False, LinkState("disconnected", {"reason": "no master socket file"}))
    assert rules.look(None, now=1.0) == (False, None)
    assert rules.not_sent("refused") == LinkState("retrying", {"reason": "refused"})
    assert rules.not_sent("refused") is None
    change, pong_to = rules.heard(document(codec.ACCOUNT_INFO, {"user_id": "42"}), now=2.0)
    assert change == LinkState("registered", {"user_id": "42"}) and pong_to is None


def test_a_ping_is_answered_where_it_came_from_and_garbage_only_heard() -> None:
    rules = Registration(stale_s=60, retry_s=1, now=0)
    assert rules.heard(document(codec.PING), now=1.0) == (None, MASTER)
    bad = codec.decode(b"{", profile="tracim", channels=codec.Channels({}), endpoint="client")
    assert rules.heard(bad, now=2.0) == (None, None) and rules.last_heard == 2.0


def test_outgoing_documents_carry_the_envelope_they_encode() -> None:
    state = DaemonState(MASTER)
    outbox = state.handle(codec.encode("/tmp/a.sock", codec.CLIENT_ADD, {"path": "/tmp/a.sock", "pid": "7"})).outbox
    assert outbox
    for outgoing in outbox:
        assert codec.parse(outgoing.raw) == outgoing.envelope
        built = codec.message_of(
            outgoing.envelope,
            outgoing.raw,
            profile="tracim",
            channels=codec.Channels({}),
            endpoint="client",
            direction="out",
            peer=outgoing.destination,
        )
        parsed = codec.decode(
            outgoing.raw,
            profile="tracim",
            channels=codec.Channels({}),
            endpoint="client",
            direction="out",
            peer=outgoing.destination,
        )
        assert (built.kind, built.channel, built.id, built.payload) == (
            parsed.kind,
            parsed.channel,
            parsed.id,
            parsed.payload,
        )
