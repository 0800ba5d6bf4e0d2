"""How a payload value and a duration read for a person: JSON, never a Python repr; one unit style."""

from __future__ import annotations

from fieldctl.protocols.core.readable import duration_text, value_text


def test_a_value_reads_as_compact_json_never_as_a_repr() -> None:
    assert value_text({"user": "sepl-user", "pw": "***"}) == '{"user":"sepl-user","pw":"***"}'
    assert value_text(None) == "null" and value_text(True) == "true" and value_text(42) == "42"
    assert value_text("ok") == '"ok"' and value_text('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert value_text(["é", 1.5]) == '["é",1.5]'
    assert value_text(b"\x00") == "\"b'\\\\x00'\""  # what JSON cannot say reads as a quoted text


def test_a_long_value_is_cut_with_an_ellipsis_within_its_limit() -> None:
    text = value_text({"data": "x" * 500}, 40)
    assert len(text) == 40 and text.endswith("…") and text.startswith('{"data":"xxx')


def test_a_duration_reads_in_ms_below_a_second_and_in_s_above() -> None:
    assert duration_text(0.0016) == "1.6 ms" and duration_text(0.006) == "6.0 ms"
    assert duration_text(0.25) == "250.0 ms" and duration_text(0.99996) == "1.0 s"
    assert duration_text(2.3) == "2.3 s" and duration_text(75) == "75.0 s"
