"""The fault rules and their judge, pure: every action parsed and judged, every refusal with one
line (and a did-you-mean where a word is misspelt), windows and stalls on a made-up clock, the
same seed giving the same verdicts, and a corrupted frame that keeps its shape and decodes as
nothing."""

from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import pytest

from fieldctl.protocols.core.limits import loads
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.faults import Faults, Rule, Verdict, corrupt_frame, parse_rule, parse_rules

T0 = 1000.0  # the loop time a run starts at


def msg(channel: str = "events", kind: str | int = "trialStarted") -> Message:
    return Message(profile="p", endpoint="events", direction="in", channel=channel, kind=kind)


def faults(*rules: str, seed: int = 1) -> Faults:
    judge = Faults([parse_rule(rule) for rule in rules], seed=seed)
    judge.start(T0)
    return judge


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("delay 200ms", {"action": "delay", "low_s": 0.2, "high_s": 0.2}),
        ("delay 1.5s", {"low_s": 1.5, "high_s": 1.5}),
        ("delay 50-400ms", {"low_s": 0.05, "high_s": 0.4}),
        ("delay 500ms-2s", {"low_s": 0.5, "high_s": 2.0}),
        ("drop rate=0.1", {"action": "drop", "rate": 0.1}),
        ("drop channel=heartbeat", {"channel": "heartbeat", "kind": None}),
        ("drop kind=trial*", {"kind": "trial*"}),
        ("duplicate rate=0.05", {"action": "duplicate", "rate": 0.05}),
        ("corrupt rate=0.01 direction=out", {"action": "corrupt", "direction": "out"}),
        ("disconnect after=30s", {"action": "disconnect", "after_s": 30.0, "every_s": None}),
        ("disconnect every=60s", {"every_s": 60.0, "after_s": None}),
        ("stall channel=heartbeat after=10s for=20s", {"action": "stall", "after_s": 10.0, "for_s": 20.0}),
        ("drop from=10s until=40s", {"from_s": 10.0, "until_s": 40.0}),
        ("  drop   rate=1  ", {"text": "drop   rate=1", "rate": 1.0}),
    ],
)
def test_a_rule_parses_into_its_fields(text: str, fields: dict[str, object]) -> None:
    rule = parse_rule(text)
    assert {name: getattr(rule, name) for name in fields} == fields


def test_a_rule_without_a_window_is_on_for_ever() -> None:
    rule = parse_rule("drop")
    assert (rule.from_s, rule.until_s, rule.rate) == (0.0, math.inf, 1.0)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "a rule starts with an action (delay, drop"),
        ("delai 200ms", "unknown action delai (did you mean delay?)"),
        ("explode", "unknown action explode (actions: delay, drop"),
        ("drop rat=0.1", "unknown key rat (did you mean rate?)"),
        ("drop colour=red", "unknown key colour (keys of drop: direction, channel"),
        ("delay 200ms every=10s", "every= does not apply to delay"),
        ("disconnect channel=heartbeat after=1s", "channel= does not apply to disconnect"),
        ("drop after=5s", "after= does not apply to drop"),
        ("drop heartbeat", "heartbeat is not KEY=VALUE"),
        ("drop channel=", "channel= needs a value"),
        ("drop channel=a channel=b", "channel= given twice"),
        ("delay", "delay needs how long"),
        ("delay rate=0.5", "delay needs how long"),
        ("delay 200", "a duration needs its unit: 200ms or 200s"),
        ("delay soon", "not a duration"),
        ("delay -5ms", "a duration from 0 and at most a day"),
        ("delay 2d", "not a duration"),
        ("delay infs", "at most a day"),
        ("delay nanms", "at most a day"),
        ("delay 86401s", "at most a day (86400s)"),
        ("delay 400-50ms", "the shortest delay is longer than the longest"),
        ("drop rate=1.5", "rate=1.5: a chance from 0 to 1"),
        ("drop rate=-0.1", "a chance from 0 to 1"),
        ("drop rate=nan", "a chance from 0 to 1"),
        ("drop rate=often", "a chance from 0 to 1"),
        ("drop direction=up", "direction=up: in (from upstream) or out (to upstream)"),
        ("drop direction=ini", "(did you mean in?)"),
        ("drop from=20s until=10s", "until=10s is not after from=20s"),
        ("drop until=0s", "until=0s is not after from=0s"),
        ("drop from=-1s", "from=-1s: a duration from 0"),
        ("disconnect", "disconnect needs when: after=30s (once), every=60s, or both"),
        ("disconnect from=5s", "disconnect needs when"),
        ("disconnect every=0s", "every=0s: a duration longer than 0"),
        ("stall channel=heartbeat after=10s", "stall needs how long: for=20s"),
        ("stall for=0s", "for=0s: a duration longer than 0"),
        ("stall for=5s every=10s", "every= does not apply to stall"),
    ],
)
def test_nonsense_is_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_rule(text)
    message = str(refused.value)
    assert says in message
    assert message.startswith(f"{text.strip()!r}: ")
    assert "\n" not in message


def test_a_faults_file_skips_comments_and_blank_lines() -> None:
    text = "# the flaky link\n\ndelay 50-400ms  # jitter\n   \ndrop channel=heartbeat from=10s until=40s\n"
    rules = parse_rules(text, "faults.txt")
    assert [rule.text for rule in rules] == ["delay 50-400ms", "drop channel=heartbeat from=10s until=40s"]


def test_a_hash_inside_a_word_is_no_comment() -> None:
    [rule] = parse_rules("drop channel=sensors/#  # all of them\n", "faults.txt")
    assert rule.channel == "sensors/#"


def test_a_faults_file_error_names_its_source_and_line() -> None:
    with pytest.raises(ValueError, match=r"^faults\.txt:3: 'drop rat=0\.1': unknown key rat") as refused:
        parse_rules("drop\n# fine so far\ndrop rat=0.1\n", "faults.txt")
    assert "\n" not in str(refused.value)


def test_an_empty_faults_file_has_no_rules() -> None:
    assert parse_rules("# nothing yet\n\n", "faults.txt") == []


# --- judging ------------------------------------------------------------------------------------


def test_no_rules_is_the_fast_path() -> None:
    judge = Faults()
    assert not judge.active
    assert judge.judge("in", [msg()], T0) is None
    assert judge.next_disconnect(T0) is None


def test_each_action_has_its_verdict() -> None:
    assert faults("drop").judge("in", [msg()], T0 + 1) == Verdict("dropped", drop=True)
    assert faults("delay 200ms").judge("in", [msg()], T0 + 1) == Verdict("delayed 200.0 ms", delay_s=0.2)
    assert faults("duplicate").judge("in", [msg()], T0 + 1) == Verdict("duplicated", copies=2)
    assert faults("corrupt").judge("in", [msg()], T0 + 1) == Verdict("corrupted", corrupt=True)
    stalled = faults("stall after=10s for=20s").judge("in", [msg()], T0 + 12)
    assert stalled == Verdict("stalled", delay_s=pytest.approx(18.0), stalled=True)


def test_a_jittered_delay_is_drawn_within_its_range_and_labelled_with_it() -> None:
    judge = faults("delay 50-400ms")
    verdicts = [judge.judge("out", [msg()], T0 + 1) for _ in range(200)]
    delays = [verdict.delay_s for verdict in verdicts if verdict is not None]
    assert len(delays) == 200 and all(0.05 <= delay <= 0.4 for delay in delays)
    assert len(set(delays)) > 100  # drawn, not fixed
    first = verdicts[0]
    assert first is not None and first.label == f"delayed {first.delay_s * 1000:.1f} ms"


def test_direction_channel_and_kind_pick_the_frames() -> None:
    judge = faults("drop direction=in channel=heart* kind=beat")
    assert judge.judge("in", [msg("heartbeat", "beat")], T0) is not None
    assert judge.judge("out", [msg("heartbeat", "beat")], T0) is None
    assert judge.judge("in", [msg("events", "beat")], T0) is None
    assert judge.judge("in", [msg("heartbeat", "trialStarted")], T0) is None


def test_channel_and_kind_must_match_the_same_message_of_a_frame() -> None:
    judge = faults("drop channel=heartbeat kind=beat")
    assert judge.judge("in", [msg("heartbeat", "other"), msg("events", "beat")], T0) is None
    assert judge.judge("in", [msg("events", "x"), msg("heartbeat", "beat")], T0) is not None


def test_a_kind_that_is_a_number_matches_as_text_and_globs_keep_case() -> None:
    assert faults("drop kind=4?").judge("in", [msg(kind=42)], T0) is not None
    assert faults("drop kind=[0-3]*").judge("in", [msg(kind=42)], T0) is None
    assert faults("drop channel=Heart*").judge("in", [msg("heartbeat")], T0) is None


def test_a_frame_with_no_message_meets_only_rules_without_channel_or_kind() -> None:
    assert faults("drop channel=*").judge("in", [], T0) is None
    assert faults("drop kind=*").judge("in", [], T0) is None
    assert faults("drop direction=in").judge("in", [], T0) is not None


def test_a_window_opens_at_from_and_closes_at_until() -> None:
    judge = faults("drop from=10s until=40s")
    seen = {at: judge.judge("in", [msg()], T0 + at) is not None for at in (0, 9.99, 10, 39.99, 40, 100)}
    assert seen == {0: False, 9.99: False, 10: True, 39.99: True, 40: False, 100: False}


def test_a_stall_holds_frames_until_it_ends() -> None:
    judge = faults("stall channel=heartbeat after=10s for=20s")
    assert judge.judge("in", [msg("heartbeat")], T0 + 9.9) is None
    at_10, at_25 = (judge.judge("in", [msg("heartbeat")], T0 + at) for at in (10, 25))
    assert at_10 is not None and at_10.delay_s == pytest.approx(20.0) and at_10.label == "stalled"
    assert at_25 is not None and at_25.delay_s == pytest.approx(5.0)
    assert judge.judge("in", [msg("heartbeat")], T0 + 30) is None
    assert judge.judge("in", [msg("events")], T0 + 15) is None


def test_a_stall_without_after_starts_with_the_run() -> None:
    verdict = faults("stall for=5s").judge("in", [msg()], T0 + 1)
    assert verdict is not None and verdict.delay_s == pytest.approx(4.0)


def test_a_rate_picks_about_that_share_of_the_frames() -> None:
    judge = faults("drop rate=0.1")
    dropped = sum(judge.judge("in", [msg()], T0) is not None for _ in range(10_000))
    assert 800 < dropped < 1200
    assert all(faults("drop rate=0").judge("in", [msg()], T0) is None for _ in range(100))


def test_the_same_seed_gives_the_same_verdicts() -> None:
    rules = ("drop rate=0.2", "delay 10-500ms rate=0.5", "duplicate rate=0.1", "corrupt rate=0.05")

    def run(seed: int) -> list[Verdict | None]:
        judge = faults(*rules, seed=seed)
        return [judge.judge("in" if n % 3 else "out", [msg()], T0 + n / 10) for n in range(500)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_drop_wins_over_every_other_rule() -> None:
    judge = faults("delay 200ms", "duplicate", "drop channel=heartbeat")
    assert judge.judge("in", [msg("heartbeat")], T0) == Verdict("dropped", drop=True)


def test_rules_add_up_in_the_order_given() -> None:
    judge = faults("delay 200ms", "stall after=0s for=10s", "duplicate", "corrupt", "delay 100ms", "duplicate")
    verdict = judge.judge("in", [msg()], T0 + 4)
    assert verdict == Verdict(
        "delayed 200.0 ms, stalled, duplicated, corrupted, delayed 100.0 ms, duplicated",
        delay_s=pytest.approx(6.3),
        copies=3,
        corrupt=True,
        stalled=True,
    )


def test_disconnect_rules_touch_no_frame() -> None:
    judge = faults("disconnect every=1s")
    assert judge.active  # a runner still asks: its cut_when_due runs on the same Faults
    assert judge.judge("in", [msg()], T0 + 5) is None


# --- disconnects --------------------------------------------------------------------------------


def cuts(judge: Faults, until: float) -> list[float]:
    """The disconnect times, from the start, as cut_when_due would follow them."""
    seen, now = [], T0
    while (due := judge.next_disconnect(now)) is not None and due - T0 <= until:
        assert due > now
        seen.append(round(due - T0, 6))
        now = due
    return seen


def test_disconnect_after_cuts_once() -> None:
    assert cuts(faults("disconnect after=30s"), 1000) == [30.0]
    assert faults("disconnect after=30s").next_disconnect(T0 + 30) is None


def test_disconnect_every_cuts_on_a_period_from_the_start() -> None:
    assert cuts(faults("disconnect every=60s"), 300) == [60.0, 120.0, 180.0, 240.0, 300.0]


def test_disconnect_after_and_every_cut_first_at_after_then_on_the_period() -> None:
    assert cuts(faults("disconnect after=10s every=60s"), 200) == [10.0, 70.0, 130.0, 190.0]


def test_disconnect_keeps_to_its_window() -> None:
    assert cuts(faults("disconnect every=60s from=100s until=300s"), 1000) == [120.0, 180.0, 240.0]
    assert cuts(faults("disconnect after=30s from=40s"), 1000) == []


def test_the_next_disconnect_is_the_soonest_of_all_rules_and_strictly_after_now() -> None:
    judge = faults("disconnect every=0.05s", "disconnect after=0.07s")
    assert cuts(judge, 0.2) == [0.05, 0.07, 0.1, 0.15, 0.2]
    assert judge.next_disconnect(T0 + 0.1) == pytest.approx(T0 + 0.15)
    assert judge.next_disconnect(T0 - 5) == pytest.approx(T0 + 0.05)


def test_next_disconnect_is_cheap_however_late_it_is_asked() -> None:
    judge = faults("disconnect every=1ms")
    assert judge.next_disconnect(T0 + 80_000.0005) == pytest.approx(T0 + 80_000.001)


# --- corrupt_frame ------------------------------------------------------------------------------


def undecodable(body: str | bytes) -> bool:
    for decode in (json.loads, lambda data: loads(data, 64), pickle.loads):
        try:
            decode(body)  # type: ignore[operator]
        except Exception:  # noqa: BLE001  any refusal will do
            continue
        return False
    return True


@pytest.mark.parametrize(
    "frame",
    [
        '{"channel": "events", "kind": "trialStarted", "payload": [1, 2, 3]}',
        "12345",
        "",
        b'{"channel": "events", "payload": {"n": 1}}',
        b"7",
        pickle.dumps({"method": "status", "args": [1, 2.5, "x"]}, protocol=4),
        pickle.dumps(("call", 1), protocol=0),
        pickle.dumps(12345678, protocol=2),
    ],
)
def test_a_corrupted_body_decodes_as_nothing_and_keeps_its_type(frame: str | bytes) -> None:
    corrupted = corrupt_frame(frame)
    assert type(corrupted) is type(frame)
    assert corrupted != frame
    assert corrupted[: len(frame) // 2] == frame[: len(frame) // 2]
    assert undecodable(corrupted)


def test_a_corrupted_multipart_frame_keeps_its_parts_and_cuts_the_last() -> None:
    body = pickle.dumps({"n": 1})
    corrupted = corrupt_frame((b"events", b"", body))
    assert isinstance(corrupted, tuple) and len(corrupted) == 3
    assert corrupted[:2] == (b"events", b"")
    assert corrupted[2].startswith(body[: len(body) // 2]) and undecodable(corrupted[2])


def test_an_empty_multipart_frame_stays_empty() -> None:
    assert corrupt_frame(()) == ()


def test_a_rule_is_plain_data() -> None:
    assert parse_rule("drop rate=0.5") == parse_rule("drop rate=0.5")
    assert isinstance(parse_rule("drop"), Rule)


# --- docs/faults.md -----------------------------------------------------------------------------

FAULTS_MD = Path(__file__).resolve().parents[3] / "docs" / "faults.md"


def text_blocks() -> list[list[str]]:
    blocks = re.findall(r"^```text\n(.*?)^```", FAULTS_MD.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    return [block.splitlines() for block in blocks]


def test_the_rules_docs_faults_md_shows_parse() -> None:
    rules = [line for block in text_blocks()[:2] for line in block]
    assert len(parse_rules("\n".join(rules), "docs/faults.md")) == len([r for r in rules if not r.startswith("#")])


def test_the_mistakes_docs_faults_md_shows_read_as_shown() -> None:
    """As the CLI shows them: `--fault` before a rule's error, `--faults` before a file's."""
    *_, mistakes = text_blocks()
    for shown in mistakes:
        in_file = re.fullmatch(r"fieldctl: --faults (faults\.txt):(\d+): '(.*?)': .*", shown)
        given = re.fullmatch(r"fieldctl: --fault '(.*?)': .*", shown)
        with pytest.raises(ValueError) as refused:
            if in_file:
                parse_rules("drop\n" * (int(in_file[2]) - 1) + in_file[3], in_file[1])
            else:
                assert given is not None, shown
                parse_rule(given[1])
        assert f"fieldctl: --fault{'s' if in_file else ''} {refused.value}" == shown
