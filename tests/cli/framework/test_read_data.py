"""--data as the roles read it: a value that is not JSON is refused with what was received,
escaped and clipped, and, when the shell took its quotes off, how to keep them."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldctl.cli.framework.common import RECEIVED_CHARS, read_data
from fieldctl.protocols.core.errors import UsageError


def refusal(value: str) -> str:
    with pytest.raises(UsageError) as caught:
        read_data(value)
    return str(caught.value)


def test_json_is_read() -> None:
    assert read_data('{"mode": 1}') == {"mode": 1} and read_data(None) is None


def test_unquoted_keys_are_shown_with_the_line_that_keeps_them() -> None:
    said = refusal("{mode:1}")
    assert said.startswith("--data: not JSON (Expecting property name enclosed in double quotes at line 1 column 2)")
    assert said.endswith("""received {mode:1} — quote it: --data '{"mode":1}'""")
    assert refusal("{mode: 1, b: [1]}").endswith("""quote it: --data '{"mode": 1, "b": [1]}'""")


def test_what_was_received_is_escaped_and_clipped() -> None:
    said = refusal("{\x1b]0;owned\x07" + "x" * 200)
    assert "\x1b" not in said and "\x07" not in said and "\\x1b]0;owned" in said
    assert said.endswith("…") and len(said.split("received ", 1)[1]) < RECEIVED_CHARS + 30
    assert "quote it" not in refusal("not json") and "received not json" in refusal("not json")


def test_a_file_that_is_not_json_gets_no_quoting_advice(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text("{mode:1}")
    said = refusal(f"@{path}")
    assert said.startswith(f"--data @{path}: not JSON") and "received {mode:1}" in said and "quote it" not in said
