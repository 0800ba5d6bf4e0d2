"""Secrets never reach output: masked where a role knows them, scrubbed wherever they echo."""

from __future__ import annotations

import base64
import json

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.message import Message


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
