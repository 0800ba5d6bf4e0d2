"""The FleetState as Prometheus metrics, rendered when scraped: a scrape costs one pass over the
targets, and ingest never does metric bookkeeping of its own. It runs on the loop that feeds the
state, so it reads the state between two messages, never during one.

Every series has the labels `target` and `profile`. The names are a contract: alerting rules and
dashboards are written against them (README, "Prometheus exporter").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fieldctl.cli.framework.exposition import family, label_value, sample_value

if TYPE_CHECKING:
    from fieldctl.cli.fleet.state import FleetState

#: name -> (type, help), in the order they are written.
FAMILIES = {
    "fieldctl_up": (
        "gauge",
        "1 while the target's link is up (for a profile that cannot listen: its last probe is OK or WARNING; "
        "behind a broker: while the device is present), else 0.",
    ),
    "fieldctl_heartbeat_age_seconds": (
        "gauge",
        "Seconds since the target's last heartbeat (since the exporter started while none came).",
    ),
    "fieldctl_heartbeat_stale_after_seconds": (
        "gauge",
        "The profile's heartbeat.stale_after_s: an age above it is STALE.",
    ),
    "fieldctl_messages_total": (
        "counter",
        "Well-formed messages received, by channel and kind "
        '(at most 64 kinds a target; later ones count as kind "other").',
    ),
    "fieldctl_malformed_total": ("counter", "Frames received that did not decode."),
    "fieldctl_errors_total": ("counter", "Failures of the target's listen (each retried) and its driver's warnings."),
    "fieldctl_last_command_rtt_seconds": (
        "gauge",
        "The last round trip measured with the target: a command's first reply, or the probe's.",
    ),
    "fieldctl_probe_status": (
        "gauge",
        "The last probe's verdict as Nagios codes it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    ),
    "fieldctl_probe_rtt_seconds": ("gauge", "The last probe's round trip, when its protocol measures one."),
    "fieldctl_probe_duration_seconds": ("gauge", "How long each step of the last probe took."),
}


def probe_rtt(metrics: dict[str, float]) -> float | None:
    """The probe's round trip, when it measured one: the first of its steps named `*rtt_seconds` or
    `round_trip_seconds` (the Driver contract names every step `<step>_seconds`)."""
    for name, value in metrics.items():
        if name.endswith("rtt_seconds") or name == "round_trip_seconds":
            return value
    return None


def exposition(state: FleetState) -> bytes:
    """Every target's series, as one /metrics body."""
    now = time.monotonic()
    samples: dict[str, list[str]] = {name: [] for name in FAMILIES}
    up, age, stale_after, messages, malformed, errors, rtt, status, probe_trip, steps = samples.values()
    for target in state.targets.values():
        pair = f'target="{label_value(target.name)}",profile="{label_value(target.profile)}"'
        labels = f"{{{pair}}} "
        up.append(f"fieldctl_up{labels}{1 if target.up else 0}\n")
        beat_age = target.heartbeat_age(now)
        if beat_age is not None:
            age.append(f"fieldctl_heartbeat_age_seconds{labels}{sample_value(beat_age)}\n")
            stale_after.append(f"fieldctl_heartbeat_stale_after_seconds{labels}{sample_value(target.stale_after_s)}\n")
        for (channel, kind), count in target.counts.items():
            names = f'channel="{label_value(channel)}",kind="{label_value(kind)}"'
            messages.append(f"fieldctl_messages_total{{{pair},{names}}} {count}\n")
        malformed.append(f"fieldctl_malformed_total{labels}{target.malformed}\n")
        errors.append(f"fieldctl_errors_total{labels}{target.errors}\n")
        if target.last_rtt_s is not None:
            rtt.append(f"fieldctl_last_command_rtt_seconds{labels}{sample_value(target.last_rtt_s)}\n")
        if target.probe is not None:
            code, metrics = target.probe
            status.append(f"fieldctl_probe_status{labels}{code}\n")
            trip = probe_rtt(metrics)
            if trip is not None:
                probe_trip.append(f"fieldctl_probe_rtt_seconds{labels}{sample_value(trip)}\n")
            for name, value in metrics.items():
                step = label_value(name.removesuffix("_seconds"))
                steps.append(f'fieldctl_probe_duration_seconds{{{pair},step="{step}"}} {sample_value(value)}\n')
    return "".join(
        family(name, kind, help_text, samples[name]) for name, (kind, help_text) in FAMILIES.items()
    ).encode()
