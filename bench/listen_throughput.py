"""Ingest throughput of `fieldctl listen autotrainer --json` against a raw pyzmq + json loop.

Run: `.venv/bin/python bench/listen_throughput.py [--messages N] [--rounds R]` (this is what
`make bench` does). It is a report, not a test: it exits 0 whatever the ratio, and 1 only if a
consumer fails or hangs.

Why the comparison is fair:

- Both consumers read from the *same* publisher process ("the device"), in the *same* run,
  alternating A, B, A, B, ... so load and frequency drift on the machine affect both alike.
- The publisher sends realistic two-frame event publications (spec §2, §5) as fast as the
  consumer's queue takes them, so a consumer never waits for data: each one runs at its own
  maximum speed. By default it is an XPUB (same wire as PUB) with XPUB_NODROP: when the queue is
  full it blocks instead of spinning, so on a small machine it does not steal the consumer's CPU;
  `--pace flood` is a plain PUB that keeps sending and lets ZeroMQ drop the overflow. The
  publisher runs on one CPU and the consumer on the others (`--no-pin` to turn off).
  Whether a consumer really had a backlog is checked, not assumed: "queued s" is how long its
  last message waited between publisher and consumer (from the body's `when`).
- Both consumers do the essential work of `listen --json`: receive the frames, parse the JSON
  body, stamp the receive time and write one JSON line per message to a regular file. The raw loop
  uses the same SUB receive high-water mark as fieldctl's subscriber, and both get the same
  environment (PYTHONUNBUFFERED, which makes every write a system call, is removed for both).
- The rate is (lines - 1) / (last receive ts - first receive ts) on the consumers' own
  timestamps, so process start-up, imports and the connection handshake are excluded for both,
  as are fieldctl's connection-state ("link") lines. The clock starts after a warm-up fraction of
  the messages (`--warmup`, default 0.25): while a fresh connection's queue fills up, the
  consumer's ZeroMQ I/O thread takes in data at the publisher's speed and competes with it for
  its CPU, which penalises the faster consumer's short run more than the slower one's.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

TARGET = 0.7
EVENT_TOPIC = (4001).to_bytes(4, "little")  # a1 0f 00 00
RCVHWM = 100_000  # what fieldctl's zeromq.subscriber() sets; the raw loop uses the same
INDEX_BASE = 704_126_386_668  # realistic-looking perf_counter_ns origin; index = INDEX_BASE + sequence
LINK_LINES_MAX = 8  # fieldctl's connection-state lines ("connected", "ready", ...) around the data
BACKLOG_MIN_S = 0.05  # a consumer whose last message waited less than this was waiting for the publisher
STOP_GRACE_S = 3.0  # how long a consumer that wrote all its lines may take to exit by itself


# --- the device -------------------------------------------------------------------------------


def run_publisher(max_seconds: float, sndhwm: int, pace: str) -> int:
    """PUB on a free 127.0.0.1 port; prints the endpoint, then publishes until killed, until its
    parent dies, or for at most max_seconds."""
    import zmq

    ctx = zmq.Context()
    if pace == "flood":
        pub = ctx.socket(zmq.PUB)
    else:
        pub = ctx.socket(zmq.XPUB)  # same wire as PUB; with NODROP a full queue blocks the sender
        pub.setsockopt(zmq.XPUB_NODROP, 1)
        pub.setsockopt(zmq.SNDTIMEO, 100)
    pub.setsockopt(zmq.SNDHWM, sndhwm)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind("tcp://127.0.0.1:*")
    sys.stdout.write(pub.getsockopt_string(zmq.LAST_ENDPOINT) + "\n")
    sys.stdout.flush()
    session = b"6f1c2a9e-4b7d-4c1e-9a55-0d3b2f1e8c47"
    # The device's text form (json defaults: ", " and ": "), kinds and contexts from spec §5.3/§5.4.
    templates = (
        b'{"kind": 1301, "when": %.6f, "index": %d, "context": {"sessionId": "' + session
        + b'", "trialId": %d, "reason": "Pellet Seen"}}',
        b'{"kind": 1503, "when": %.6f, "index": %d, "context": {"sessionId": "' + session
        + b'", "trialId": %d, "batchId": null}}',
        b'{"kind": 1305, "when": %.6f, "index": %d, "context": {"sessionId": "' + session
        + b'", "trialId": %d}}',
    )
    tunnel_enter = b'{"kind": 1101, "when": %.6f, "index": %d, "context": null}'
    parent = os.getppid()
    deadline = time.monotonic() + max_seconds
    send = pub.send_multipart
    now = time.time
    seq = 0
    try:
        while time.monotonic() < deadline and os.getppid() == parent:
            for _ in range(2000):
                trial = seq // 16 + 1
                if seq % 4 == 3:
                    body = tunnel_enter % (now(), INDEX_BASE + seq)
                else:
                    body = templates[seq % 4] % (now(), INDEX_BASE + seq, trial)
                while True:
                    try:
                        send((EVENT_TOPIC, body))
                        break
                    except zmq.Again:
                        if time.monotonic() > deadline or os.getppid() != parent:
                            return 0
                seq += 1
    except KeyboardInterrupt:
        pass
    finally:
        pub.close(linger=0)
        ctx.term()
    return 0


# --- consumer A: the baseline -------------------------------------------------------------------


def run_raw(url: str, count: int) -> int:
    """The smallest honest consumer: SUB, recv_multipart, json.loads, one JSON line per message."""
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, RCVHWM)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(url)
    out = sys.stdout
    recv, loads, dumps, now = sub.recv_multipart, json.loads, json.dumps, time.time
    for _ in range(count):
        frames = recv()
        ts = now()
        body = loads(frames[1])
        out.write(dumps({"ts": ts, "body": body}) + "\n")
    out.flush()
    sub.close(linger=0)
    ctx.term()
    return 0


# --- the measurement --------------------------------------------------------------------------


@dataclass
class Run:
    consumer: str
    round: int
    lines: int  # message lines written (connection-state lines excluded), at most --messages
    dropped: int  # gaps in the publisher's sequence numbers
    measured: int  # lines in the timed window (the warm-up lines before it excluded)
    seconds: float  # receive time of the window's last line minus that of its first
    queued_s: float  # how long the last message waited between publisher and consumer
    stopped: bool = False  # did not exit by itself after --count

    @property
    def rate(self) -> float:
        return (self.measured - 1) / self.seconds if self.seconds > 0 else 0.0


class ConsumerFailed(Exception):
    pass


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def start_publisher(args: argparse.Namespace, env: dict[str, str],
                    cpus: set[int] | None) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", "publisher", "--max-seconds", str(args.max_seconds),
         "--sndhwm", str(args.sndhwm), "--pace", args.pace],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, preexec_fn=pinned(cpus),
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15.0)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line.startswith("tcp://"):
        proc.kill()
        proc.wait(5)
        raise ConsumerFailed("the publisher did not start (no endpoint within 15 s)")
    return proc, line


def consume(name: str, argv: list[str], out_path: Path, messages: int, timeout: float, env: dict[str, str],
            cpus: set[int] | None) -> bool:
    """Runs one consumer to completion; True if it had to be stopped after writing enough lines.

    The output file is watched: a consumer that has written all its messages but does not exit
    within STOP_GRACE_S is stopped (SIGTERM, then SIGKILL) instead of failing the whole report."""
    stopped = False
    deadline = time.monotonic() + timeout
    with open(out_path, "w", encoding="utf-8") as out, tempfile.TemporaryFile() as err, open(out_path, "rb") as watch:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=pinned(cpus))
        seen = 0
        complete_at: float | None = None
        try:
            while True:
                try:
                    code = proc.wait(0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                seen += watch.read().count(b"\n")
                if complete_at is None and seen >= messages + LINK_LINES_MAX:
                    complete_at = now
                if complete_at is not None and now - complete_at > STOP_GRACE_S:
                    stopped = True
                    proc.terminate()
                    try:
                        code = proc.wait(1.0)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        code = proc.wait(10)
                    break
                if now > deadline:
                    raise ConsumerFailed(f"consumer {name} did not finish within {timeout:g} s "
                                         f"({seen} lines written)")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if code != 0 and not stopped:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()
            raise ConsumerFailed(f"consumer {name} exited {code}: {tail[-1] if tail else '(no stderr)'}")
    return stopped


def measure(name: str, round_: int, path: Path, body_key: str, limit: int, warmup: float) -> Run:
    """Reads one consumer's output: its first `limit` message lines, timed from the first line after
    the warm-up fraction to the last, on the consumer's own receive timestamps."""
    points: list[tuple[float, int, float]] = []  # (receive ts, publisher index, publisher when)
    with open(path, encoding="utf-8") as handle:
        for text in handle:
            record = json.loads(text)
            if record.get("channel") == "link":
                continue
            body = record[body_key]
            points.append((float(record["ts"]), int(body["index"]), float(body["when"])))
            if len(points) >= limit:
                break
    skip = min(int(len(points) * warmup), len(points) - 2)
    if skip < 0:
        raise ConsumerFailed(f"consumer {name} wrote {len(points)} message lines to {path}")
    first, last = points[skip], points[-1]
    return Run(consumer=name, round=round_, lines=len(points),
               dropped=max(0, points[-1][1] - points[0][1] + 1 - len(points)),
               measured=len(points) - skip, seconds=last[0] - first[0], queued_s=last[0] - last[2])


def report(runs: list[Run], messages: int, warmup: float) -> None:
    header = f"{'consumer':<15} {'round':>5} {'messages':>9} {'dropped':>8} {'timed':>8} {'seconds':>8} {'msgs/s':>9} {'queued s':>8}"
    print(header)
    print("-" * len(header))

    def row(label: str, round_: str, mine: list[Run]) -> None:
        def med(values: Iterable[float]) -> float:
            return statistics.median(values)
        print(f"{label:<15} {round_:>5} {med(r.lines for r in mine):>9.0f} {med(r.dropped for r in mine):>8.0f} "
              f"{med(r.measured for r in mine):>8.0f} {med(r.seconds for r in mine):>8.3f} "
              f"{med(r.rate for r in mine):>9,.0f} {med(r.queued_s for r in mine):>8.2f}")

    for run in runs:
        row(run.consumer, str(run.round), [run])
    print("-" * len(header))
    for name in ("raw", "listen"):
        row(f"{name} median", "", [run for run in runs if run.consumer == name])
    print(f"timed = messages after the first {warmup:.0%} (warm-up: the consumer's queue filling up); "
          f"queued s = how long the last message waited in ZeroMQ queues")
    for name in ("raw", "listen"):
        stopped = sum(run.consumer == name and run.stopped for run in runs)
        if stopped:
            print(f"note: {name} did not exit at --count {messages} in {stopped} of {len(runs) // 2} runs (it kept "
                  f"receiving while messages kept arriving); the benchmark stopped it and used its first {messages}")
        idle = sum(run.consumer == name and run.queued_s < BACKLOG_MIN_S for run in runs)
        if idle:
            print(f"warning: {name} had no backlog in {idle} runs: there it waited for the publisher, so its rate "
                  f"is the publisher's, not its own")
    raw = statistics.median(run.rate for run in runs if run.consumer == "raw")
    listen = statistics.median(run.rate for run in runs if run.consumer == "listen")
    ratio = listen / raw if raw else 0.0
    print(f"ratio listen/raw = {ratio:.2f} (target >= {TARGET})")


def cpu_split(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """The publisher on one CPU, the consumer on the others, so they never take turns on one CPU."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def bench(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    runs: list[Run] = []
    publisher: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="fieldctl-bench-") as tmp:
        try:
            pub_cpus, consumer_cpus = cpu_split(args.pin)
            publisher, url = start_publisher(args, env, pub_cpus)
            if pub_cpus is not None:
                os.sched_setaffinity(0, pub_cpus)  # this process's own polling stays off the consumer's CPUs
            print(f"device: {url}, {args.messages} messages per run, {args.rounds} rounds "
                  f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})", flush=True)
            consumers = {
                "raw": [sys.executable, __file__, "--role", "raw", "--url", url, "--messages", str(args.messages)],
                "listen": [sys.executable, "-m", "fieldctl", "listen", "autotrainer", "--json",
                           "--count", str(args.messages), "--endpoint", f"events={url}"],
            }
            body_key = {"raw": "body", "listen": "payload"}
            for round_ in range(1, args.rounds + 1):
                for name, argv in consumers.items():
                    if publisher.poll() is not None:
                        raise ConsumerFailed(f"the publisher exited early ({publisher.returncode}); raise --max-seconds")
                    path = Path(tmp) / f"{name}-{round_}.ndjson"
                    stopped = consume(name, argv, path, args.messages, args.timeout, env, consumer_cpus)
                    runs.append(measure(name, round_, path, body_key[name], args.messages, args.warmup))
                    runs[-1].stopped = stopped
        except ConsumerFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            if publisher is not None and publisher.poll() is None:
                publisher.kill()
            if publisher is not None:
                publisher.wait(10)
    report(runs, args.messages, args.warmup)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="messages per consumer run (default 200000)")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    parser.add_argument("--warmup", type=float, default=0.25,
                        help="fraction of each run's messages received before the clock starts (default 0.25; "
                             "0 times from the first message)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one consumer run may take (default 120)")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="the publisher stops by itself after this (default 600)")
    parser.add_argument("--sndhwm", type=int, default=100_000, help="publisher send high-water mark (default 100000)")
    parser.add_argument("--pace", choices=("backpressure", "flood"), default="backpressure",
                        help="backpressure: the publisher keeps the consumer's queue full and waits while it is "
                             "(XPUB_NODROP); flood: it sends regardless and ZeroMQ drops the overflow")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="pin the publisher to one CPU and the consumer to the others (Linux; default on)")
    parser.add_argument("--role", choices=("bench", "publisher", "raw"), default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.messages < 10 or args.rounds < 1 or not 0 <= args.warmup < 0.9:
        parser.error("--messages must be >= 10, --rounds >= 1 and 0 <= --warmup < 0.9")
    if args.role == "publisher":
        return run_publisher(args.max_seconds, args.sndhwm, args.pace)
    if args.role == "raw":
        return run_raw(args.url, args.messages)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
