"""Heartbeats of `simulate autotrainer --devices N` on time: whether one process simulating 1,000
devices keeps every device's heartbeat within 50 ms of its interval (p99), against a single
simulated device measured the same way.

Run: `.venv/bin/python bench/fleet_heartbeats.py [--devices N] [--seconds S] [--rounds R] [--json]`
(or through bench/run.py --only fleet_heartbeats). A report, not a test. Defaults (1,000 devices,
20 s of heartbeats per case) take about 2-3 minutes on 2 CPUs; `--quick` 200 devices and 10 s.

How: the simulator runs as a user would start it (NDJSON to a file, the fleet file written once all
devices are bound), with one heartbeat a second per device. One ZeroMQ SUB socket in this process
connects to every device's events endpoint. A gap is the time between two heartbeats of one device,
its error |gap - 1 s|; the rows are the p99 error over every gap of every device, as sent (the
heartbeat's own `timestamp`: the simulator's punctuality) and as received (stamped on arrival here:
also the wire and this process's own turn on the CPU). The first seconds (`--skip-first`, default
5), while subscriptions settle, are left out. The baseline is the same measurement of one device
(`--devices 1`), so the ratio is what the fleet adds; on a shared, loaded machine both move with
the load (the load average is in the notes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import _common
from _common import BenchFailed, Row

INTERVAL_S = 1.0
SETTLE_S = 5.0  # a subscriber joining 1,000 devices at once stalls them a moment: gaps count after (--skip-first)
HEARTBEAT_TOPIC = (1001).to_bytes(4, "little")  # the autotrainer profile's heartbeat channel
GOAL = "p99 ≤ 50 ms"


def heartbeat_gaps(urls: list[str], seconds: float, skip: float) -> tuple[list[float], list[float], int]:
    """Every device's gaps between heartbeats as sent (their `timestamp`) and as received by one
    subscriber connected to all of them, and how many devices were heard; the first `skip` seconds
    are left out."""
    import zmq

    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
    sub.setsockopt(zmq.RCVHWM, 0)
    for url in urls:
        sub.connect(url)
    beats: dict[str, list[tuple[float, float]]] = defaultdict(list)
    start = time.monotonic()
    end = start + skip + seconds
    try:
        while (now := time.monotonic()) < end:
            if not sub.poll(max(1, int((end - now) * 1000))):
                continue
            frames = sub.recv_multipart()
            stamp = time.monotonic()
            if stamp - start >= skip and len(frames) == 2:
                body = json.loads(frames[1])
                beats[body["identifier"]].append((body["timestamp"], stamp))
    finally:
        sub.close(linger=0)
        context.term()
    pairs = [pair for times in beats.values() for pair in itertools.pairwise(times)]
    return (
        [later[0] - earlier[0] for earlier, later in pairs],
        [later[1] - earlier[1] for earlier, later in pairs],
        len(beats),
    )


def run_case(devices: int, args: argparse.Namespace) -> dict[str, float]:
    from fieldctl.profiles.targets import load_fleet

    with tempfile.TemporaryDirectory(prefix="fieldctl-bench-fleet-") as folder:
        fleet, out = Path(folder) / "fleet.toml", Path(folder) / "out.ndjson"
        argv = [
            *_common.fieldctl(),
            "simulate",
            "autotrainer",
            "--devices",
            str(devices),
            "--write-fleet",
            str(fleet),
            "--json",
            f"--set=heartbeat.interval_s={INTERVAL_S:g}",
            *([] if args.timeline else ["--no-timeline"]),
        ]
        with open(out, "wb") as sink, open(Path(folder) / "err.txt", "wb") as errors:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=errors, env=_common.child_env())
        try:
            bind_s = _common.wait_until(
                fleet.exists,
                proc,
                f"simulate --devices {devices}",
                "the fleet file (every device bound)",
                30 + devices * 0.1,
            )
            urls = [target.endpoints["events"] for target in load_fleet(fleet).values()]
            sent, received, heard = heartbeat_gaps(urls, args.seconds, args.skip_first)
        except BenchFailed as exc:
            raise BenchFailed(f"{exc}: {(Path(folder) / 'err.txt').read_text(errors='replace')[-500:]}") from None
        finally:
            _common.stop(proc)
        if heard < devices or not sent:
            raise BenchFailed(f"heard heartbeats from {heard} of {devices} devices")
        ndjson_mb = os.path.getsize(out) / 1e6
    result = {"bind_s": bind_s, "gaps": len(sent), "mean_gap_ms": statistics.fmean(sent) * 1000}
    for side, gaps in (("sent", sent), ("received", received)):
        jitter = [abs(gap - INTERVAL_S) * 1000 for gap in gaps]
        result |= {
            f"{side}_p50_ms": _common.percentile(jitter, 0.5),
            f"{side}_p99_ms": _common.percentile(jitter, 0.99),
            f"{side}_max_ms": max(jitter),
        }
    print(
        f"  {devices:>5} devices, jitter p50/p99/max: sent {result['sent_p50_ms']:.1f}/{result['sent_p99_ms']:.1f}/"
        f"{result['sent_max_ms']:.1f} ms, received {result['received_p50_ms']:.1f}/{result['received_p99_ms']:.1f}/"
        f"{result['received_max_ms']:.1f} ms; mean gap {result['mean_gap_ms']:.1f} ms; bound in {bind_s:.1f} s "
        f"({len(sent)} gaps, {ndjson_mb:.1f} MB NDJSON)",
        flush=True,
    )
    return result


def collect(args: argparse.Namespace) -> list[Row]:
    print(
        f"fleet_heartbeats: {args.devices} devices vs 1, {args.seconds:g} s of heartbeats per case, "
        f"{args.rounds} rounds, timeline {'on' if args.timeline else 'off'}",
        flush=True,
    )
    cases = {"fleet": lambda _: run_case(args.devices, args), "single": lambda _: run_case(1, args)}
    results = _common.interleaved(args.rounds, cases)
    fleet, single = results["fleet"], results["single"]
    bind = statistics.median(r["bind_s"] for r in fleet)
    drift = statistics.median(r["mean_gap_ms"] for r in fleet) - INTERVAL_S * 1000
    rows = [
        Row(
            f"heartbeat jitter p99 {side}, simulate --devices {args.devices} vs 1",
            "ms",
            [r[f"{side}_p99_ms"] for r in fleet],
            [r[f"{side}_p99_ms"] for r in single],
            "--devices 1",
            GOAL,
            notes=[f"worst gap error {max(r[f'{side}_max_ms'] for r in fleet):.0f} ms"],
        )
        for side in ("sent", "received")
    ]
    rows[0].notes.append(
        f"all {args.devices} devices bound in {bind:.1f} s (median); mean gap {drift:+.1f} ms off "
        f"the {INTERVAL_S:g} s interval; load average at the end {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    _common.print_rounds(rows)
    return rows


SCALED: _common.Scaled = {"devices": (200, 1000), "seconds": (10.0, 20.0)}  # option: (--quick, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.scaled_argument(parser, SCALED, "devices", "simulated devices")
    _common.scaled_argument(parser, SCALED, "seconds", "heartbeats measured per case", type=float)
    parser.add_argument(
        "--skip-first",
        type=float,
        default=SETTLE_S,
        help=f"seconds of heartbeats left out first, while subscriptions settle (default {SETTLE_S:g})",
    )
    parser.add_argument(
        "--timeline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the devices also play their built-in timeline (default on)",
    )


settle = _common.settler(SCALED)


if __name__ == "__main__":
    sys.exit(_common.standalone(__doc__, add_arguments, collect, settle))
