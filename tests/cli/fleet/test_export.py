"""`fieldctl export prometheus --fleet FILE` over a fleet of real simulators of two profiles plus a
target nobody serves: /metrics fetched over HTTP and parsed with prometheus_client's own parser,
the values checked against what the fleet is doing; a clean end on SIGTERM; its usage errors; an
address beyond loopback only with --listen-public; a device's control characters written out."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import zmq
from prometheus_client.parser import text_string_to_metric_families

from fieldctl.cli.framework.escape import visible
from fieldctl.profiles.targets import Target, write_fleet
from fieldctl.protocols.oneliner.codec import encode_packet
from tests.helpers.exporter import fetch, start_exporter
from tests.helpers.fleets import DOWN, LIVE
from tests.helpers.ports import free_port
from tests.helpers.processes import one_line, run_cli

#: (metric name, target, extra labels) -> value
Samples = dict[tuple[str, str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(fetch(url)):
        for sample in family.samples:
            labels = dict(sample.labels)
            target = labels.pop("target")
            assert labels.pop("profile")
            samples[(sample.name, target, tuple(sorted(labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, target: str, **labels: str) -> float | None:
    return samples.get((name, target, tuple(sorted(labels.items()))))


def messages(samples: Samples, target: str) -> float:
    return sum(v for (name, who, _), v in samples.items() if name == "fieldctl_messages_total" and who == target)


def scrape_until(url: str, holds: Callable[[Samples], bool], timeout: float = 30) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if holds(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {samples}")
        time.sleep(0.2)


def test_metrics_say_what_the_fleet_is_doing(fleet) -> None:
    exporter, url = start_exporter(str(fleet.path), "--probe-interval", "1")
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")

    def settled(s: Samples) -> bool:
        return (
            all(value(s, "fieldctl_probe_status", name) is not None for name in (*LIVE, DOWN))
            and all(value(s, "fieldctl_up", name) == 1 for name in LIVE)
            and messages(s, "one") > 0
        )

    first = scrape_until(url, settled)
    for name in LIVE:
        assert value(first, "fieldctl_probe_status", name) == 0, (name, first)
        assert value(first, "fieldctl_malformed_total", name) == 0
    assert value(first, "fieldctl_up", DOWN) == 0
    assert value(first, "fieldctl_probe_status", DOWN) == 2  # refused: CRITICAL
    assert value(first, "fieldctl_probe_rtt_seconds", DOWN) is None
    # The rigs' heartbeats every 0.3 s: a fresh age, well under the profile's stale time (set to 3 s).
    assert value(first, "fieldctl_heartbeat_stale_after_seconds", "rig-1") == 3
    assert 0 <= value(first, "fieldctl_heartbeat_age_seconds", "rig-1") < 3
    assert value(first, "fieldctl_heartbeat_age_seconds", "one") is None  # no heartbeat in that profile
    assert value(first, "fieldctl_messages_total", "rig-1", channel="heartbeat", kind="heartbeat") >= 1
    # The probes' round trips: a command to each rig, a call to the one-liner server.
    for name in LIVE:
        assert 0 < value(first, "fieldctl_probe_rtt_seconds", name) < 3
        assert value(first, "fieldctl_last_command_rtt_seconds", name) == value(
            first, "fieldctl_probe_rtt_seconds", name
        )
    assert value(first, "fieldctl_probe_duration_seconds", "rig-1", step="command_rtt") is not None
    # Counters only grow, per target.
    later = scrape_until(url, lambda s: all(messages(s, name) > messages(first, name) for name in LIVE))
    assert all(value(later, "fieldctl_up", name) == 1 for name in LIVE)
    # The down target's listen is refused after LISTEN_REFUSED_AFTER_S: an error, retried, still down.
    gone = scrape_until(url, lambda s: (value(s, "fieldctl_errors_total", DOWN) or 0) >= 1, timeout=20)
    assert value(gone, "fieldctl_up", DOWN) == 0 and messages(gone, DOWN) == 0
    assert exporter.stop(signal.SIGTERM) == 0
    assert "Traceback" not in exporter.popen.stderr.read()


def test_interrupt_ends_it_cleanly_and_frees_its_port(fleet) -> None:
    exporter, url = start_exporter(str(fleet.path), "--group", "room-1")
    assert {who for (_, who, _) in scrape(url)} <= {"rig-1", "rig-2"}
    assert exporter.stop(signal.SIGINT) == 0
    again, url_again = start_exporter(str(fleet.path), "--group", "room-1", "--listen", url.split("/")[2])
    assert url_again == url  # the port was free again at once: the next one serves there
    assert again.stop(signal.SIGTERM) == 0


def test_usage_errors(fleet) -> None:
    bad = run_cli("export", "prometheus", "--fleet", str(fleet.path), "--listen", "nowhere")
    assert bad.returncode == 2 and "expected HOST:PORT" in bad.stderr
    assert run_cli("export", "prometheus").returncode == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("export", "prometheus", "--fleet", str(fleet.path), "--listen", f"127.0.0.1:{port}")
    assert busy.returncode == 3 and "address already in use" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1, busy.stderr


def test_an_address_beyond_loopback_needs_listen_public(fleet) -> None:
    for address in ("0.0.0.0:0", "[::]:0", "exporter.example:9464"):
        refused = run_cli("export", "prometheus", "--fleet", str(fleet.path), "--listen", address)
        assert refused.returncode == 2 and "--listen-public" in one_line(refused.stderr), refused.stderr
    exporter, url = start_exporter(str(fleet.path), "--listen", "0.0.0.0:0", "--listen-public")
    assert url.startswith("http://0.0.0.0:")
    port = url.split(":")[2].split("/")[0]
    assert "fieldctl_up{" in fetch(f"http://127.0.0.1:{port}/metrics")  # the test's traffic stays on loopback
    assert exporter.stop() == 0


def test_control_characters_from_a_wire_are_written_out_in_label_values(tmp_path) -> None:
    """A device names its own stream: the name reaches the `channel` label as a terminal shows it."""
    hostile = "\x1b]0;PWNED\x07\x9b2J\x7f\u202e"
    publisher = zmq.Context.instance().socket(zmq.XPUB)
    publisher.setsockopt(zmq.LINGER, 0)
    streams = f"tcp://127.0.0.1:{free_port()}"
    publisher.bind(streams)
    try:
        path = tmp_path / "fleet.toml"
        write_fleet(
            path, [Target("one", "oneliner", endpoints={"streams": streams, "calls": f"tcp://127.0.0.1:{free_port()}"})]
        )
        exporter, url = start_exporter(str(path))
        assert publisher.poll(20_000), "the exporter never subscribed"
        publisher.recv()

        def arrived(samples: Samples) -> bool:
            publisher.send(encode_packet(hostile, True, time.time(), b"1"))
            return messages(samples, "one") > 0

        scrape_until(url, arrived)
        text = fetch(url)
        assert all(char == "\n" or char.isprintable() for char in text), [c for c in text if not c.isprintable()]
        channels = {
            sample.labels["channel"]
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "fieldctl_messages_total"
        }
        assert channels == {visible(hostile)} == {"\\x1b]0;PWNED\\x07\\x9b2J\\x7f\\u202e"}
        assert exporter.stop() == 0
    finally:
        publisher.close(0)
