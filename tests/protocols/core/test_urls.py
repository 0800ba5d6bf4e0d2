"""Passwords in URLs: found wherever the user information holds one, masked in any text, a user
name alone left as it is."""

from __future__ import annotations

import pytest

from fieldctl.protocols.core.urls import has_password, mask_passwords


@pytest.mark.parametrize(
    "text, masked",
    [
        ("ws://admin:hunter2@10.0.0.1:8093/", "ws://admin:***@10.0.0.1:8093/"),
        ("ws://admin:@host", "ws://admin:***@host"),
        ("wss://a:p@ss@host/x?y=a@b", "wss://a:***@host/x?y=a@b"),
        ("ws://admin:pw@[::1]:80", "ws://admin:***@[::1]:80"),
        ("//admin:pw@10.0.0.1", "//admin:***@10.0.0.1"),
        ("cannot connect to ws://u:pw@h/ or tcp://v:pw2@h:1", "cannot connect to ws://u:***@h/ or tcp://v:***@h:1"),
    ],
)
def test_a_password_is_found_and_masked(text: str, masked: str) -> None:
    assert has_password(text) and mask_passwords(text) == masked


@pytest.mark.parametrize(
    "text", ["ws://admin@host:8093", "tcp://127.0.0.1:5556", "tcp://*:5556", "ws://[::1]:80/a@b", "/tmp/s.sock", "a@b"]
)
def test_a_user_name_a_port_or_an_at_sign_elsewhere_is_no_password(text: str) -> None:
    assert not has_password(text) and mask_passwords(text) == text
