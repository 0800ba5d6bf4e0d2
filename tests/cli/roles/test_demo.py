"""`fieldctl demo`: the profile overrides every subcommand takes, NDJSON on a pipe, and the private
addresses it keeps (only a broker's endpoint may be pointed elsewhere), in real subprocesses."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.ports import free_port
from tests.helpers.processes import cli_env, lines_of, one_line, run_cli


def demo(*args: str, env: dict[str, str] | None = None) -> list[dict]:
    result = run_cli("demo", *args, "--duration", "3", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return lines_of(result.stdout)  # every line JSON: a pipe gets NDJSON, not the table


def test_on_a_pipe_the_demo_writes_ndjson_with_the_lines_overrides() -> None:
    lines = demo("--set", "simulate.identifier=rig-x")
    beats = [line for line in lines if line["channel"] == "heartbeat"]
    assert beats and {beat["payload"]["identifier"] for beat in beats} == {"rig-x"}, "the simulator has it too"
    assert any(line["channel"] == "link" and line["kind"] == "ready" for line in lines)


def test_a_profile_file_is_demonstrated(tmp_path: Path) -> None:
    rig = tmp_path / "rig9.toml"
    rig.write_text('extends = "autotrainer"\nname = "rig9"\n')
    lines = demo("rig9", "--profile-file", str(rig), env=cli_env(XDG_CONFIG_HOME=str(tmp_path)))
    assert lines and {line["profile"] for line in lines} == {"rig9"}


def test_a_brokers_endpoint_is_where_both_sides_meet() -> None:
    """autotrainer's simulator binds whatever it is given: marked a broker's, the events endpoint
    stays where --endpoint points, and the client reaches it there."""
    url = f"tcp://127.0.0.1:{free_port()}"
    lines = demo("--set", "topology.events=broker", "--endpoint", f"events={url}")
    assert any(line["kind"] == "connected" and line["payload"]["url"] == url for line in lines)
    assert any(line["channel"] == "event" for line in lines)


def test_the_private_endpoints_are_not_the_lines_to_move() -> None:
    moved = run_cli("demo", "--endpoint", "events=tcp://127.0.0.1:9", "--duration", "1")
    assert moved.returncode == 2
    assert one_line(moved.stderr) == (
        "fieldctl: --endpoint events: demo puts events on a private address of its own; "
        "--endpoint may move a broker's endpoint only (autotrainer has none)"
    )
    hosted = run_cli("demo", "tracim", "--host", "10.0.0.7", "--duration", "1")
    assert hosted.returncode == 2
    assert "--host: demo puts every endpoint of tracim on a private address" in one_line(hosted.stderr)
    brokered = run_cli(
        "demo", "--set", "topology.events=broker", "--endpoint", "commands=tcp://127.0.0.1:9", "--duration", "1"
    )
    assert brokered.returncode == 2 and "(broker endpoints: events)" in one_line(brokered.stderr)
