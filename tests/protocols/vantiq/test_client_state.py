"""One source's connection without sockets: validate, connectExtension and configureExtension in
order, refusals told apart (a token refused ends the run, a source refused backs off), and what
register, publish and probe each do once configured."""

from __future__ import annotations

import json
from typing import Any

from fieldctl.protocols.core.errors import ConnectFailure, Timeout
from fieldctl.protocols.core.limits import DEFAULT_LIMITS
from fieldctl.protocols.vantiq import codec
from fieldctl.protocols.vantiq.client_state import SourceLink


def _link(**role: Any) -> SourceLink:
    return SourceLink("vantiq", DEFAULT_LIMITS, "ws://x", 5.0, lambda: "tok-secret", "src", "s3cret", **role)


def _configured(link: SourceLink) -> None:
    link.start(0.0)
    link.receive(codec.encode(codec.validated()), 0.1)
    link.receive(codec.encode(codec.status(100)), 0.2)
    link.receive(codec.encode(codec.configure_extension("src", {"a": 1})), 0.3)


def test_register_validates_connects_and_is_ready_once_configured() -> None:
    link = _link(stays=True)
    start = link.start(0.0)
    assert json.loads(str(start.send[0]))["op"] == "validate" and start.wake_at == 5.0
    connect = link.receive(codec.encode(codec.validated()), 1.0)
    assert json.loads(str(connect.send[0]))["op"] == "connectExtension" and connect.wake_at == 6.0
    assert link.receive(codec.encode(codec.status(100)), 2.0).send == []
    ready = link.receive(codec.encode(codec.configure_extension("src", {"a": 1})), 3.0)
    assert [(m.channel, m.kind) for m in ready.emit][-1] == ("link", "ready") and link.active
    query = link.receive(codec.encode(codec.query("src", {"q": 1}, "reply-1")), 4.0)
    assert query.close is None and [m.id for m in link.queries] == ["reply-1"]
    assert link.receive(codec.encode(codec.client_close()), 5.0).close == codec.TEST_CLOSE
    assert link.ending == codec.TEST_CLOSE and not link.active


def test_a_refused_token_ends_the_run_and_a_refused_source_backs_off() -> None:
    token = _link()
    token.start(0.0)
    assert token.receive(codec.encode(codec.refusal(401, "auth.failed", "no")), 1.0).close
    assert isinstance(token.failure, ConnectFailure) and "refused the access token" in str(token.failure)
    source = _link()
    source.start(0.0)
    source.receive(codec.encode(codec.validated()), 1.0)
    assert source.receive(codec.encode(codec.refusal(403, "busy", "taken")), 2.0).close
    assert source.failure is None and "connectExtension refused: 403" in str(source.refused)
    late = _link()
    late.start(0.0)
    late.receive(codec.encode(codec.validated()), 1.0)
    assert late.tick(5.9).close is None and late.tick(6.0).close
    assert late.refused == "no configureExtension within 5 s"


def test_publish_sends_its_notifications_and_counts_the_acknowledgements_until_its_deadline() -> None:
    link = _link(notifications=[{"n": 1}, {"n": 2}], acks_by=9.0, wait_s=9.0)
    link.start(0.0)
    link.receive(codec.encode(codec.validated()), 0.1)
    sent = link.receive(codec.encode(codec.configure_extension("src", {})), 0.2)
    assert [json.loads(str(f))["op"] for f in sent.send] == ["notification", "notification"] and sent.wake_at == 9.0
    assert link.receive(codec.encode(codec.status(200)), 0.3).close is None
    assert link.tick(9.0).close and isinstance(link.failure, Timeout)
    assert str(link.failure) == "source src: 1 of 2 notification(s) acknowledged within 9 s"


def test_probe_closes_once_configured_and_says_when() -> None:
    link = _link()
    _configured(link)
    assert link.phase == "over" and link.answered_at == 0.3 and link.failure is None
