"""Secrets never reach output: masked where a role knows them, scrubbed wherever they echo."""

from __future__ import annotations

import base64
import json

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.message import Message
from tests.helpers.garbage import cyclic_garbage, holds


def _shown(msg: Message) -> str:
    line = msg.to_json()
    raw = [base64.b64decode(frame) for frame in json.loads(line)["raw"]]
    return line + repr(raw)


def test_mask_hides_credential_fields_of_any_length_and_case() -> None:
    frame = b'{"PW": "ab", "user": "abc"}'
    msg = redact.mask(Message("p", "e", "in", "login", "login", json.loads(frame), raw=(frame,)))
    assert msg.payload == {"PW": "***", "user": "abc"}
    assert b'"ab"' not in msg.raw[0] and b'"abc"' in msg.raw[0]


def test_scrub_hides_known_secrets_wherever_they_echo() -> None:
    redact.remember("tok-9f8e7d")
    frame = b'{"userInfo": {"accessToken": "tok-9f8e7d"}, "note": "echo tok-9f8e7d"}'
    msg = Message("p", "e", "in", "validate", "ok", json.loads(frame), raw=(frame,), error="bad tok-9f8e7d")
    assert "tok-9f8e7d" not in _shown(redact.scrub(msg))
    assert redact.scrub_text("said tok-9f8e7d") == "said ***"


def test_scrub_returns_clean_messages_unchanged() -> None:
    msg = Message("p", "e", "in", "event", "k", {"a": 1})
    assert redact.scrub(msg) is msg


def test_a_resolved_secret_reference_is_remembered(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fieldctl.profiles.secrets import SecretRef

    monkeypatch.setenv("FIELDCTL_TEST_SECRET", "resolved-secret-1")
    SecretRef(env="FIELDCTL_TEST_SECRET").resolve()
    assert redact.scrub_text("x resolved-secret-1 y") == "x *** y"


def test_scrub_finds_any_of_many_secrets() -> None:
    """Past a few hundred secrets (a simulator's connectors) scrub searches them all at once."""
    secrets = [f"zq{k}-bulk-secret-Ä" for k in range(600)]
    for secret in secrets:
        redact.remember(secret)
    for secret in (secrets[0], secrets[333], secrets[-1]):
        frame = json.dumps({"echo": secret}).encode()
        shown = redact.scrub(Message("p", "e", "in", "event", "k", {"note": f"said {secret}"}, raw=(frame,)))
        assert secret not in _shown(shown) and b"bulk" not in shown.raw[0]
    clean = Message("p", "e", "in", "event", "k", {"a": "zq1-bulk"}, raw=(b'{"a": "zq1-bulk"}',))
    assert redact.scrub(clean) is clean


# --- how much is remembered, and for how long ---------------------------------------------------


def test_a_peers_secrets_are_searched_for_while_they_are_recent() -> None:
    """However many a peer offers (a simulator's failed logins), only the newest are kept."""
    offered = [f"wrong-password-{n:05d}" for n in range(10 * redact.RECENT)]
    for value in offered:
        redact.offered(value)
    assert redact.scrub_text(f"echo {offered[-1]}") == "echo ***"
    assert redact.scrub_text(f"echo {offered[-redact.RECENT]}") == "echo ***"
    assert redact.scrub_text(f"echo {offered[0]}") == f"echo {offered[0]}"


def test_secrets_of_a_live_connection_outlast_the_window_and_then_go() -> None:
    held = "reconnect-secret-held-4711"
    with redact.connection():
        redact.offered(held)
        for n in range(2 * redact.RECENT):
            redact.offered(f"another-peer-secret-{n:04d}")
        assert redact.scrub_text(f"echo {held}") == "echo ***"
    assert redact.scrub_text(f"echo {held}") == "echo ***"  # recent: the connection just ended
    for n in range(2 * redact.RECENT):
        redact.offered(f"a-later-peer-secret-{n:04d}")
    assert redact.scrub_text(f"echo {held}") == f"echo {held}"


def test_one_connection_holds_a_few_secrets_only() -> None:
    with redact.connection():
        offered = [f"secret-on-one-connection-{n:04d}" for n in range(redact.HELD_PER_CONNECTION + 2 * redact.RECENT)]
        for value in offered:
            redact.offered(value)
        assert redact.scrub_text(offered[0]) == "***"  # held
        assert redact.scrub_text(offered[redact.HELD_PER_CONNECTION]) == offered[redact.HELD_PER_CONNECTION]
        assert redact.scrub_text(offered[-1]) == "***"  # recent


def test_fieldctls_own_secrets_stay_whatever_peers_offer() -> None:
    redact.remember("own-resolved-secret-1")
    for n in range(2 * redact.RECENT):
        redact.offered(f"peer-secret-{n:04d}")
    assert redact.scrub_text("x own-resolved-secret-1") == "x ***"


def test_a_secret_of_megabytes_is_masked_where_it_stands_but_never_searched_for() -> None:
    huge = "h" * (redact.MAX_SEARCHED + 1)
    frame = json.dumps({"pw": huge, "note": "ok"}).encode()
    msg = redact.mask(Message("p", "e", "in", "login", "login", json.loads(frame), raw=(frame,)))
    assert msg.payload == {"pw": "***", "note": "ok"} and huge.encode() not in msg.raw[0]
    assert redact.scrub_text(huge) == huge


def test_learning_leaves_nothing_for_the_garbage_collector() -> None:
    """What the collector alone frees waits for a full collection: a password of megabytes in a
    cycle stayed that long, once per failed login."""
    payload = {"login": {"pw": "p" * (1 << 20)}}
    assert not holds(cyclic_garbage(lambda: redact.learn(payload)), 1 << 20)
