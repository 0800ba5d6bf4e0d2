"""One line per message, in-process where it is pure: templates parsed and filled from a
whitelist (never str.format's attribute walking), lines escaped and coloured by meaning, the
output chosen from the flags, --filter globs and values checked against the profile."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

import pytest

from fieldctl.cli.views import theme
from fieldctl.cli.views.lines import MISSING, LineWriter, Template, choose_output, line_segments, message_line
from fieldctl.cli.views.stream import Filters
from fieldctl.profiles import load_profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.runtime.registry import driver_for
from fieldctl.protocols.sdk.contract import BaseDriver
from tests.helpers.processes import invoke

TS = datetime(2026, 3, 4, 5, 6, 7, 890000).timestamp()


class Alarmed(BaseDriver):
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "emergency": "alarm"}


def _msg(**kw: object) -> Message:
    fields: dict[str, object] = {
        "profile": "autotrainer",
        "endpoint": "commands",
        "direction": "out",
        "channel": "command",
        "kind": "set-application-mode",
        "payload": {"mode": 100, "rows": [{"name": "a"}, {"name": "b"}], "3": "three", "flag": True},
        "id": 42,
        "ts": TS,
        **kw,
    }
    return Message(**fields)  # type: ignore[arg-type]


def test_a_template_fills_ndjson_fields_and_payload_paths() -> None:
    template = Template("{ts:%H:%M:%S} {direction} {channel} {kind} #{id} mode={payload.mode} {payload.rows[1].name}")
    assert template.render(_msg()) == "05:06:07 out command set-application-mode #42 mode=100 b"
    assert Template("{payload.rows.0.name} {payload.3} {payload.flag} {rtt_s:.3f}").render(_msg(rtt_s=0.01234)) == (
        "a three true 0.012"
    )
    assert Template("{payload.rows}").render(_msg()) == '[{"name":"a"},{"name":"b"}]'  # compact JSON, as NDJSON
    assert Template("{ts}").render(_msg()) == str(TS)  # the NDJSON value unless a strftime spec is given
    assert Template("{target} {profile}").render(_msg(), "rig-7") == "rig-7 autotrainer"


def test_a_missing_path_or_null_shows_a_placeholder_not_an_error() -> None:
    line = Template("{payload.nope} {payload.rows[9]} {payload.mode.deeper} {error} {target}").render(_msg())
    assert line.split() == [MISSING] * 5
    assert Template("{payload.x}").render(_msg(payload="just text")) == MISSING


def test_nothing_is_walked_but_keys_and_indices() -> None:
    """`{payload.__class__}` is a key the payload does not have; no attribute is ever looked up."""
    msg = _msg()
    assert Template("{payload.__class__} {payload.mode.__class__.__name__}").render(msg) == f"{MISSING} {MISSING}"
    assert Template("{kind:>25}").render(msg) == "     set-application-mode"
    assert Template("{kind:.2f}").render(msg) == "set-application-mode"  # a spec that does not fit is left out


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{knd}", "unknown field 'knd' (did you mean kind?)"),
        ("{timestamp}", "unknown field 'timestamp'"),
        ("{0}", "unknown field '0'"),
        ("{}", "expected a field name"),
        ("{0.__class__}", "unknown field '0'"),
        ("{kind.__class__}", "only payload (and raw) have paths"),
        ("{kind!r}", "conversions are not supported"),
        ("{kind:{ts}}", "a format spec cannot hold a field"),
        ("{payload..x}", "expected a field name"),
        ("{payload[x]}", "expected a field name"),
        ("oops {", "literal braces"),
    ],
)
def test_a_bad_template_is_a_usage_error_that_says_why(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        Template(text)
    assert says in str(caught.value)


def test_a_bad_template_exits_2_before_anything_connects() -> None:
    result = invoke(
        "listen", "autotrainer", "--format", "{knd} {payload.mode}", "--endpoint", "events=tcp://10.0.0.1:1"
    )
    assert result.returncode == 2
    assert "unknown field 'knd' (did you mean kind?)" in result.stderr
    assert result.stdout == ""


def test_every_value_from_the_wire_is_escaped() -> None:
    hostile = "x\x1b]0;PWNED\x07\n\x9b31m"
    msg = _msg(kind=hostile, payload={"note": hostile}, channel="event", direction="in")
    for line in (
        Template("{kind} {payload.note} {payload}").render(msg),
        LineWriter(lambda m: str(m.payload["note"]), BaseDriver.styles)(msg) or "",
        LineWriter(lambda m: str(m.payload["note"]), BaseDriver.styles, color=True)(msg) or "",
        message_line(msg, lambda m: str(m.payload["note"]), BaseDriver.styles).plain,
    ):
        body = line.rstrip("\n")
        assert "\x07" not in body and "\n" not in body and "\x9b" not in body and "]0;" in body
        assert "\x1b]" not in body


def test_the_default_line_reads_like_mosquitto_sub_v() -> None:
    writer = LineWriter(lambda m: f"mode {m.payload['mode']}", BaseDriver.styles)
    assert writer(_msg()) == "05:06:07.890 → command set-application-mode #42  mode 100\n"
    assert writer(_msg(direction="in", channel="reply", id=None), "rig-7") == (
        "05:06:07.890 rig-7 ← reply set-application-mode  mode 100\n"
    )
    assert writer(_msg(error="bad JSON", direction="in")) == (
        "05:06:07.890 ← command set-application-mode #42  ✗ bad JSON\n"
    )
    state = link("autotrainer", "events", "connected", {"url": "tcp://127.0.0.1:5556"})
    assert (writer(state) or "").endswith("· link connected  events tcp://127.0.0.1:5556\n")


def test_a_template_leaves_link_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    writer = LineWriter(lambda m: "", BaseDriver.styles, Template("{kind}"))
    assert writer(link("autotrainer", "events", "ready", {"url": "tcp://127.0.0.1:5556"})) is None
    assert capsys.readouterr().err == "events: ready tcp://127.0.0.1:5556\n"
    assert writer(_msg()) == "set-application-mode\n"


@pytest.fixture(autouse=True)
def _theme_read_afresh() -> Iterator[None]:
    """The theme is read once per process; each test here sets its own."""
    theme.theme.cache_clear()
    yield
    theme.theme.cache_clear()


def test_colours_mark_meaning_not_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIELDCTL_THEME", raising=False)
    pieces = dict(line_segments(_msg(), lambda m: "detail", Alarmed.styles))
    assert pieces["→"] == theme.style("out") and pieces["detail"] == "" and pieces["05:06:07.890"] == ""
    alarm = dict(line_segments(_msg(channel="emergency", direction="in"), lambda m: "stop", Alarmed.styles))
    assert alarm["emergency"] == alarm["stop"] == theme.style("alarm")
    bad = dict(line_segments(_msg(error="broken"), lambda m: "", Alarmed.styles))
    assert bad["✗ broken"] == theme.style("error")
    for styles in (theme.theme(), *(theme._THEMES.values())):
        assert not any("dim" in style or style == "yellow" for style in styles.values()), styles
    assert "yellow" not in " ".join(theme.theme().values())  # the default reads on a white background


def test_the_theme_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDCTL_THEME", "light")
    assert theme.style("in") == "bold blue"
    theme.theme.cache_clear()
    monkeypatch.setenv("FIELDCTL_THEME", "dark")
    assert theme.style("in") == "bold cyan"
    coloured = LineWriter(lambda m: "", BaseDriver.styles, color=True)(_msg()) or ""
    assert "\x1b[1;35m→\x1b[0m" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    plain = LineWriter(lambda m: "", BaseDriver.styles, color=True)(_msg()) or ""
    assert "\x1b[1m→\x1b[0m" in plain and "35" not in plain  # bold stays, colours go


def test_the_output_follows_the_flags() -> None:
    assert choose_output(True, False, None).mode == "json"
    assert choose_output(False, False, "ndjson").mode == "json"
    assert choose_output(False, False, "JSON").mode == "json"
    assert choose_output(True, False, "json").mode == "json"
    assert choose_output(False, True, None).mode == "lines"
    templated = choose_output(False, True, "{kind}")
    assert templated.mode == "lines" and templated.template is not None
    assert choose_output(False, False, None).mode == "json"  # stdout is not a terminal here: today's NDJSON
    with pytest.raises(UsageError, match="choose one"):
        choose_output(True, True, None)
    with pytest.raises(UsageError, match="choose one"):
        choose_output(True, False, "{kind}")
    with pytest.raises(UsageError, match="choose one"):
        choose_output(False, True, "ndjson")


def test_filters_take_globs() -> None:
    filters = Filters(["kind=trial*", "kind=sessionStarted", "channel=ev?nt"])
    assert filters.match(_msg(channel="event", kind="trialStarted"))
    assert filters.match(_msg(channel="event", kind="sessionStarted"))
    assert not filters.match(_msg(channel="event", kind="tunnelEnter"))
    assert not filters.match(_msg(channel="heartbeat", kind="trialStarted"))
    assert filters.channels is None  # a glob: no subscription can be narrowed to names
    assert Filters(["channel=event"]).channels == {"event"}
    assert Filters(["kind=[0-9]*"]).match(_msg(kind=1234))


def _driver() -> BaseDriver:
    return driver_for(load_profile("autotrainer"), lambda text: None)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("channel=evnt", "autotrainer has no channel 'evnt' (did you mean event?)"),
        ("kind=trialStartd", "autotrainer has no kind 'trialStartd' (did you mean trialStarted?)"),
        ("kind=trail*", "matches no kind of autotrainer"),
        ("channel=x*", "matches no channel of autotrainer"),
        ("direction=inn", "has no direction 'inn' (did you mean in?)"),
    ],
)
def test_a_filter_the_profile_cannot_produce_is_refused(spec: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        Filters([spec]).check(_driver().vocabulary, "autotrainer")
    assert says in str(caught.value)


def test_filters_the_profile_can_produce_pass() -> None:
    specs = ["channel=event", "channel=heart*", "kind=trial*", "kind=get-status", "kind=heartbeat", "kind=4242"]
    Filters(specs).check(_driver().vocabulary, "autotrainer")
    Filters(["channel=anything"]).check(BaseDriver.vocabulary.__get__(_driver()), "autotrainer")  # undeclared: open


def test_a_filter_the_profile_cannot_produce_exits_2_before_anything_connects() -> None:
    result = invoke("listen", "autotrainer", "--filter", "channel=evnt", "--endpoint", "events=tcp://10.0.0.1:1")
    assert result.returncode == 2 and "did you mean event?" in result.stderr


def test_lines_are_not_for_a_fleet_yet() -> None:
    result = invoke("listen", "--fleet", "fleet.toml", "--lines")
    assert result.returncode == 2 and "not for a fleet yet (--json is)" in result.stderr


def test_a_line_stays_a_line_whatever_a_peer_names() -> None:
    line = LineWriter(lambda m: "y" * 10_000, BaseDriver.styles)(_msg(kind="k" * 1_000_000, id="i" * 1_000_000)) or ""
    assert len(line) < 1000


def test_tracim_declares_its_channels_not_its_kinds() -> None:
    drv = driver_for(load_profile("tracim"), lambda text: None)
    Filters(["channel=keepalive", "channel=other", "kind=anything_the_daemon_sends"]).check(drv.vocabulary, "tracim")
    with pytest.raises(UsageError, match="did you mean keepalive"):
        Filters(["channel=keepalve"]).check(drv.vocabulary, "tracim")


def test_a_link_line_says_what_the_protocol_told_after_where() -> None:
    from fieldctl.cli.views.links import link_text
    from fieldctl.protocols.core.message import link

    told = link("vantiq", "server", "bound", {"url": "ws://127.0.0.1:1/x", "sources": ["a", "b"], "n": 2})
    assert link_text(told) == "ws://127.0.0.1:1/x sources=a,b n=2"
    assert link_text(link("autotrainer", "events", "retrying", None)) == ""
    odd = link("sepl", "platform", "disconnected", {"reason": None, "close": {"code": 1000}, "clean": True})
    assert link_text(odd) == 'reason=null close={"code":1000} clean=true'  # JSON, never a Python repr
