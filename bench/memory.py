"""Resident memory of `fieldctl listen autotrainer --json` over a long stream: a listener left running
for days must not grow with the messages it has seen.

Run: `.venv/bin/python bench/memory.py [--messages N] [--rounds R] [--json]` (`make bench` runs it
through bench/run.py). A report, not a test. The default, 1,000,000 messages per run, takes about
about 11 minutes (six runs of 100 s: three of listen, three of the raw loop); `--quick` (40,000)
about 40 s.

The consumer reads the publisher of _feed.py, paced at `--rate` messages per second (default
10,000, below what either consumer sustains) so that the consumer keeps up: with a backlog, the
ZeroMQ receive queue (up to 100,000 messages, about 100 MB) would fill during the run and hide
fieldctl's own memory. A run that took much longer than messages / rate fell behind; the report
says so. It writes NDJSON into a pipe that the benchmark drains, counting lines; VmRSS is sampled
from /proc/PID/status as it goes. Growth is
the last sample taken while the consumer is alive (at or near the last message) minus the first
sample after the warm-up (`--warmup`, default 10 % of the messages: imports done, buffers and
queues at their working size). The raw pyzmq loop of _feed.py runs the same way in alternate
runs; its growth is the floor (ZeroMQ's queues, the allocator), shown next to fieldctl's.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import _common
import _feed
from _common import BenchFailed, Row

SAMPLE_EVERY_S = 0.1


def vm_rss_mb(pid: int) -> float | None:
    """VmRSS in MB, or None once the process has exited (a zombie has no VmRSS line)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@dataclass
class Sampled:
    warm_mb: float  # VmRSS at the end of the warm-up
    last_mb: float  # the last VmRSS sample of the live process
    peak_mb: float  # the highest sample after the warm-up
    lines: int
    seconds: float  # from the warm-up sample to the last one

    @property
    def growth(self) -> float:
        return self.last_mb - self.warm_mb


def sample(
    name: str, argv: list[str], messages: int, warmup: int, timeout: float, env: dict[str, str], cpus: set[int] | None
) -> Sampled:
    with tempfile.TemporaryFile() as err:
        proc = _common.spawn(argv, cpus, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        lines, warm, last, peak = 0, None, 0.0, 0.0
        warm_at = last_at = 0.0
        next_sample = 0.0
        deadline = time.monotonic() + timeout
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], SAMPLE_EVERY_S)
                if ready:
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:
                        break
                    lines += chunk.count(b"\n")
                now = time.monotonic()
                if now >= next_sample:
                    next_sample = now + SAMPLE_EVERY_S
                    rss = vm_rss_mb(proc.pid)
                    if rss is not None:
                        last, last_at = rss, now
                        if warm is None and lines >= warmup:
                            warm, warm_at = rss, now
                        if warm is not None:
                            peak = max(peak, rss)
                if now > deadline:
                    raise BenchFailed(f"{name} did not read {messages} messages within {timeout:g} s ({lines} lines)")
            code = proc.wait(30)
            if code != 0:
                err.seek(0)
                raise BenchFailed(f"{name} exited {code}: {_common.last_line(err.read())}")
        finally:
            _common.stop(proc)
            proc.stdout.close()
    if warm is None:
        raise BenchFailed(f"{name}: no VmRSS sample after the warm-up ({lines} lines)")
    return Sampled(warm, last, peak, lines, last_at - warm_at)


def collect(args: argparse.Namespace) -> list[Row]:
    env = _common.child_env()
    pub_cpus, consumer_cpus = _common.cpu_split(args.pin)
    warmup = max(1, int(args.messages * args.warmup))
    publisher = None
    try:
        publisher, url = _feed.start_publisher(_feed.FeedOptions(rate=args.rate), env, pub_cpus)
        argvs = {
            "raw": _feed.raw_argv(url, args.messages),
            "listen": [*_feed.listen_argv(url, args.messages), "--json"],
        }
        print(f"memory: {args.messages} messages per run, warm-up {warmup}, {args.rounds} rounds", flush=True)
        print(
            f"{'consumer':<8} {'round':>5} {'lines':>9} {'warm MB':>8} {'last MB':>8} {'peak MB':>8} "
            f"{'growth':>7} {'seconds':>8}"
        )

        def case(name: str) -> Callable[[int], Sampled]:
            def run(round_: int) -> Sampled:
                result = sample(name, argvs[name], args.messages, warmup, args.timeout, env, consumer_cpus)
                print(
                    f"{name:<8} {round_:>5} {result.lines:>9} {result.warm_mb:>8.1f} {result.last_mb:>8.1f} "
                    f"{result.peak_mb:>8.1f} {result.growth:>+7.1f} {result.seconds:>8.1f}",
                    flush=True,
                )
                return result

            return run

        results = _common.interleaved(args.rounds, {name: case(name) for name in argvs})
    finally:
        _common.stop(publisher)
    listen, raw = results["listen"], results["raw"]
    paced_s = (args.messages - warmup) / args.rate
    behind = [
        f"{name} fell behind the publisher in {late} runs (queued messages count as growth there)"
        for name, runs in results.items()
        if (late := sum(r.seconds > 1.2 * paced_s + 1 for r in runs))
    ]
    return [
        Row(
            f"RSS growth of listen --json over {args.messages:,} messages after warm-up",
            "MB",
            [r.growth for r in listen],
            None,
            goal="flat ±20 MB",
            was="+5–9 MB",
            notes=[
                f"raw loop growth {statistics.median(r.growth for r in raw):+.1f} MB (median); "
                f"listen peak after warm-up {max(r.peak_mb - r.warm_mb for r in listen):+.1f} MB (max); "
                f"listen VmRSS at warm-up {statistics.median(r.warm_mb for r in listen):.1f} MB",
                *behind,
            ],
        )
    ]


SCALED: _common.Scaled = {"messages": (40_000, 1_000_000)}  # option: (--quick, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.scaled_argument(parser, SCALED, "messages", "messages per run")
    parser.add_argument(
        "--rate", type=int, default=10_000, help="messages per second the publisher sends (default 10000)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.1,
        help="fraction of the messages before the first counted sample (default 0.1)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one run may take (default 900)")


def check(args: argparse.Namespace) -> None:
    if args.messages < 100 or not 0 < args.warmup < 0.9:
        sys.exit("--messages must be >= 100 and 0 < --warmup < 0.9")


settle = _common.settler(SCALED, check)


if __name__ == "__main__":
    sys.exit(_common.standalone(__doc__, add_arguments, collect, settle))
