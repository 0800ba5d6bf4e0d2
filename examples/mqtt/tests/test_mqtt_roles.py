"""Every role against a real mosquitto: the device simulator and its clients, in real subprocesses."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.helpers.mosquitto import Broker, running_mosquitto
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, lines_of, one_line, run_cli
from tests.helpers.waiting import holds_within


def _link(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["channel"] == "link" and m["kind"] == kind


@pytest.fixture
def simulator(device: list[str], env: dict[str, str]) -> Iterator[Proc]:
    """The device, once it is on the broker."""
    proc = Proc([*FIELDCTL, "simulate", "mqtt", "--json", *device], env=env)
    proc.wait_json(_link("connected"), timeout=20)
    yield proc
    assert proc.stop() == 0
    assert "Traceback" not in proc.stderr_now()


def _listener(device: list[str], env: dict[str, str]) -> Proc:
    """`listen`, once it is on the broker."""
    proc = Proc([*FIELDCTL, "listen", "mqtt", "--json", "--duration", "60", *device], env=env)
    proc.wait_json(_link("connected"), timeout=20)
    return proc


def test_a_listener_hears_the_devices_presence_heartbeats_and_events(
    simulator: Proc, device: list[str], env: dict[str, str]
) -> None:
    listener = _listener(device, env)
    assert listener.wait_json(_link("present"), timeout=20)
    beat = listener.wait_json(lambda m: m["channel"] == "heartbeat", timeout=20)
    assert beat["payload"]["identifier"] == "mqtt-device" and beat["direction"] == "in"
    assert listener.wait_json(lambda m: m["channel"] == "event" and m["kind"] in ("started", "tick"), timeout=20)
    assert listener.stop() == 0


def test_a_device_that_dies_is_absent_by_its_will_and_one_that_stops_clears_its_presence(
    device: list[str], env: dict[str, str]
) -> None:
    for sig in (signal.SIGKILL, signal.SIGTERM):
        proc = Proc([*FIELDCTL, "simulate", "mqtt", "--json", *device], env=env)
        proc.wait_json(_link("connected"), timeout=20)
        listener = _listener(device, env)
        listener.wait_json(_link("present"), timeout=20)
        proc.stop(sig)
        absent = listener.wait_json(_link("absent"), timeout=30)
        assert absent["raw"][1] == ("b2ZmbGluZQ==" if sig == signal.SIGKILL else "")  # base64 of offline, or nothing
        assert listener.stop() == 0


def test_commands_round_trip_with_their_correlation_id(simulator: Proc, device: list[str], env: dict[str, str]) -> None:
    ping = run_cli("command", "mqtt", "ping", *device, "--json", env=env)
    assert ping.returncode == 0, ping.stderr
    request, reply = lines_of(ping.stdout)[-2:]
    assert (request["direction"], reply["direction"], reply["id"]) == ("out", "in", request["id"])
    assert reply["payload"] == {"ok": True, "data": "pong"}
    echo = run_cli("command", "mqtt", "echo", "--data", '{"text": "hi"}', *device, "--json", env=env)
    assert echo.returncode == 0, echo.stderr
    assert lines_of(echo.stdout)[-1]["payload"] == {"ok": True, "data": {"text": "hi"}}
    status = run_cli("command", "mqtt", "get-status", *device, env=env)
    assert status.returncode == 0 and "mqtt-device" in status.stdout, status.stdout + status.stderr


def test_a_command_nobody_answers_times_out(device: list[str], env: dict[str, str]) -> None:
    result = run_cli("command", "mqtt", "ping", *device, "--timeout", "1", env=env)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "no reply to ping within 1 s" in one_line(result.stderr)


def test_a_publication_reaches_a_listener(device: list[str], env: dict[str, str]) -> None:
    listener = _listener(device, env)
    marker = uuid.uuid4().hex
    result = run_cli("publish", "mqtt", "tick", "--data", json.dumps({"marker": marker}), *device, env=env)
    assert result.returncode == 0, result.stderr
    heard = listener.wait_json(lambda m: m["channel"] == "event" and m["payload"] == {"marker": marker}, timeout=20)
    assert heard["kind"] == "tick" and heard["direction"] == "in"
    assert listener.stop() == 0


def test_an_unknown_event_is_refused_before_anything_is_sent(device: list[str], env: dict[str, str]) -> None:
    result = run_cli("publish", "mqtt", "tock", *device, env=env)
    assert result.returncode == 2
    assert "tick" in one_line(result.stderr)


def test_a_recording_replays_as_the_devices_scenario(
    simulator: Proc, device: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    record = tmp_path / "record.ndjson"
    listened = run_cli("listen", "mqtt", *device, "--count", "3", "--timeout", "30", "--record", str(record), env=env)
    assert listened.returncode == 0, listened.stderr
    assert simulator.stop() == 0
    listener = _listener(device, env)
    replay = Proc([*FIELDCTL, "simulate", "mqtt", "--scenario", str(record), "--no-timeline", *device], env=env)
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    event = [m for m in recorded if m["channel"] in ("event", "heartbeat")][-1]
    listener.wait_json(
        lambda m: (m["channel"], m["kind"], m["payload"]) == (event["channel"], event["kind"], event["payload"]),
        timeout=30,
    )
    assert replay.stop() == 0 and listener.stop() == 0


def test_probe_is_ok_with_the_device(simulator: Proc, device: list[str], env: dict[str, str]) -> None:
    result = run_cli("probe", "mqtt", *device, "--crit", "10", "--format", "json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "OK" and "device" in report["summary"]


def test_probe_is_critical_when_the_broker_answers_but_no_device(device: list[str], env: dict[str, str]) -> None:
    result = run_cli("probe", "mqtt", *device, "--crit", "1", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CRITICAL" in result.stdout and "the broker answers but no device" in result.stdout


def test_probe_is_critical_and_listen_exits_3_without_a_broker(env: dict[str, str]) -> None:
    nowhere = f"--endpoint=broker=mqtt://127.0.0.1:{free_port()}"
    probe = run_cli("probe", "mqtt", nowhere, "--crit", "2", env=env)
    assert probe.returncode == 2 and "CRITICAL" in probe.stdout, probe.stdout + probe.stderr
    listen = run_cli("listen", "mqtt", nowhere, env=env)
    assert listen.returncode == 3
    assert "refused" in one_line(listen.stderr)


def test_demo_uses_the_broker_it_is_given(mosquitto: Broker, env: dict[str, str]) -> None:
    """A broker endpoint is never rewritten to a private address: demo's both sides meet there."""
    result = run_cli("demo", "mqtt", f"--endpoint=broker={mosquitto.url}", "--duration", "3", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "heartbeat" in result.stdout


def test_a_simulated_fleet_shares_the_broker_each_device_under_its_own_prefix(
    mosquitto: Broker, env: dict[str, str], tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.toml"
    prefix = f"--set=mqtt.prefix=tests/{uuid.uuid4().hex}"
    sims = Proc(
        [
            *FIELDCTL,
            "simulate",
            "mqtt",
            f"--endpoint=broker={mosquitto.url}",
            prefix,
            "--devices",
            "20",
            "--write-fleet",
            str(fleet),
        ],
        env=env,
    )
    holds_within(lambda: fleet.exists() and sims.popen.poll() is None, 60, "the fleet file")
    listened = run_cli("listen", "--fleet", str(fleet), "--json", "--duration", "8", env=env, timeout=60)
    assert sims.stop() == 0
    heard = {line["payload"]["identifier"] for line in lines_of(listened.stdout) if line["channel"] == "heartbeat"}
    assert len(heard) == 20, heard


def test_the_device_and_its_listener_come_back_after_the_broker_restarts(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    device = [f"--endpoint=broker=mqtt://127.0.0.1:{port}", "--set=heartbeat.interval_s=0.2"]
    with running_mosquitto(tmp_path, port):
        simulator = Proc([*FIELDCTL, "simulate", "mqtt", "--json", *device], env=env)
        simulator.wait_json(_link("connected"), timeout=20)
        listener = _listener(device, env)
        listener.wait_json(_link("present"), timeout=20)
        first = listener.wait_json(lambda m: m["channel"] == "heartbeat", timeout=20)  # a count to go on from
    listener.wait_json(_link("disconnected"), timeout=20)
    simulator.wait_json(_link("disconnected"), timeout=20)
    heard = [json.loads(line) for line in listener.lines]
    last = max((m["payload"]["seq"] for m in heard if m.get("channel") == "heartbeat"), default=first["payload"]["seq"])
    listener.lines.clear()  # only what comes after the restart counts below
    with running_mosquitto(tmp_path, port):
        simulator.wait_json(_link("connected"), timeout=30)
        listener.wait_json(_link("connected"), timeout=30)
        listener.wait_json(_link("present"), timeout=20)
        beat = listener.wait_json(lambda m: m["channel"] == "heartbeat", timeout=20)
        assert beat["payload"]["seq"] > last > 0  # the device went on counting
        assert simulator.stop() == 0 and listener.stop() == 0


async def _publish_raw(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    """What a hostile or broken peer on the broker might send, as it is."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def test_hostile_payloads_are_malformed_messages_and_the_device_keeps_answering(
    simulator: Proc, device: list[str], env: dict[str, str], mosquitto: Broker
) -> None:
    prefix = next(arg for arg in device if "mqtt.prefix" in arg).rpartition("=")[2]
    listener = _listener(device, env)
    junk = [(f"{prefix}/event/tick", b"{nope"), (f"{prefix}/command/ping", b'{"data": 1}'), (f"{prefix}/x", b"\xff")]
    asyncio.run(_publish_raw(mosquitto, junk))
    for topic, _ in junk:
        bad = listener.wait_json(
            lambda m, topic=topic: m["error"] is not None and m["raw"][0] == _b64(topic), timeout=20
        )
        assert bad["channel"] == "?"
    ping = run_cli("command", "mqtt", "ping", *device, env=env)
    assert ping.returncode == 0, ping.stderr
    assert listener.stop() == 0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_heartbeat_from_a_device_not_known_present_makes_it_present(
    device: list[str], env: dict[str, str], mosquitto: Broker
) -> None:
    """As when the broker lost the retained `online` (no persistence) and the device went on."""
    prefix = next(arg for arg in device if "mqtt.prefix" in arg).rpartition("=")[2]
    listener = _listener(device, env)
    asyncio.run(_publish_raw(mosquitto, [(f"{prefix}/heartbeat", b'{"identifier": "d", "seq": 9}')]))
    assert listener.wait_json(_link("present"), timeout=20)["payload"] == {"heard": "heartbeat"}
    assert listener.wait_json(lambda m: m["channel"] == "heartbeat", timeout=20)["payload"]["seq"] == 9
    assert listener.stop() == 0
