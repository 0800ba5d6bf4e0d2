"""`fieldctl bench`: command and listen against simulators of several profiles, through client
sessions and the control path; --json parsed, --csv parsed, and the usage errors."""

from __future__ import annotations

import csv
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldctl.cli.roles.latency import NEEDED
from tests.helpers.autotrainer import Device
from tests.helpers.fleets import ENV, endpoint_args, endpoint_urls, endpoints, start_device
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, invoke, run_cli
from tests.helpers.vantiq import start_connector, start_server

FIGURES = {"min", "p50", "p90", "p99", "p99.9", "max", "mean"}


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fcbench", dir="/tmp") as path:  # short: Unix socket paths
        yield Path(path)


def bench(*args: str, env: dict[str, str] = ENV) -> dict[str, Any]:
    result = run_cli("bench", *args, "--json", env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = result.stdout.splitlines()
    return json.loads(line)


def well_formed(figures: dict[str, Any], samples: int) -> None:
    """Every figure that enough samples stand behind, in order; none of those too few stand behind."""
    assert set(figures) == FIGURES
    names = ("min", "p50", "p90", "p99", "p99.9", "max")
    assert [name for name in names if figures[name] is None] == [name for name in names if samples < NEEDED[name]]
    ordered = [figures[name] for name in names if figures[name] is not None]
    assert ordered == sorted(ordered) and ordered[0] > 0


# A tracim client is its process's one client socket: one client per process.
@pytest.mark.parametrize(
    "profile, command, clients", [("autotrainer", "get-status", 3), ("tracim", "ping", 1), ("oneliner", "version", 3)]
)
def test_command_through_sessions(profile: str, command: str, clients: int, folder: Path) -> None:
    urls = endpoint_urls(profile, folder)
    device = start_device(profile, urls)
    samples = folder / "samples.csv"
    where = endpoint_args(urls)
    result = bench(
        profile, "command", command, "--clients", str(clients), "--requests", "30", "--csv", str(samples), *where
    )
    device.stop()
    assert (result["target"], result["profile"], result["mode"], result["command"]) == (
        profile,
        profile,
        "command",
        command,
    )
    assert (result["requests"], result["ok"], result["failed"], result["errors"]) == (30, 30, 0, 0)
    assert result["clients"] == clients and result["per_second"] > 0
    assert result["latency_samples"] == 30
    well_formed(result["latency_s"], 30)
    assert result["latency_s"]["p90"] is not None and result["latency_s"]["p99"] is None  # 30: too few for p99
    with samples.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30 and {row["client"] for row in rows} == {str(n) for n in range(clients)}
    assert all(row["ok"] == "true" and float(row["latency_s"]) > 0 for row in rows)
    assert max(float(row["latency_s"]) for row in rows) == pytest.approx(result["latency_s"]["max"])


def test_a_terminal_gets_a_progress_bar_and_a_summary(terminals, folder: Path) -> None:
    urls = endpoint_urls("autotrainer", folder)
    device = start_device("autotrainer", urls)
    term = terminals(
        [
            *FIELDCTL,
            "bench",
            "autotrainer",
            "command",
            "get-status",
            "--duration",
            "1.5",
            "--rate",
            "20",
            *endpoint_args(urls),
        ],
        env=ENV,
    )
    term.wait_for(lambda text: "━" in text and "/1.5 s" in text)  # the bar, while it runs
    assert term.wait() == 0
    device.stop()
    summary = term.text[term.text.rindex("bench autotrainer command get-status: ") :]
    assert "answers per second" in summary and " p99.9 " in summary
    # About 30 answers: the summary says how many samples, and which percentiles they are too few for.
    assert re.search(r"latency \((\d+) samples\): min ", summary), summary
    assert "p99 needs 100, p99.9 needs 1,000 samples" in " ".join(summary.split())


def test_the_default_run_is_long_enough_for_its_percentiles(folder: Path) -> None:
    """No --requests or --duration: 5 s of requests, not a handful; each percentile shown rests on
    enough samples (capped by --rate so the test costs little CPU)."""
    urls = endpoint_urls("autotrainer", folder)
    device = start_device("autotrainer", urls)
    result = bench("autotrainer", "command", "get-status", "--rate", "300", *endpoint_args(urls))
    device.stop()
    assert 5 <= result["duration_s"] < 8 and result["ok"] == result["requests"] > 100
    assert result["latency_samples"] == result["ok"]
    well_formed(result["latency_s"], result["latency_samples"])


def test_duration_and_rate_pace_the_requests(folder: Path) -> None:
    urls = endpoint_urls("autotrainer", folder)
    device = start_device("autotrainer", urls)
    where = endpoint_args(urls)
    result = bench("autotrainer", "command", "get-status", "--duration", "1", "--rate", "20", "--clients", "2", *where)
    device.stop()
    assert 10 <= result["requests"] <= 21 and result["ok"] == result["requests"]
    assert 0.9 <= result["duration_s"] < 3


def test_listen_of_a_saved_target(folder: Path, tmp_path: Path) -> None:
    env = {**ENV, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    urls = endpoint_urls("autotrainer", folder)
    device = start_device("autotrainer", urls, "--set", "simulate.event_interval_s=0.05")
    where = endpoint_args(urls)
    assert run_cli("target", "add", "rig-3", "autotrainer", *where, env=env).returncode == 0
    samples = folder / "arrivals.csv"
    result = bench("rig-3", "listen", "--duration", "1.5", "--csv", str(samples), env=env)
    device.stop()
    assert (result["target"], result["profile"], result["mode"], result["malformed"]) == (
        "rig-3",
        "autotrainer",
        "listen",
        0,
    )
    assert result["messages"] >= 10 and result["per_second"] == pytest.approx(result["messages"] / 1.5)
    assert result["interval_samples"] == result["messages"] - 1
    well_formed(result["interval_s"], result["interval_samples"])
    with samples.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result["messages"] and rows[0]["interval_s"] == "" and float(rows[1]["interval_s"]) > 0
    assert {row["malformed"] for row in rows} == {"false"}


def test_server_side_commands_go_through_the_control_path(workdir: Path) -> None:
    server, url = start_server(workdir)
    connector = start_connector(workdir, url)
    connector.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "ready")
    result = bench(
        "vantiq",
        "command",
        "query",
        "--data",
        '{"params": {}}',
        "--via",
        str(workdir / "ctl.sock"),
        "--requests",
        "10",
        "--clients",
        "2",
    )
    connector.stop()
    server.stop()
    assert (result["requests"], result["ok"], result["errors"]) == (10, 10, 0)
    well_formed(result["latency_s"], 10)


def test_sepl_commands_through_its_platform(folder: Path) -> None:
    urls = endpoint_urls("sepl", folder)
    control = str(folder / "ctl.sock")
    platform = start_device("sepl", urls, "--control", control)
    connector = Proc(
        [
            *FIELDCTL,
            "register",
            "sepl",
            "--json",
            *endpoint_args(urls),
            "--store",
            str(folder / "devices.sqlite"),
            "--device",
            "dev-1:iot#type-lamp:Lamp 1",
        ],
        env=ENV,
    )
    connector.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "ready")
    result = bench("sepl", "command", "dev-1:sepl_set", "--data", "1", "--via", control, "--requests", "10")
    connector.stop()
    platform.stop()
    assert (result["requests"], result["ok"], result["errors"]) == (10, 10, 0)


def test_the_roles_protocol_options_are_taken(folder: Path) -> None:
    """bench plays command or listen: it takes their protocol options, each only in its own mode."""
    urls = endpoint_urls("autotrainer", folder)
    device = start_device("autotrainer", urls)
    result = run_cli(
        "bench",
        "autotrainer",
        "command",
        "user-defined",
        "--custom-command",
        "7",
        "--requests",
        "3",
        "--json",
        *endpoint_args(urls),
        env=ENV,
    )
    device.stop()
    # Sent and answered (the simulated device runs no user-defined command: each answer is a failure).
    assert result.returncode == 1, result.stderr
    assert {key: json.loads(result.stdout)[key] for key in ("requests", "failed", "errors")} == {
        "requests": 3,
        "failed": 3,
        "errors": 0,
    }


def test_no_client_command_is_a_clear_usage_error(folder: Path) -> None:
    result = run_cli("bench", "sepl", "command", "dev-1:sepl_set", *endpoints("sepl", folder), env=ENV)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "simulate sepl --control SOCKET" in result.stderr and result.stderr.count("--via SOCKET") == 1


def test_a_failing_command_exits_1(folder: Path) -> None:
    urls = endpoint_urls("oneliner", folder)
    device = start_device("oneliner", urls)
    result = run_cli(
        "bench", "oneliner", "command", "call", "counter.fail", "--requests", "4", "--json", *endpoint_args(urls)
    )
    device.stop()
    assert result.returncode == 1, result.stdout + result.stderr
    assert {key: json.loads(result.stdout)[key] for key in ("requests", "ok", "failed", "errors")} == {
        "requests": 4,
        "ok": 0,
        "failed": 4,
        "errors": 0,
    }


def test_an_unreachable_device_exits_3() -> None:
    port = free_port()
    down = run_cli(
        "bench",
        "autotrainer",
        "command",
        "get-status",
        "--timeout",
        "2",
        "--endpoint",
        f"events=tcp://127.0.0.1:{port}",
        "--endpoint",
        f"commands=tcp://127.0.0.1:{port}",
    )
    assert down.returncode == 3 and down.stderr.count("\n") == 1 and "cannot connect" in down.stderr


def test_listen_to_silence_exits_4(device: Device) -> None:
    """A publisher that is there and sends nothing: the test's own, so no heartbeat can come."""
    result = run_cli("bench", "autotrainer", "listen", "--duration", "1", "--json", *device.args, env=ENV)
    assert result.returncode == 4, result.stderr
    assert json.loads(result.stdout)["messages"] == 0


@pytest.mark.parametrize(
    "args, problem",
    [
        (("autotrainer", "command", "get-status", "--requests", "5", "--duration", "1"), "give one of them"),
        (("autotrainer", "command"), "name the command"),
        (("autotrainer", "listen", "--clients", "2"), "bench listen takes --duration only"),
        (("autotrainer", "watch"), "not a mode"),
        (("autotrainer", "listen", "--custom-command", "7"), "--custom-command is not a listen option"),
        (("autotrainer", "command", "no-such-command", "--requests", "1"), "unknown command 'no-such-command'"),
    ],
)
def test_usage_errors(args: tuple[str, ...], problem: str) -> None:
    result = invoke("bench", *args)  # in this process: refused before any socket opens
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and problem in result.stderr, result.stderr
