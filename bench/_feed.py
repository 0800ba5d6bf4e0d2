"""The event feed the ingest benchmarks share: a publisher ("the device"), the raw pyzmq consumer
(the baseline) and the runner that watches a consumer's NDJSON output and times it.

Why the comparison is fair:

- Every consumer reads from the *same* publisher process, in the *same* run, alternating round by
  round, so load and frequency drift on the machine affect all alike.
- The publisher sends realistic two-frame event publications (spec §2, §5) as fast as the
  consumer's queue takes them, so a consumer never waits for data: each one runs at its own
  maximum speed. By default it is an XPUB (same wire as PUB) with XPUB_NODROP: when the queue is
  full it blocks instead of spinning, so on a small machine it does not steal the consumer's CPU;
  `--pace flood` is a plain PUB that keeps sending and lets ZeroMQ drop the overflow. The
  publisher runs on one CPU and the consumer on the others (`--no-pin` to turn off).
  Whether a consumer really had a backlog is checked, not assumed: "queued s" is how long its
  last message waited between publisher and consumer (from the body's `when`).
- Every consumer does the essential work of `listen --json`: receive the frames, parse the JSON
  body, stamp the receive time and write one JSON line per message to a regular file. The raw loop
  uses the same SUB receive high-water mark as fieldctl's subscriber, and all get the same
  environment (see _common.child_env).
- The rate is (lines - 1) / (last receive ts - first receive ts) on the consumers' own
  timestamps, so process start-up, imports and the connection handshake are excluded for all,
  as are fieldctl's connection-state ("link") lines. The clock starts after a warm-up fraction of
  the messages: while a fresh connection's queue fills up, the consumer's ZeroMQ I/O thread takes
  in data at the publisher's speed and competes with it for its CPU, which penalises the faster
  consumer's short run more than the slower one's.

Run as a script only by the benchmarks themselves (`_feed.py publisher ...`, `_feed.py raw ...`).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from _common import BenchFailed, fieldctl, last_line, spawn, stop

EVENT_TOPIC = (4001).to_bytes(4, "little")  # a1 0f 00 00
INDEX_BASE = 704_126_386_668  # realistic-looking perf_counter_ns origin; index = INDEX_BASE + sequence
LINK_LINES_MAX = 8  # fieldctl's connection-state lines ("connected", "ready", ...) around the data
BACKLOG_MIN_S = 0.05  # a consumer whose last message waited less than this was waiting for the publisher
STOP_GRACE_S = 3.0  # how long a consumer that wrote all its lines may take to exit by itself
WINDOW = (40, 120)  # rows, columns of the pseudo-terminal the live table runs in


# --- the device -------------------------------------------------------------------------------


def run_publisher(max_seconds: float, sndhwm: int, pace: str, rate: int = 0) -> int:
    """PUB on a free 127.0.0.1 port; prints the endpoint, then publishes until killed, until its
    parent dies, or for at most max_seconds; at `rate` messages per second, or as fast as the
    consumer takes them (0)."""
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
        b'{"kind": 1301, "when": %.6f, "index": %d, "context": {"sessionId": "'
        + session
        + b'", "trialId": %d, "reason": "Pellet Seen"}}',
        b'{"kind": 1503, "when": %.6f, "index": %d, "context": {"sessionId": "'
        + session
        + b'", "trialId": %d, "batchId": null}}',
        b'{"kind": 1305, "when": %.6f, "index": %d, "context": {"sessionId": "' + session + b'", "trialId": %d}}',
    )
    tunnel_enter = b'{"kind": 1101, "when": %.6f, "index": %d, "context": null}'
    parent = os.getppid()
    deadline = time.monotonic() + max_seconds
    send = pub.send_multipart
    now = time.time
    seq = 0
    batch = max(1, rate // 100) if rate else 2000  # paced: a batch every 10 ms
    start = time.monotonic()
    try:
        while time.monotonic() < deadline and os.getppid() == parent:
            if rate:
                time.sleep(max(0.0, start + seq / rate - time.monotonic()))
            for _ in range(batch):
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


@dataclass(frozen=True)
class FeedOptions:
    max_seconds: float = 900.0
    sndhwm: int = 100_000
    pace: str = "backpressure"
    rate: int = 0  # messages per second; 0: as fast as the consumer takes them


def start_publisher(
    options: FeedOptions, env: dict[str, str], cpus: set[int] | None
) -> tuple[subprocess.Popen[bytes], str]:
    argv = [
        sys.executable,
        __file__,
        "publisher",
        "--max-seconds",
        str(options.max_seconds),
        "--sndhwm",
        str(options.sndhwm),
        "--pace",
        options.pace,
        "--rate",
        str(options.rate),
    ]
    proc = spawn(argv, cpus, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15.0)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line.startswith("tcp://"):
        stop(proc)
        raise BenchFailed("the publisher did not start (no endpoint within 15 s)")
    return proc, line


# --- the baseline -------------------------------------------------------------------------------


def fieldctl_rcvhwm() -> int:
    """The receive queue fieldctl's subscriber has at the default frame limit; the raw loop uses the
    same (imported here, before the clock starts, not at the top: the publisher needs none of it)."""
    from fieldctl.protocols.core.limits import MAX_FRAME_BYTES
    from fieldctl.protocols.transport.zeromq import receive_hwm

    return receive_hwm(MAX_FRAME_BYTES)


def run_raw(url: str, count: int) -> int:
    """The smallest honest consumer: SUB, recv_multipart, json.loads, one JSON line per message."""
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, fieldctl_rcvhwm())
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


def raw_argv(url: str, messages: int) -> list[str]:
    return [sys.executable, __file__, "raw", "--url", url, "--messages", str(messages)]


def listen_argv(url: str, messages: int, python: str = sys.executable) -> list[str]:
    """fieldctl's consumer of the same feed: `listen autotrainer` until `messages` have come."""
    return [*fieldctl(python), "listen", "autotrainer", "--count", str(messages), "--endpoint", f"events={url}"]


# --- running and timing a consumer ---------------------------------------------------------------


@dataclass
class Run:
    consumer: str
    round: int
    lines: int  # message lines written (connection-state lines excluded), at most the messages asked
    dropped: int  # gaps in the publisher's sequence numbers
    measured: int  # lines in the timed window (the warm-up lines before it excluded)
    seconds: float  # receive time of the window's last line minus that of its first
    queued_s: float  # how long the last message waited between publisher and consumer
    stopped: bool = False  # did not exit by itself after --count

    @property
    def rate(self) -> float:
        return (self.measured - 1) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Consumer:
    """How to run one consumer: argv(output path) -> argv; its stdout is the output file, or a
    pseudo-terminal drained by the benchmark (then argv must write the output file, e.g. --record)."""

    name: str
    argv: Callable[[Path], list[str]]
    body_key: str  # where the publisher's body is in each output line
    terminal: bool = False


class _Terminal:
    """A pseudo-terminal of a fixed size whose output a thread reads and discards, as fast as it comes."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        rows, cols = WINDOW
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.drained = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:  # EIO: every writer closed the slave side
                return
            if not data:
                return
            self.drained += len(data)

    def started(self) -> None:
        os.close(self.slave)  # only the child holds it now, so its exit ends the drain
        self.thread.start()

    def close(self) -> None:
        self.thread.join(5)
        os.close(self.master)


def consume(
    consumer: Consumer, out_path: Path, messages: int, timeout: float, env: dict[str, str], cpus: set[int] | None
) -> bool:
    """Runs one consumer to completion; True if it had to be stopped after writing enough lines.

    The output file is watched: a consumer that has written all its messages but does not exit
    within STOP_GRACE_S is stopped (SIGTERM, then SIGKILL) instead of failing the whole report."""
    stopped = False
    deadline = time.monotonic() + timeout
    out_path.touch()
    terminal = _Terminal() if consumer.terminal else None
    stdout: IO[str] | int
    with open(out_path, "a", encoding="utf-8") as out, tempfile.TemporaryFile() as err, open(out_path, "rb") as watch:
        if terminal is not None:
            stdout = terminal.slave
            env = {**env, "TERM": "xterm-256color"}
            env.pop("COLUMNS", None)
            env.pop("LINES", None)
        else:
            stdout = out
        argv = consumer.argv(out_path)
        proc = spawn(
            argv, cpus, stdout=stdout, stderr=err, env=env, stdin=stdout if terminal is not None else subprocess.DEVNULL
        )
        if terminal is not None:
            terminal.started()
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
                    raise BenchFailed(
                        f"consumer {consumer.name} did not finish within {timeout:g} s ({seen} lines written)"
                    )
        finally:
            stop(proc)
            if terminal is not None:
                terminal.close()
        if code != 0 and not stopped:
            err.seek(0)
            raise BenchFailed(f"consumer {consumer.name} exited {code}: {last_line(err.read())}")
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
        raise BenchFailed(f"consumer {name} wrote {len(points)} message lines to {path}")
    first, last = points[skip], points[-1]
    return Run(
        consumer=name,
        round=round_,
        lines=len(points),
        dropped=max(0, points[-1][1] - points[0][1] + 1 - len(points)),
        measured=len(points) - skip,
        seconds=last[0] - first[0],
        queued_s=last[0] - last[2],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the benchmarks' feed processes")
    parser.add_argument("role", choices=("publisher", "raw"))
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--sndhwm", type=int, default=100_000)
    parser.add_argument("--pace", choices=("backpressure", "flood"), default="backpressure")
    parser.add_argument("--rate", type=int, default=0)
    parser.add_argument("--url")
    parser.add_argument("--messages", type=int, default=0)
    args = parser.parse_args(argv)
    if args.role == "publisher":
        return run_publisher(args.max_seconds, args.sndhwm, args.pace, args.rate)
    return run_raw(args.url, args.messages)


if __name__ == "__main__":
    sys.exit(main())
