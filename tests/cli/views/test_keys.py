"""The key reader's parsing (cli/views/keys.py): what a terminal sends for each key, whole or in
pieces; the terminal side (cbreak, no echo, restored) is driven in tests/cli/fleet/test_board.py."""

from __future__ import annotations

import io

from fieldctl.cli.views.keys import Keys, keys_of


def test_keys_and_sequences() -> None:
    keys, rest = keys_of("/sim-15*\r\x1b[A\x1b[B\x1b[5~\x1b[6~\x1b[H\x1b[F\x1bOA\x7fq")
    assert keys == [
        "/", "s", "i", "m", "-", "1", "5", "*", "enter", "up", "down", "pageup", "pagedown", "home", "end", "up",
        "backspace", "q",
    ]  # fmt: skip
    assert rest == ""


def test_an_escape_alone_and_a_sequence_cut_in_two() -> None:
    assert keys_of("\x1b") == ([], "\x1b")  # the reader waits briefly: alone, it is the Escape key
    assert keys_of("\x1bq") == (["escape", "q"], "")
    keys, rest = keys_of("j\x1b[6")
    assert keys == ["j"] and rest == "\x1b[6"
    assert keys_of(rest + "~") == (["pagedown"], "")


def test_unknown_sequences_are_dropped_not_typed() -> None:
    assert keys_of("\x1b[200~x\x1b[15;2~") == (["x"], "")


def test_no_terminal_no_keys() -> None:
    with Keys(io.StringIO()) as keys:
        assert not keys.active
