"""Ingest throughput of `fieldctl listen autotrainer --json` against a raw pyzmq + json loop.

Run: `.venv/bin/python bench/listen_throughput.py [--messages N] [--rounds R]` (this is what
`make bench` does). It is a report, not a test: it exits 0 whatever the ratio, and 1 only if a
consumer fails or hangs.

Why the comparison is fair:

- Both consumers read from the *same* publisher process ("the device"), in the *same* run,
  alternating A, B, A, B, ... so machine load and thermal state drift affect both alike.
- The publisher sends realistic two-frame event publications (spec §2, §5) as fast as it can, so a
  consumer is never starved: each one is measured at its own maximum speed. Its queue is bounded
  (SNDHWM); a consumer slower than the publisher loses the overflow, which is what a real PUB/SUB
  does, and the rate is measured on the messages it actually processed. The publisher's own rate
  over the same messages is reported next to each run (from the bodies' `when` and `index`), and
  a consumer that kept up with it is flagged: there it measured the publisher, not itself.
- Both consumers do the essential work of `listen --json`: receive the frames, parse the JSON
  body, stamp the receive time and write one JSON line per message to a regular file. The raw loop
  uses the same SUB receive high-water mark as fieldctl's subscriber, and both inherit the same
  environment (PYTHONUNBUFFERED is removed for both, as it is absent for a normal user).
- The rate is (lines - 1) / (last receive ts - first receive ts), from the consumers' own
  timestamps: process start-up, imports and the connection handshake are excluded for both, and
  so are fieldctl's connection-state ("link") lines.
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
from typing import Callable

TARGET = 0.7
EVENT_TOPIC = (4001).to_bytes(4, "little")  # a1 0f 00 00
RCVHWM = 100_000  # what fieldctl's zeromq.subscriber() sets; the raw loop uses the same
INDEX_BASE = 704_126_386_668  # realistic-looking perf_counter_ns origin; index = INDEX_BASE + sequence
LINK_LINES_MAX = 8  # fieldctl's connection-state lines ("connected", "ready", ...) around the data
PUBLISHER_BOUND = 0.95  # a consumer this close to the publisher's rate was not measured at its own limit
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
    lines: int
    dropped: int
    seconds: float
    device_rate: float  # how fast the publisher sent while this consumer's messages left it
    stopped: bool = False  # did not exit by itself after its --count

    @property
    def rate(self) -> float:
        return (self.lines - 1) / self.seconds if self.seconds > 0 else 0.0


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


def measure(name: str, round_: int, path: Path, body_key: str, limit: int) -> Run:
    """Message lines (at most limit), drops (gaps in the publisher's sequence numbers) and the
    receive-time span of one output file."""
    first: dict | None = None
    last: dict | None = None
    lines = 0
    with open(path, encoding="utf-8") as handle:
        for text in handle:
            record = json.loads(text)
            if record.get("channel") == "link":
                continue
            lines += 1
            if first is None:
                first = record
            last = record
            if lines >= limit:
                break
    if first is None or last is None or lines < 2:
        raise ConsumerFailed(f"consumer {name} wrote {lines} message lines to {path}")
    head, tail = first[body_key], last[body_key]
    span = tail["index"] - head["index"] + 1
    sent_s = float(tail["when"]) - float(head["when"])
    return Run(name, round_, lines, max(0, span - lines), float(last["ts"]) - float(first["ts"]),
               (span - 1) / sent_s if sent_s > 0 else 0.0)


def report(runs: list[Run], messages: int) -> None:
    print(f"{'consumer':<16} {'round':>5} {'messages':>9} {'dropped':>8} {'seconds':>8} {'msgs/s':>9} {'device sent/s':>14}")
    for run in runs:
        print(f"{run.consumer:<16} {run.round:>5} {run.lines:>9} {run.dropped:>8} {run.seconds:>8.3f} {run.rate:>9,.0f} "
              f"{run.device_rate:>14,.0f}")
    medians: dict[str, float] = {}
    for name in ("raw", "listen"):
        mine = [run for run in runs if run.consumer == name]
        medians[name] = statistics.median(run.rate for run in mine)
        print(f"{name + ' (median)':<16} {'':>5} {int(statistics.median(r.lines for r in mine)):>9} "
              f"{int(statistics.median(r.dropped for r in mine)):>8} "
              f"{statistics.median(r.seconds for r in mine):>8.3f} {medians[name]:>9,.0f} "
              f"{statistics.median(r.device_rate for r in mine):>14,.0f}")
    for name in ("raw", "listen"):
        stopped = sum(run.consumer == name and run.stopped for run in runs)
        if stopped:
            print(f"note: {name} did not exit after --count in {stopped} of {len(runs) // 2} runs "
                  f"(kept receiving under sustained load); the benchmark stopped it and measured the first "
                  f"{messages} messages")
        bound = sum(run.consumer == name and run.rate >= PUBLISHER_BOUND * run.device_rate for run in runs)
        if bound:
            print(f"warning: {name} kept up with the publisher in {bound} runs: there it measured the publisher, "
                  f"not itself")
    ratio = medians["listen"] / medians["raw"] if medians["raw"] else 0.0
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
                    runs.append(measure(name, round_, path, body_key[name], args.messages))
                    runs[-1].stopped = stopped
        except ConsumerFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            if publisher is not None and publisher.poll() is None:
                publisher.kill()
            if publisher is not None:
                publisher.wait(10)
    report(runs, args.messages)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="messages per consumer run (default 200000)")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
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
    if args.messages < 2 or args.rounds < 1:
        parser.error("--messages must be >= 2 and --rounds >= 1")
    if args.role == "publisher":
        return run_publisher(args.max_seconds, args.sndhwm, args.pace)
    if args.role == "raw":
        return run_raw(args.url, args.messages)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
