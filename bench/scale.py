"""Scale of one simulator process, so that one process can stand in for a whole site in a test:
`simulate vantiq` holding 2,000 connectors (acknowledgement p99 ≤ 50 ms) and `simulate autotrainer`
holding 1,000 subscribers.

Run: `.venv/bin/python bench/scale.py [--connectors N] [--subscribers N] [--rounds R] [--json]`
(`make bench` runs it through bench/run.py). A report, not a test; absolute rows, no baseline.
Defaults take about 2 minutes on 2 CPUs, `--quick` (500 connectors, 250 subscribers) about 1.

- vantiq: one load process opens N websocket connectors against one `simulate vantiq --json`
  (one source each: `--source sK`), each validating and claiming its source as the SDKs do. Then
  every round, each connector sends notifications at `--rate` per second in total, spread evenly
  over the connectors, for `--seconds`; the acknowledgement time is from a notification leaving
  to its `{"status": 200}` arriving on the same connection (frames on one websocket are in order).
- autotrainer: one load process opens N SUB sockets (one TCP connection each) to one `simulate
  autotrainer --json` publishing heartbeats and events every 0.5 s; each round reports the
  fan-out delay of a publication (receive time minus the body's `timestamp`/`when`), how many
  subscribers got every publication, and get-status round trips on the REQ socket meanwhile.

The simulator runs on one CPU and the load on the others; its NDJSON goes to /dev/null. With
--before, the older fieldctl's simulator takes the same load, round by round, the order of the two
alternating (one simulator at a time: each holds thousands of connections), and its figures stand
in the "before" column.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import _common
from _common import BenchFailed, Row

from fieldctl.protocols.runtime.open_files import raise_soft_limit

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

T = TypeVar("T")
TOKEN = "tok-scale-4c1e9a55"  # simulate vantiq without --token-file takes any; remembered as a secret


def alternated(args: argparse.Namespace, run: Callable[[str, int], list[T]]) -> dict[str, list[T]]:
    """Each fieldctl's rounds: `run(python, rounds)` starts that fieldctl's simulator, loads it and
    stops it. Alone: one simulator for all rounds. With --before, one simulator per round and per
    fieldctl (one at a time: each holds thousands of connections), the order alternating from
    round to round, since whichever runs first on a machine pays for its warm-up."""
    pythons = list(_common.fieldctl_pythons(args).items())
    if len(pythons) == 1:
        return {pythons[0][0]: run(pythons[0][1], args.rounds)}
    runs: dict[str, list[T]] = {which: [] for which, _ in pythons}
    for round_ in range(args.rounds):
        for which, python in pythons if round_ % 2 == 0 else pythons[::-1]:
            runs[which] += run(python, 1)
    return runs


# --- vantiq ------------------------------------------------------------------------------------------


async def vantiq_load(url: str, connectors: int, rounds: int, rate: float, seconds: float) -> list[list[float]]:
    """Acknowledgement times (s) per round, over all connectors."""
    import websockets

    async def connect(number: int) -> ClientConnection:
        conn = await websockets.connect(url, max_queue=None, ping_interval=None, open_timeout=60)
        await conn.send(json.dumps({"op": "validate", "resourceName": "system.credentials", "object": TOKEN}))
        if json.loads(await conn.recv()).get("status") != 200:
            raise BenchFailed("simulate vantiq refused the token")
        source = f"s{number}"
        await conn.send(
            json.dumps(
                {
                    "op": "connectExtension",
                    "resourceName": "sources",
                    "resourceId": source,
                    "parameters": {"reconnectSecret": f"{source}_{uuid.uuid4()}"},
                }
            )
        )
        while json.loads(await conn.recv()).get("op") != "configureExtension":
            pass
        return conn

    gate = asyncio.Semaphore(50)  # handshakes in flight at once

    async def connect_gated(number: int) -> ClientConnection:
        async with gate:
            return await connect(number)

    started = time.monotonic()
    conns = await asyncio.gather(*(connect_gated(n) for n in range(connectors)))
    print(f"vantiq: {connectors} connectors claimed their sources in {time.monotonic() - started:.1f} s", flush=True)
    interval = connectors / rate  # each connector's period

    async def notify(number: int, conn: ClientConnection, until: float, acks: list[float]) -> None:
        await asyncio.sleep(interval * number / connectors)  # spread evenly
        sequence = 0
        while time.monotonic() < until:
            frame = json.dumps(
                {
                    "op": "notification",
                    "resourceName": "sources",
                    "resourceId": f"s{number}",
                    "object": {"n": sequence, "value": 21.5},
                }
            )
            sent = time.perf_counter()
            await conn.send(frame)
            reply = json.loads(await conn.recv())
            acks.append(time.perf_counter() - sent)
            if reply.get("status") != 200:
                raise BenchFailed(f"connector {number}: answered {reply}")
            sequence += 1
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent)))

    results = []
    try:
        for _ in range(rounds):
            acks: list[float] = []
            until = time.monotonic() + seconds
            await asyncio.gather(*(notify(n, conn, until, acks) for n, conn in enumerate(conns)))
            results.append(acks)
    finally:
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)
    return results


def vantiq_rounds(args: argparse.Namespace, sim_cpus: set[int] | None, python: str, rounds: int) -> list[list[float]]:
    port = _common.free_port()
    url = f"ws://127.0.0.1:{port}/api/v1/wsock/websocket"
    argv = [
        *_common.fieldctl(python),
        "simulate",
        "vantiq",
        "--json",
        "--endpoint",
        f"server={url}",
        *(arg for n in range(args.connectors) for arg in ("--source", f"s{n}")),
    ]
    proc = _common.serve(argv, port, sim_cpus, "fieldctl simulate vantiq", timeout=60)  # thousands of sources to set up
    try:
        return asyncio.run(vantiq_load(url, args.connectors, rounds, args.rate, args.seconds))
    finally:
        _common.stop(proc)


def vantiq_rows(args: argparse.Namespace, sim_cpus: set[int] | None) -> list[Row]:
    runs = alternated(args, lambda python, rounds: vantiq_rounds(args, sim_cpus, python, rounds))

    def ms(which: str, fraction: float) -> list[float] | None:
        return [_common.percentile(acks, fraction) * 1000 for acks in runs[which]] if which in runs else None

    counts = "; ".join(f"{which} {', '.join(str(len(acks)) for acks in rounds)}" for which, rounds in runs.items())
    name = f"simulate vantiq, {args.connectors} connectors: acknowledgement"
    return [
        Row(
            f"{name} p50",
            "ms",
            ms("fieldctl", 0.5) or [],
            None,
            before=ms("before", 0.5),
            notes=[
                f"{args.rate:g} notifications/s in all, {args.seconds:g} s per round; acknowledged per round: {counts}"
            ],
        ),
        Row(f"{name} p99", "ms", ms("fieldctl", 0.99) or [], None, goal="≤ 50 ms", before=ms("before", 0.99)),
    ]


# --- autotrainer -------------------------------------------------------------------------------------


def autotrainer_load(
    events: str, commands: str, subscribers: int, rounds: int, seconds: float
) -> list[tuple[list[float], float, list[float]]]:
    """Per round: fan-out delays (s), the share of subscribers that got every publication of the
    round's middle, and get-status round trips (s)."""
    import zmq

    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, subscribers + 16)
    subs = []
    for _ in range(subscribers):
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(events)
        subs.append(sub)
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(commands)
    index = {sub: number for number, sub in enumerate(subs)}
    poller = zmq.Poller()
    for sub in subs:
        poller.register(sub, zmq.POLLIN)
    silent, deadline = set(subs), time.monotonic() + 30
    while silent:  # every subscription has reached the publisher: each has heard something
        if time.monotonic() > deadline:
            raise BenchFailed(f"{len(silent)} of {subscribers} subscribers heard nothing in 30 s")
        for sock, _ in poller.poll(100):
            sock.recv_multipart()
            silent.discard(sock)
    for sub in subs:  # what queued up during the connect
        while sub.poll(0):
            sub.recv_multipart()
    results = []
    nonce = 0
    try:
        for _ in range(rounds):
            delays: list[float] = []
            got: dict[int, set[float]] = {index: set() for index in range(subscribers)}
            rtts: list[float] = []
            until = time.monotonic() + seconds
            next_command = time.monotonic()
            while time.monotonic() < until:
                for sock, _ in poller.poll(50):
                    frames = sock.recv_multipart()
                    now = time.time()
                    body = json.loads(frames[-1])
                    stamp = body.get("timestamp", body.get("when")) if isinstance(body, dict) else None
                    if isinstance(stamp, (int, float)):
                        delays.append(now - stamp)
                        got[index[sock]].add(stamp)
                if time.monotonic() >= next_command:
                    nonce += 1
                    sent = time.perf_counter()
                    req.send(_common.get_status(nonce))
                    if not req.poll(5000):
                        raise BenchFailed("simulate autotrainer did not answer get-status within 5 s")
                    req.recv()
                    rtts.append(time.perf_counter() - sent)
                    next_command = time.monotonic() + 0.2
            every = set.union(*got.values()) if got else set()
            middle = sorted(every)[len(every) // 4 : len(every) * 3 // 4]  # not the edges of the window
            complete = sum(all(stamp in stamps for stamp in middle) for stamps in got.values()) / subscribers
            results.append((delays, complete, rtts))
    finally:
        for sock in (*subs, req):
            sock.close(linger=0)
        ctx.term()
    return results


def autotrainer_rounds(
    args: argparse.Namespace, sim_cpus: set[int] | None, python: str, rounds: int
) -> list[tuple[list[float], float, list[float]]]:
    device = _common.start_device(
        sim_cpus, "--set", "heartbeat.interval_s=0.5", "--set", "simulate.event_interval_s=0.5", python=python
    )
    try:
        return autotrainer_load(device.events, device.commands, args.subscribers, rounds, args.seconds)
    finally:
        _common.stop(device.proc)


def autotrainer_rows(args: argparse.Namespace, sim_cpus: set[int] | None) -> list[Row]:
    runs = alternated(args, lambda python, rounds: autotrainer_rounds(args, sim_cpus, python, rounds))

    def fanout(which: str) -> list[float] | None:
        return [_common.percentile(d, 0.99) * 1000 for d, _, _ in runs[which]] if which in runs else None

    def commands(which: str) -> list[float] | None:
        return [_common.percentile(r, 0.99) * 1000 for _, _, r in runs[which]] if which in runs else None

    rounds = runs["fieldctl"]
    name = f"simulate autotrainer, {args.subscribers} subscribers"
    return [
        Row(
            f"{name}: fan-out delay p99",
            "ms",
            fanout("fieldctl") or [],
            None,
            before=fanout("before"),
            notes=[
                f"subscribers that got every publication (mid-round), per round: "
                f"{', '.join(f'{share:.0%}' for _, share, _ in rounds)}; publications per round: "
                f"{', '.join(str(len(d) // max(1, args.subscribers)) for d, _, _ in rounds)}"
            ],
        ),
        Row(f"{name}: get-status p99", "ms", commands("fieldctl") or [], None, before=commands("before")),
    ]


def collect(args: argparse.Namespace) -> list[Row]:
    raise_soft_limit()  # the load's connections, and (inherited) the simulator's
    sim_cpus, _ = _common.cpu_split(args.pin)
    rows = vantiq_rows(args, sim_cpus) + autotrainer_rows(args, sim_cpus)
    _common.print_rounds(rows)
    return rows


#: Options whose default depends on --quick: option: (--quick, default).
SCALED: _common.Scaled = {"connectors": (500, 2000), "subscribers": (250, 1000), "seconds": (5.0, 10.0)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.scaled_argument(parser, SCALED, "connectors", "vantiq connectors")
    _common.scaled_argument(parser, SCALED, "subscribers", "autotrainer subscribers")
    parser.add_argument(
        "--rate",
        type=float,
        default=400.0,
        help="vantiq notifications per second, all connectors together (default 400: each of "
        "2,000 connectors every 5 s)",
    )
    _common.scaled_argument(parser, SCALED, "seconds", "seconds per round", type=float)


settle = _common.settler(SCALED)


if __name__ == "__main__":
    sys.exit(_common.standalone(__doc__, add_arguments, collect, settle))
