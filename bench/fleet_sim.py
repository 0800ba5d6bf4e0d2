"""Heartbeats of `simulate autotrainer --devices N` on time (issue 11: 1,000 devices in one process,
p99 jitter ≤ 50 ms), against a single simulated device measured the same way.

Run: `.venv/bin/python bench/fleet_sim.py [--devices N] [--seconds S] [--rounds R] [--json]` (or
through bench/run.py --only fleet_sim). A report, not a test. Defaults (1,000 devices, 20 s of
heartbeats per case) take about 2-3 minutes on 2 CPUs; `--quick` 200 devices and 10 s.

How: the simulator runs as a user would start it (NDJSON to a file, the fleet file written once all
devices are bound), with one heartbeat a second per device. One ZeroMQ SUB socket in this process
connects to every device's events endpoint and stamps each heartbeat as it arrives; a device's
jitter is |gap between two of its heartbeats - 1 s|, and the row is the p99 over every gap of every
device (the first seconds, while subscriptions settle, are left out). The baseline is the same
measurement of one device (`--devices 1`), so what the row shows is what the fleet adds.
"""

from __future__ import annotations

import argparse
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
SETTLE_S = 3.0  # subscriptions reach every device and start-up bursts pass before gaps count
HEARTBEAT_TOPIC = (1001).to_bytes(4, "little")  # the autotrainer profile's heartbeat channel
GOAL = "p99 ≤ 50 ms"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_bound(proc: subprocess.Popen[bytes], fleet: Path, devices: int) -> float:
    """Seconds until the fleet file exists (written once every device is bound)."""
    start = time.monotonic()
    deadline = start + 30 + devices * 0.1
    while not fleet.exists():
        if proc.poll() is not None:
            raise BenchFailed(f"simulate --devices {devices} exited {proc.returncode} before binding")
        if time.monotonic() > deadline:
            raise BenchFailed(f"simulate --devices {devices} did not bind within {deadline - start:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - start


def heartbeat_gaps(urls: list[str], seconds: float) -> tuple[list[float], int]:
    """Every device's gaps between heartbeats, as one subscriber connected to all of them sees them."""
    import zmq

    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
    sub.setsockopt(zmq.RCVHWM, 0)
    for url in urls:
        sub.connect(url)
    arrivals: dict[str, list[float]] = defaultdict(list)
    start = time.monotonic()
    end = start + SETTLE_S + seconds
    try:
        while (now := time.monotonic()) < end:
            if not sub.poll(max(1, int((end - now) * 1000))):
                continue
            frames = sub.recv_multipart()
            stamp = time.monotonic()
            if stamp - start >= SETTLE_S and len(frames) == 2:
                arrivals[json.loads(frames[1])["identifier"]].append(stamp)
    finally:
        sub.close(linger=0)
        context.term()
    gaps = [later - earlier for times in arrivals.values() for earlier, later in zip(times, times[1:])]
    return gaps, len(arrivals)


def run_case(devices: int, seconds: float, timeline: bool) -> dict[str, float]:
    from fieldctl.profiles.targets import load_fleet

    with tempfile.TemporaryDirectory(prefix="fieldctl-bench-fleet-") as folder:
        fleet, out = Path(folder) / "fleet.toml", Path(folder) / "out.ndjson"
        argv = [sys.executable, "-m", "fieldctl", "simulate", "autotrainer", "--devices", str(devices),
                "--write-fleet", str(fleet), "--json", f"--set=heartbeat.interval_s={INTERVAL_S:g}",
                *([] if timeline else ["--no-timeline"])]
        with open(out, "wb") as sink, open(Path(folder) / "err.txt", "wb") as errors:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=errors,
                                    env=_common.child_env())
        try:
            bind_s = wait_bound(proc, fleet, devices)
            urls = [target.endpoints["events"] for target in load_fleet(fleet).values()]
            gaps, heard = heartbeat_gaps(urls, seconds)
        except BenchFailed as exc:
            raise BenchFailed(f"{exc}: {(Path(folder) / 'err.txt').read_text(errors='replace')[-500:]}") from None
        finally:
            _common.stop(proc)
        if heard < devices or not gaps:
            raise BenchFailed(f"heard heartbeats from {heard} of {devices} devices")
        jitter = [abs(gap - INTERVAL_S) * 1000 for gap in gaps]
        lines = os.path.getsize(out)
    result = {"p99_ms": percentile(jitter, 0.99), "p50_ms": percentile(jitter, 0.50), "max_ms": max(jitter),
              "mean_gap_ms": statistics.fmean(gaps) * 1000, "bind_s": bind_s, "gaps": len(gaps),
              "ndjson_mb": lines / 1e6}
    print(f"  {devices:>5} devices: p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
          f"max {result['max_ms']:.1f} ms  mean gap {result['mean_gap_ms']:.1f} ms  bound in {bind_s:.1f} s  "
          f"({len(gaps)} gaps, {result['ndjson_mb']:.1f} MB NDJSON)", flush=True)
    return result


def collect(args: argparse.Namespace) -> list[Row]:
    print(f"fleet_sim: {args.devices} devices vs 1, {args.seconds:g} s of heartbeats per case, "
          f"{args.rounds} rounds, timeline {'on' if args.timeline else 'off'}", flush=True)
    cases = {"fleet": lambda _: run_case(args.devices, args.seconds, args.timeline),
             "single": lambda _: run_case(1, args.seconds, args.timeline)}
    results = _common.interleaved(args.rounds, cases)
    fleet, single = results["fleet"], results["single"]
    bind = statistics.median(r["bind_s"] for r in fleet)
    worst = max(r["max_ms"] for r in fleet)
    drift = statistics.median(r["mean_gap_ms"] for r in fleet) - INTERVAL_S * 1000
    row = Row(f"heartbeat jitter p99, simulate --devices {args.devices} vs 1", "ms",
              [r["p99_ms"] for r in fleet], [r["p99_ms"] for r in single], "--devices 1", GOAL,
              notes=[f"all {args.devices} devices bound in {bind:.1f} s (median); worst gap error {worst:.0f} ms; "
                     f"mean gap {drift:+.1f} ms off the {INTERVAL_S:g} s interval"])
    _common.print_rounds([row])
    return [row]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=None, help="simulated devices (default 1000; --quick 200)")
    parser.add_argument("--seconds", type=float, default=None, help="heartbeats measured per case (default 20; "
                                                                    "--quick 10)")
    parser.add_argument("--timeline", action=argparse.BooleanOptionalAction, default=True,
                        help="the devices also play their built-in timeline (default on)")


def settle(args: argparse.Namespace) -> None:
    if args.devices is None:
        args.devices = 200 if args.quick else 1000
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 20.0


def main() -> int:
    return _common.standalone(__doc__, add_arguments, settle, collect)


if __name__ == "__main__":
    sys.exit(main())
