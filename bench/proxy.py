"""What `fieldctl proxy autotrainer` costs the conversation it relays, without fault rules:

- command round trips: a raw pyzmq REQ client's get-status against one `fieldctl simulate
  autotrainer` device, straight to it and through a proxy in front of it (`--json` to
  /dev/null: it decodes and writes every frame as it would for a person), p50 in the same rounds;
  the row is the p50 the proxy adds, in ms;
- event relay: the event feed of listen_throughput (one publisher, two-frame publications as fast
  as a consumer takes them), as `listen --json` ingests it straight from the publisher and as the
  proxy relays it to a raw subscriber, each writing one NDJSON line per event; the row is the
  proxy's rate over listen's, measured on each one's own receive timestamps.

Run: `.venv/bin/python bench/proxy.py [--calls N] [--messages N] [--rounds R] [--json]` (`make
bench` runs it through bench/run.py). A report, not a test. `--quick` takes about 40 s on 2 CPUs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import _common
import _feed
import commands
from _common import BenchFailed, Row

ROW_ADDED = "command get-status through proxy (raw REQ), p50 added"
ROW_RELAY = "proxy --json event relay vs listen --json ingest"


def proxy_argv(upstream: dict[str, str], local: dict[str, str], *extra: str, python: str = sys.executable) -> list[str]:
    """`fieldctl proxy autotrainer` from `local` (its own endpoints) to `upstream`, NDJSON on stdout."""
    return [
        *_common.fieldctl(python),
        "proxy",
        "autotrainer",
        *(f"--upstream-endpoint={name}={url}" for name, url in upstream.items()),
        *(f"--endpoint={name}={url}" for name, url in local.items()),
        "--json",
        *extra,
    ]


def loopback() -> dict[str, str]:
    return {name: f"tcp://127.0.0.1:{_common.free_port()}" for name in ("events", "commands")}


def round_trips(args: argparse.Namespace) -> list[Row]:
    """The raw client's p50 straight to the device and through the proxy, per round."""
    device_cpus, client_cpus = _common.cpu_split(args.pin)
    device = _common.start_device(device_cpus, "--no-timeline")
    upstream = {"events": device.events, "commands": device.commands}
    local = loopback()
    port = int(local["commands"].rsplit(":", 1)[1])
    relay = None
    try:
        relay = _common.serve(proxy_argv(upstream, local), port, device_cpus, "fieldctl proxy")

        def case(endpoints: dict[str, str]) -> Callable[[int], float]:
            def run(round_: int) -> float:
                argv = [
                    sys.executable,
                    commands.__file__,
                    "calls",
                    "--client",
                    "raw",
                    "--endpoints",
                    json.dumps(endpoints),
                    "--count",
                    str(args.calls),
                ]
                stdout, _ = _common.run_child(argv, "raw round trips", _common.child_env(), client_cpus, timeout=300)
                return _common.percentile(json.loads(stdout), 0.5) * 1000

            return run

        print(f"proxy round trips: {args.calls} raw get-status calls per round, {args.rounds} rounds", flush=True)
        p50 = _common.interleaved(args.rounds, {"direct": case(upstream), "proxy": case(local)})
    finally:
        _common.stop(relay)
        _common.stop(device.proc)
    added = [through - direct for through, direct in zip(p50["proxy"], p50["direct"], strict=True)]
    return [
        Row(
            ROW_ADDED,
            "ms",
            added,
            None,
            goal="≤ 0.3",
            notes=[f"direct p50 {min(p50['direct']):.3f}–{max(p50['direct']):.3f} ms"],
        )
    ]


def relayed(url: str, messages: int, subscriber_cpus: set[int] | None) -> list[str]:
    """A consumer of the feed: the proxy in front of the publisher with a raw subscriber behind it
    (what drives the subscription upstream), until the proxy has written `messages` events. The
    subscriber, the proxy's client, runs beside the publisher (`subscriber_cpus`): the proxy has
    the consumer's CPU to itself, as `listen` has."""
    cpus = ["--subscriber-cpus", ",".join(map(str, sorted(subscriber_cpus)))] if subscriber_cpus else []
    return [sys.executable, __file__, "relay", "--url", url, "--messages", str(messages), *cpus]


def run_relay(url: str, messages: int, subscriber_cpus: set[int] | None) -> int:
    """Child process: the proxy's NDJSON on our stdout, a raw SUB behind it that takes everything."""
    import os

    import zmq

    local = loopback()
    proxy = subprocess.Popen(
        proxy_argv(
            {"events": url, "commands": f"tcp://127.0.0.1:{_common.free_port()}"},
            local,
            "--count",
            str(messages + 1),  # and the subscriber's subscription, which `subscriptions` takes out
        ),
        stdout=sys.stdout,
        stdin=subprocess.DEVNULL,
    )
    if subscriber_cpus:
        os.sched_setaffinity(0, subscriber_cpus)  # after the proxy started: it keeps the consumer's
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, _feed.fieldctl_rcvhwm())
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(local["events"])
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    while proxy.poll() is None:
        if poller.poll(100):
            while True:
                try:
                    sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
    sub.close()
    ctx.term()
    return proxy.returncode


def subscriptions(path: Path) -> None:
    """The proxy's feed without the subscriber's subscription (shown on its way up, as it should
    be), so that every line left is an event, as in listen's."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if '"channel":"subscription"' not in line), encoding="utf-8")


def event_relay(args: argparse.Namespace) -> list[Row]:
    env = _common.child_env()
    pub_cpus, consumer_cpus = _common.cpu_split(args.pin)
    publisher = None
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="fieldctl-bench-") as tmp:
        try:
            publisher, url = _feed.start_publisher(_feed.FeedOptions(), env, pub_cpus)
            consumers = [
                _feed.Consumer("listen", lambda path: [*_feed.listen_argv(url, args.messages), "--json"], "payload"),
                _feed.Consumer("proxy", lambda path: relayed(url, args.messages, pub_cpus), "payload"),
            ]
            print(f"proxy event relay: {args.messages} messages per run, {args.rounds} rounds", flush=True)

            def case(consumer: _feed.Consumer) -> Callable[[int], float]:
                def run(round_: int) -> float:
                    if publisher.poll() is not None:
                        raise BenchFailed(f"the publisher exited early ({publisher.returncode})")
                    path = Path(tmp) / f"{consumer.name}-{round_}.ndjson"
                    _feed.consume(consumer, path, args.messages, args.timeout, env, consumer_cpus)
                    if consumer.name == "proxy":
                        subscriptions(path)
                    result = _feed.measure(consumer.name, round_, path, consumer.body_key, args.messages, args.warmup)
                    path.unlink()
                    return result.rate

                return run

            rates = _common.interleaved(args.rounds, {c.name: case(c) for c in consumers})
        finally:
            _common.stop(publisher)
    return [Row(ROW_RELAY, "msgs/s", rates["proxy"], rates["listen"], "listen --json", "≥ 0.8")]


def collect(args: argparse.Namespace) -> list[Row]:
    rows = round_trips(args) + event_relay(args)
    _common.print_rounds(rows)
    return rows


SCALED: _common.Scaled = {"calls": (150, 500), "messages": (30_000, 200_000)}  # option: (--quick, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.scaled_argument(parser, SCALED, "calls", "round trips per client per round")
    _common.scaled_argument(parser, SCALED, "messages", "events per consumer run")
    parser.add_argument("--warmup", type=float, default=0.25, help="fraction of each run's events before the clock")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one consumer run may take (default 180)")


settle = _common.settler(SCALED)


def main() -> int:
    if sys.argv[1:2] == ["relay"]:  # the child process of one relay run
        parser = argparse.ArgumentParser()
        parser.add_argument("role")
        parser.add_argument("--url", required=True)
        parser.add_argument("--messages", type=int, required=True)
        parser.add_argument("--subscriber-cpus", default="")
        args = parser.parse_args()
        cpus = {int(cpu) for cpu in args.subscriber_cpus.split(",") if cpu}
        return run_relay(args.url, args.messages, cpus or None)
    return _common.standalone(__doc__, add_arguments, collect, settle)


if __name__ == "__main__":
    sys.exit(main())
