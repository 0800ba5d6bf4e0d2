"""Ingest throughput of `fieldctl listen autotrainer`, as NDJSON (`--json`), as the live table and
as `--lines` in a terminal, each against a raw pyzmq SUB + json.loads loop on the same publisher:
how close fieldctl comes to the least work any consumer of the stream must do.

Run: `.venv/bin/python bench/listen_throughput.py [--messages N] [--rounds R] [--json]` (`make bench`
runs it through bench/run.py). A report, not a test: it exits 0 whatever the ratios, and 1 only if
a consumer fails or hangs. Defaults (200,000 messages, 3 rounds) take about 3-4 minutes on 2 CPUs;
`--quick` (30,000 messages) about 40 s.

Every round runs the raw loop, `listen --json`, the live table and `--lines` one after the other,
all fed by one publisher (see _feed.py for why that is fair); each ratio is the consumer's rate
over the raw loop's rate in the same round. The table and the lines run in a pseudo-terminal of a
fixed size (40x120) whose output the benchmark drains as fast as it comes, like a fast terminal;
their messages are counted and timed through `--record FILE` (one NDJSON line per message, with
its receive time). `--record` flushes every line, one write system call per message that the view
alone would not make: their ratios are, if anything, pessimistic by that much. `--lines` writes
and the terminal draws every message, where the table draws four frames a second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import _common
import _feed
from _common import BenchFailed, Row

ROW_JSON = "listen --json ingest vs raw SUB+json loop"
ROW_TABLE = "live table ingest (pty) vs raw SUB+json loop"
ROW_LINES = "--lines ingest (pty) vs raw SUB+json loop"


def consumers(url: str, messages: int, pythons: dict[str, str]) -> list[_feed.Consumer]:
    """The raw loop, then `listen --json` and the table of each fieldctl ("-before": --before's)."""
    out = [_feed.Consumer("raw", lambda path: _feed.raw_argv(url, messages), "body")]
    for which, python in pythons.items():
        out += fieldctl_consumers(_feed.listen_argv(url, messages, python), "" if which == "fieldctl" else f"-{which}")
    return out


def fieldctl_consumers(listen: list[str], suffix: str) -> list[_feed.Consumer]:
    """`listen --json`, the live table and `--lines` (this fieldctl's only: an older one may not
    have it), the last two recording the messages they show into the output file."""
    out = [
        _feed.Consumer("listen" + suffix, lambda path: [*listen, "--json"], "payload"),
        _feed.Consumer("table" + suffix, lambda path: [*listen, "--record", str(path)], "payload", terminal=True),
    ]
    if not suffix:
        out.append(
            _feed.Consumer("lines", lambda path: [*listen, "--lines", "--record", str(path)], "payload", terminal=True)
        )
    return out


def detail(runs: list[_feed.Run], warmup: float) -> None:
    """Every run, so a suspicious ratio can be traced to its round."""
    header = (
        f"{'consumer':<8} {'round':>5} {'messages':>9} {'dropped':>8} {'timed':>8} {'seconds':>8} "
        f"{'msgs/s':>9} {'queued s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r.consumer:<8} {r.round:>5} {r.lines:>9} {r.dropped:>8} {r.measured:>8} {r.seconds:>8.3f} "
            f"{r.rate:>9,.0f} {r.queued_s:>8.2f}"
        )
    print(
        f"timed = messages after the first {warmup:.0%} (warm-up: the consumer's queue filling up); "
        f"queued s = how long the last message waited in ZeroMQ queues"
    )


def notes(runs: list[_feed.Run], name: str, messages: int) -> list[str]:
    out = []
    stopped = sum(r.consumer == name and r.stopped for r in runs)
    if stopped:
        out.append(f"{name} did not exit at --count {messages} in {stopped} runs; stopped, its first {messages} used")
    idle = sum(r.consumer == name and r.queued_s < _feed.BACKLOG_MIN_S for r in runs)
    if idle:
        out.append(
            f"{name} had no backlog in {idle} runs: it waited for the publisher there, so that rate "
            f"is the publisher's, not its own"
        )
    return out


def collect(args: argparse.Namespace) -> list[Row]:
    env = _common.child_env()
    pub_cpus, consumer_cpus = _common.cpu_split(args.pin)
    publisher = None
    runs: list[_feed.Run] = []
    with tempfile.TemporaryDirectory(prefix="fieldctl-bench-") as tmp:
        try:
            publisher, url = _feed.start_publisher(_feed.FeedOptions(pace=args.pace), env, pub_cpus)
            print(f"listen ingest: device {url}, {args.messages} messages per run, {args.rounds} rounds", flush=True)

            def case(consumer: _feed.Consumer) -> Callable[[int], _feed.Run]:
                def run(round_: int) -> _feed.Run:
                    if publisher.poll() is not None:
                        raise BenchFailed(f"the publisher exited early ({publisher.returncode})")
                    path = Path(tmp) / f"{consumer.name}-{round_}.ndjson"
                    stopped = _feed.consume(consumer, path, args.messages, args.timeout, env, consumer_cpus)
                    result = _feed.measure(consumer.name, round_, path, consumer.body_key, args.messages, args.warmup)
                    result.stopped = stopped
                    path.unlink()
                    runs.append(result)
                    return result

                return run

            results = _common.interleaved(
                args.rounds, {c.name: case(c) for c in consumers(url, args.messages, _common.fieldctl_pythons(args))}
            )
        finally:
            _common.stop(publisher)
    detail(runs, args.warmup)
    raw = [r.rate for r in results["raw"]]
    base_notes = notes(runs, "raw", args.messages)

    def before(name: str) -> list[float] | None:
        return [r.rate for r in results[name + "-before"]] if name + "-before" in results else None

    return [
        Row(
            ROW_JSON,
            "msgs/s",
            [r.rate for r in results["listen"]],
            raw,
            "raw loop",
            "≥ 0.8",
            "0.40 (0.31–0.94)",
            notes(runs, "listen", args.messages) + base_notes,
            before("listen"),
        ),
        Row(
            ROW_TABLE,
            "msgs/s",
            [r.rate for r in results["table"]],
            raw,
            "raw loop",
            "≥ 0.6",
            "0.25–0.33",
            notes(runs, "table", args.messages),
            before("table"),
        ),
        Row(
            ROW_LINES,
            "msgs/s",
            [r.rate for r in results["lines"]],
            raw,
            "raw loop",
            "≥ 0.5",  # every message written and drawn, where the table draws 4 frames a second
            "0.28 (0.26–0.29)",
            notes(runs, "lines", args.messages),
            None,
        ),
    ]


SCALED: _common.Scaled = {"messages": (30_000, 200_000)}  # option: (--quick, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.scaled_argument(parser, SCALED, "messages", "messages per consumer run")
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.25,
        help="fraction of each run's messages received before the clock starts (default 0.25)",
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one consumer run may take (default 180)")
    parser.add_argument(
        "--pace",
        choices=("backpressure", "flood"),
        default="backpressure",
        help="backpressure: the publisher keeps the consumer's queue full and waits while it is "
        "(XPUB_NODROP); flood: it sends regardless and ZeroMQ drops the overflow",
    )


def check(args: argparse.Namespace) -> None:
    if args.messages < 10 or not 0 <= args.warmup < 0.9:
        sys.exit("--messages must be >= 10 and 0 <= --warmup < 0.9")


settle = _common.settler(SCALED, check)


if __name__ == "__main__":
    sys.exit(_common.standalone(__doc__, add_arguments, collect, settle))
