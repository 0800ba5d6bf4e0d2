"""Every duration and count a user gives is finite and below its maximum: `inf`, `nan` and
`1e308` (and the like) are a usage error that names the option, on the command line (the shared
parsers of cli/framework/bounded.py), in a protocol's own options, in a profile setting or a
target's `set`, and in a check file; never a wait without end."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldctl.cli.check.checkfile import parse
from fieldctl.profiles import load_profile
from fieldctl.profiles.targets import load_fleet
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.runtime.registry import driver_for
from tests.helpers.processes import invoke, run_cli

ENDLESS = ("inf", "nan", "1e308", "-1")

#: (the line before the value, the option named); none of them gets as far as the network.
OPTIONS = [
    (("listen", "autotrainer", "--timeout"), "--timeout"),
    (("listen", "autotrainer", "--idle"), "--idle"),
    (("listen", "autotrainer", "--duration"), "--duration"),
    (("listen", "autotrainer", "--count"), "--count"),
    (("command", "autotrainer", "get-status", "--timeout"), "--timeout"),
    (("publish", "autotrainer", "event", "--wait"), "--wait"),
    (("simulate", "autotrainer", "--duration"), "--duration"),
    (("demo", "--duration"), "--duration"),
    (("bench", "autotrainer", "get-status", "--duration"), "--duration"),
    (("bench", "autotrainer", "get-status", "--rate"), "--rate"),
    (("bench", "autotrainer", "get-status", "--timeout"), "--timeout"),
    (("bench", "autotrainer", "get-status", "--requests"), "--requests"),
    (("export", "prometheus", "--fleet", "f.toml", "--probe-interval"), "--probe-interval"),
]


@pytest.mark.parametrize("value", ENDLESS)
@pytest.mark.parametrize("line, option", OPTIONS, ids=lambda item: " ".join(item) if isinstance(item, tuple) else "")
def test_an_endless_number_on_the_command_line_is_a_usage_error(line: tuple[str, ...], option: str, value: str) -> None:
    result = invoke(*line, value)
    assert result.returncode == 2, result.stderr
    assert f"Invalid value for '{option}': expected a" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("option", ["--warn", "--crit"])
def test_a_probe_threshold_without_end_is_unknown(option: str) -> None:
    result = invoke("probe", "autotrainer", option, "inf")
    assert result.returncode == 3 and f"Invalid value for '{option}'" in result.stderr


def test_the_largest_values_are_taken() -> None:
    assert invoke("listen", "autotrainer", "--count", "1000000001").returncode == 2
    assert "expected an integer from 1 to 1000000000" in invoke("listen", "autotrainer", "--count", "1e3").stderr


@pytest.mark.parametrize("value", ENDLESS)
def test_a_protocol_option_in_seconds_is_bounded_too(value: str) -> None:
    result = run_cli("simulate", "vantiq", "--reconnect-after", value, "--duration", "0", timeout=30)
    assert result.returncode == 2, result.stderr
    assert "--reconnect-after: expected a number of seconds from 0 to 86400" in result.stderr


@pytest.mark.parametrize("value", ["1e308", "1e400", "Infinity", "NaN", "-1"])
@pytest.mark.parametrize("key", ["heartbeat.interval_s", "simulate.event_interval_s", "simulate.async_delay_s"])
def test_a_profile_duration_from_set_is_bounded(key: str, value: str) -> None:
    with pytest.raises(UsageError, match=key.replace(".", r"\.") + ": expected a number of seconds"):
        driver_for(load_profile("autotrainer", sets=[f"{key}={value}"]), lambda text: None)


@pytest.mark.parametrize("value", ["inf", "nan", "1e308"])
def test_a_duration_in_a_profile_or_fleet_file_is_bounded(tmp_path: Path, value: str) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f'[targets.rig]\nprofile = "autotrainer"\nset = {{ "heartbeat.interval_s" = {value} }}\n')
    with pytest.raises(UsageError, match=r"heartbeat\.interval_s: expected a number of seconds above 0"):
        load_fleet(fleet)["rig"].load()


@pytest.mark.parametrize("value", ["inf", "nan", "1e308", "-inf"])
def test_a_check_files_durations_are_bounded(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(
            f'target = "autotrainer"\ntimeout_s = {value}\n'
            f'[[step]]\nwait_s = {value}\n[[step]]\nevent = {{ channel = "event" }}\nwithin_s = {value}\n'
            f"[[step]]\nprobe = {{ crit = {value} }}\n",
            "c.toml",
        )
    assert str(caught.value).splitlines() == [
        "c.toml: timeout_s: expected a number of seconds above 0, at most 86400",
        "c.toml: step 1: wait_s: expected a number of seconds, at most 86400",
        "c.toml: step 2: within_s: expected a number of seconds above 0, at most 86400",
        "c.toml: step 3: probe.crit: expected a number of seconds, at most 86400",
    ]


@pytest.mark.parametrize("key, value", [("limits.max_frame_bytes", 1 << 40), ("limits.max_depth", 100_000)])
def test_a_profiles_decoding_limits_are_bounded(key: str, value: int) -> None:
    with pytest.raises(UsageError, match=key.replace(".", r"\.") + ": expected a positive integer, at most"):
        load_profile("autotrainer", sets=[f"{key}={value}"])
