"""The FleetState as Prometheus metrics: a custom Collector that reads the state when scraped, so a
scrape costs one pass over the targets and ingest never does metric bookkeeping of its own.

Every series has the labels `target` and `profile`. The names are a contract: alerting rules and
dashboards are written against them (README, "Prometheus exporter"). Imported only by the exporter
and the bench: prometheus_client stays off the path of every other command.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from fieldctl.cli.fleet.state import FleetState

LABELS = ["target", "profile"]


def probe_rtt(metrics: dict[str, float]) -> float | None:
    """The probe's round trip, when it measured one: the first of its steps named `*rtt_seconds` or
    `round_trip_seconds` (the Driver contract names every step `<step>_seconds`)."""
    for name, value in metrics.items():
        if name.endswith("rtt_seconds") or name == "round_trip_seconds":
            return value
    return None


class FleetCollector(Collector):
    def __init__(self, state: FleetState) -> None:
        self.state = state

    def describe(self) -> list[Metric]:
        return []  # the series depend on what arrived: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        up = GaugeMetricFamily(
            "fieldctl_up",
            "1 while the target's link is up (for a profile that cannot listen: its last probe is OK or WARNING), "
            "else 0.",
            labels=LABELS,
        )
        age = GaugeMetricFamily(
            "fieldctl_heartbeat_age_seconds",
            "Seconds since the target's last heartbeat (since the exporter started while none came).",
            labels=LABELS,
        )
        stale_after = GaugeMetricFamily(
            "fieldctl_heartbeat_stale_after_seconds",
            "The profile's heartbeat.stale_after_s: an age above it is STALE.",
            labels=LABELS,
        )
        messages = CounterMetricFamily(
            "fieldctl_messages",
            "Well-formed messages received, by channel and kind "
            '(at most 64 kinds a target; later ones count as kind "other").',
            labels=[*LABELS, "channel", "kind"],
        )
        malformed = CounterMetricFamily("fieldctl_malformed", "Frames received that did not decode.", labels=LABELS)
        errors = CounterMetricFamily(
            "fieldctl_errors",
            "Failures of the target's listen (each retried) and its driver's warnings.",
            labels=LABELS,
        )
        rtt = GaugeMetricFamily(
            "fieldctl_last_command_rtt_seconds",
            "The last round trip measured with the target: a command's first reply, or the probe's.",
            labels=LABELS,
        )
        status = GaugeMetricFamily(
            "fieldctl_probe_status",
            "The last probe's verdict as Nagios codes it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            labels=LABELS,
        )
        probe_trip = GaugeMetricFamily(
            "fieldctl_probe_rtt_seconds", "The last probe's round trip, when its protocol measures one.", labels=LABELS
        )
        steps = GaugeMetricFamily(
            "fieldctl_probe_duration_seconds", "How long each step of the last probe took.", labels=[*LABELS, "step"]
        )
        for target in list(self.state.targets.values()):
            labels = [target.name, target.profile]
            up.add_metric(labels, 1 if target.up else 0)
            beat_age = target.heartbeat_age(now)
            if beat_age is not None:
                age.add_metric(labels, beat_age)
                stale_after.add_metric(labels, target.stale_after_s)
            for (channel, kind), count in target.counts.copy().items():  # copy: ingest writes meanwhile
                messages.add_metric([*labels, channel, kind], count)
            malformed.add_metric(labels, target.malformed)
            errors.add_metric(labels, target.errors)
            if target.last_rtt_s is not None:
                rtt.add_metric(labels, target.last_rtt_s)
            probe = target.probe
            if probe is not None:
                code, metrics = probe
                status.add_metric(labels, code)
                trip = probe_rtt(metrics)
                if trip is not None:
                    probe_trip.add_metric(labels, trip)
                for name, value in metrics.items():
                    steps.add_metric([*labels, name.removesuffix("_seconds")], value)
        yield from (up, age, stale_after, messages, malformed, errors, rtt, status, probe_trip, steps)
