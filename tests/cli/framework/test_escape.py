"""What reaches a terminal: control characters written out, known secrets and a URL's password
masked, whatever line carries them."""

from __future__ import annotations

from fieldctl.cli.framework.escape import stderr_line, visible


def test_a_urls_password_is_masked_with_the_controls_escaped() -> None:
    assert visible("ws://admin:pw@10.0.0.1/\x1b[2J") == "ws://admin:***@10.0.0.1/\\x1b[2J"
    assert stderr_line("cannot connect to ws://admin:p@ss@h:1/ (refused)\n") == (
        "cannot connect to ws://admin:***@h:1/ (refused)\\x0a"
    )
    assert visible("ws://admin@10.0.0.1") == "ws://admin@10.0.0.1"
