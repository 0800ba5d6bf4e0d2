"""`fieldctl listen --fleet FILE` against a fleet of real simulators of two profiles plus a target
nobody serves: NDJSON lines tagged with their target, the filters (target= too), --count and the
exit codes, and the board on a real pseudo-terminal."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

from tests.helpers.fleets import DOWN, LIVE, simulate_devices
from tests.helpers.processes import FIELDCTL, Proc, cli_env, invoke, run_cli
from tests.helpers.terminals import assert_nothing_obeyed, last_frame


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_every_line_names_its_target_and_a_down_target_leaves_the_rest_streaming(fleet) -> None:
    result = run_cli("listen", "--fleet", str(fleet.path), "--json", "--duration", "6.5")
    assert result.returncode == 0, result.stderr
    got = lines(result.stdout)
    assert got and all(next(iter(m)) == "target" for m in got)  # the target comes first on every line
    data = [m for m in got if m["channel"] != "link"]
    profiles = {m["target"]: m["profile"] for m in data}
    assert profiles == {"rig-1": "autotrainer", "rig-2": "autotrainer", "one": "oneliner"}
    for name in LIVE:  # each live target streamed all along, also after the down one was given up on
        assert sum(m["target"] == name for m in data) >= 5, name
        assert max(m["ts"] for m in data if m["target"] == name) > max(m["ts"] for m in got if m["target"] == DOWN)
    assert {m["kind"] for m in data if m["target"] == "rig-1"} >= {"heartbeat"}
    down = [m for m in got if m["target"] == DOWN]
    assert down and all(m["channel"] == "link" for m in down)
    assert "retrying" in {m["kind"] for m in down}
    # Refused for LISTEN_REFUSED_AFTER_S (5 s): one warning line naming the target, then retried.
    warnings = [line for line in result.stderr.splitlines() if line.startswith(f"warning: {DOWN}: down:")]
    assert len(warnings) == 1 and "connection refused" in warnings[0] and "Traceback" not in result.stderr


def test_filter_target_and_count(fleet) -> None:
    result = run_cli(
        "listen",
        "--fleet",
        str(fleet.path),
        "--json",
        "--filter",
        "target=rig-2",
        "--filter",
        "channel=event",
        "--count",
        "3",
        "--timeout",
        "20",
    )
    assert result.returncode == 0, result.stderr
    data = [m for m in lines(result.stdout) if m["channel"] != "link"]
    assert len(data) == 3 and {(m["target"], m["channel"]) for m in data} == {("rig-2", "event")}
    assert {m["target"] for m in lines(result.stdout)} == {"rig-2"}  # the others are not even followed


def test_filter_target_and_group_take_globs(fleet) -> None:
    for spec, wanted in (("target=rig-*", {"rig-1", "rig-2"}), ("group=room-[1]", {"rig-1", "rig-2"})):
        result = run_cli(
            "listen", "--fleet", str(fleet.path), "--filter", spec, "--json", "--count", "8", "--timeout", "20"
        )
        assert result.returncode == 0, result.stderr
        assert {m["target"] for m in lines(result.stdout)} == wanted, spec


def test_group_picks_its_targets(fleet) -> None:
    result = run_cli(
        "listen", "--fleet", str(fleet.path), "--group", "room-1", "--json", "--count", "8", "--timeout", "20"
    )
    assert result.returncode == 0, result.stderr
    assert {m["target"] for m in lines(result.stdout)} == {"rig-1", "rig-2"}


def test_a_default_target_does_not_stand_in_the_way_of_a_fleet(fleet) -> None:
    """$FIELDCTL_TARGET fills in a PROFILE left out; with --fleet none was given, so none clashes."""
    env = cli_env(FIELDCTL_TARGET="rig-1")
    result = run_cli(
        "listen", "--fleet", str(fleet.path), "--group", "room-1", "--json", "--count", "4", "--timeout", "20", env=env
    )
    assert result.returncode == 0, result.stderr
    assert {m["target"] for m in lines(result.stdout)} <= {"rig-1", "rig-2"}
    probed = run_cli("probe", "--fleet", str(fleet.path), "--group", "room-1", "--crit", "8", env=env)
    assert probed.returncode == 0, probed.stdout + probed.stderr
    typed = run_cli("listen", "rig-1", "--fleet", str(fleet.path), env=env)
    assert typed.returncode == 2 and "not both" in typed.stderr


def test_timeout_and_idle_exit_4(fleet) -> None:
    timed = run_cli(
        "listen",
        "--fleet",
        str(fleet.path),
        "--json",
        "--filter",
        "kind=never-sent",
        "--count",
        "1",
        "--timeout",
        "1.5",
    )
    assert timed.returncode == 4 and "received 0 of 1 messages within 1.5 s" in timed.stderr
    idle = run_cli(
        "listen", "--fleet", str(fleet.path), "--group", "room-2", "--filter", "target=gone", "--json", "--idle", "1"
    )
    assert idle.returncode == 4 and "no message for 1 s" in idle.stderr


def test_usage_errors_are_one_line_and_exit_2(fleet, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[targets.rig-9]\nprofile = "nosuch"\n')
    for args, text in (
        (["listen", "--fleet", str(broken)], "targets.rig-9: unknown profile 'nosuch'"),
        (["listen", "autotrainer", "--fleet", str(fleet.path)], "not both"),
        (["listen", "--group", "room-1"], "--group needs --fleet"),
        (["listen"], "missing PROFILE"),
        (["listen", "--fleet", str(fleet.path), "--filter", "target=nobody"], "no such target"),
        (["listen", "--fleet", str(fleet.path), "--filter", "target=rig-9"], "no such target in"),
        (["listen", "--fleet", str(fleet.path), "--filter", "target=rig-9*"], "(did you mean rig-"),
        (["listen", "--fleet", str(fleet.path), "--filter", "group=room-9*"], "no such group in"),
        (["listen", "--fleet", str(fleet.path), "--group", "room-9"], "no target in group"),
        (["listen", "--fleet", str(fleet.path), "--endpoint", "events=tcp://127.0.0.1:1"], "does not apply"),
        (["listen", "--fleet", str(fleet.path.parent / "missing.toml")], "missing.toml"),
    ):
        result = invoke(*args, "--json")  # in this process: refused before any socket opens
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and text in result.stderr, (args, result.stderr)


def test_the_board_shows_a_row_per_target_above_the_feed(fleet, terminals) -> None:
    term = terminals([*FIELDCTL, "listen", "--fleet", str(fleet.path)], rows=40)
    title = f"fieldctl listen --fleet {fleet.path}"

    def ready(text: str) -> bool:
        if title not in text:
            return False
        frame = last_frame(text, title)
        # the rigs linked and their heartbeats heard (an age, not "none yet")
        return (
            all(re.search(rf"{name}\s+ready\s+autotrainer\s+room-1\s+\d+\.\d s", frame) for name in ("rig-1", "rig-2"))
            and re.search(r"one\s+ready\s+oneliner", frame) is not None
            and re.search(r"gone\s+down\s+autotrainer.*✗ refused since \d\d:\d\d:\d\d: cannot connect", frame)
            is not None
        )

    frame = last_frame(term.wait_for(ready), title)
    assert "4 targets  3 up  1 down" in frame
    assert "msg/s" in frame and "malformed" in frame and "errors" in frame
    # The down target comes first; the feed below shows events of the live ones, tagged.
    assert frame.index("gone") < frame.index("rig-1")
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3}\s+rig-\d\s+←\s+event", frame), frame
    assert_nothing_obeyed(term.raw)
    assert term.stop() == 0


def test_a_fleet_file_written_just_after_the_reader_starts_is_waited_for(tmp_path: Path) -> None:
    """`simulate --devices N --write-fleet FILE &` and then `listen --fleet FILE` in a script: the
    file appears once the devices are up, after the reader has started."""
    written = tmp_path / "autotrainer.toml"
    reader = Proc([*FIELDCTL, "listen", "--fleet", str(written), "--json", "--count", "2", "--timeout", "60"])
    devices, _ = simulate_devices("autotrainer", 2, tmp_path)
    try:
        assert reader.wait(60) == 0, reader.output()
    finally:
        reader.stop()
        devices.stop()


def test_the_reader_waits_for_the_fleet_file_a_while_and_no_longer(tmp_path: Path) -> None:
    from fieldctl.cli.fleet.follower import written
    from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S

    late = tmp_path / "late.toml"
    threading.Timer(0.3, late.write_text, args=("[targets]\n",)).start()  # after the reader looked
    assert written(late).exists()
    started = time.monotonic()
    assert not written(tmp_path / "never.toml").exists()
    assert LISTEN_REFUSED_AFTER_S <= time.monotonic() - started < LISTEN_REFUSED_AFTER_S + 2
