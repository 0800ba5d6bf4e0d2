"""Command round trips against one `fieldctl simulate autotrainer` device, fieldctl against raw pyzmq:
what fieldctl adds to every command the console or a script sends, measured two ways.

- in one process: get-status through fieldctl's driver API (`--client driver`: what `fieldctl
  command` runs, a session per call; `--client session`: one session kept, as in the console)
  against a raw pyzmq REQ socket that sends the request and parses the reply, p50 and p90 over
  many calls after a few warm-up calls;
- one process per command: `fieldctl command autotrainer get-status` against a one-shot raw pyzmq
  script (`python -c`), interpreter start included, median wall time.

Each has a floor, measured in the same rounds: the least the stack fieldctl must use (Typer,
asyncio, zmq.asyncio) costs, whatever fieldctl does. In one process, a raw zmq.asyncio REQ client
called as the session is (one socket kept, `loop.run_until_complete` per call); per process,
`python -c "import typer, asyncio, zmq.asyncio, json"`, which sends nothing. Rows named "floor:"
give the floor against the raw baseline (what the stack costs), and the rows "vs the ... floor"
give fieldctl against it (what fieldctl adds above its stack). Goals stand only on rows of fieldctl
against the raw baseline: what a user compares fieldctl with.

Run: `.venv/bin/python bench/commands.py [--calls N] [--processes N] [--rounds R] [--json]`
(`make bench` runs it through bench/run.py). A report, not a test. Defaults take about 30 s on
2 CPUs, `--quick` about 15 s.

Fair: every client (baseline, floor, fieldctl) talks to the same device process in the same run,
round by round A, B, C, A, B, C...; all are the same interpreter with the same environment; the
device runs on one CPU and the clients on the others; each in-process client gets its own fresh
process, so none inherits another's sockets, caches or garbage.

A client is one context manager in CLIENTS: `with factory(endpoints) as call`, where `call()` makes one
get-status round trip and raises if it failed: `raw` (the baseline), `asyncio` (the floor), and
fieldctl's `session`, one client session kept across calls (the console's "client session per
profile"), and `driver`, one session per call.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import _common
from _common import Device, Row

WARMUP_CALLS = 10

Call = Callable[[], None]


def answered(reply: Any, nonce: int) -> None:
    if reply.get("nonce") != nonce:
        raise RuntimeError(f"unexpected reply {reply}")


@contextlib.contextmanager
def raw_client(endpoints: dict[str, str]) -> Iterator[Call]:
    """The baseline: one synchronous REQ socket, kept; send the request, receive, json.loads, check the nonce."""
    import zmq

    req: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoints["commands"])
    nonces = itertools.count(1)

    def call() -> None:
        nonce = next(nonces)
        req.send(_common.get_status(nonce))
        answered(json.loads(req.recv()), nonce)

    try:
        yield call
    finally:
        req.close()


@contextlib.contextmanager
def asyncio_client(endpoints: dict[str, str]) -> Iterator[Call]:
    """The asyncio floor: what raw_client does through zmq.asyncio, called as the session is called
    (one REQ socket kept, one loop.run_until_complete per call). fieldctl must be asyncio end to end,
    so no fieldctl client can beat this; the session's distance to it is what fieldctl adds."""
    import asyncio

    import zmq
    import zmq.asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    req = zmq.asyncio.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoints["commands"])
    nonces = itertools.count(1)

    async def round_trip(nonce: int) -> Any:
        await req.send(_common.get_status(nonce))
        return json.loads(await req.recv())

    def call() -> None:
        nonce = next(nonces)
        answered(loop.run_until_complete(round_trip(nonce)), nonce)

    try:
        yield call
    finally:
        req.close()
        loop.close()


@contextlib.contextmanager
def fieldctl_client(endpoints: dict[str, str], kept: bool) -> Iterator[Call]:
    """fieldctl's driver API (wait=True): `kept`, one client session across calls, as the console
    keeps one per profile; else a session per call, as `fieldctl command autotrainer get-status`."""
    import asyncio

    from fieldctl.profiles.loader import load_profile
    from fieldctl.protocols.runtime.registry import driver_for
    from fieldctl.protocols.sdk.contract import CommandOutcome

    profile = load_profile("autotrainer", endpoints=[f"{name}={url}" for name, url in endpoints.items()])
    driver = driver_for(profile, lambda text: None)
    loop = asyncio.new_event_loop()
    session = driver.session(driver.context(lambda msg: None)) if kept else None

    async def once() -> CommandOutcome:
        async with driver.session(driver.context(lambda msg: None)) as fresh:
            return await fresh.command("get-status", None, timeout=5.0, wait=True)

    def call() -> None:
        command = session.command("get-status", None, timeout=5.0, wait=True) if session is not None else once()
        outcome = loop.run_until_complete(command)
        if not outcome.ok:
            raise RuntimeError(outcome.summary)

    try:
        yield call
    finally:  # closed, not left to the interpreter's exit: Python 3.10 took minutes formatting
        if session is not None:  # the pending tasks it would warn about
            loop.run_until_complete(session.close())
        loop.close()


Client = Callable[[dict[str, str]], contextlib.AbstractContextManager[Call]]
CLIENTS: dict[str, Client] = {
    "raw": raw_client,
    "asyncio": asyncio_client,
    "driver": functools.partial(fieldctl_client, kept=False),
    "session": functools.partial(fieldctl_client, kept=True),
}
FIELDCTL_CLIENTS = ("session", "driver")  # the others are the baseline and the floor


def run_calls(client: str, endpoints: dict[str, str], calls: int) -> int:
    """Child process: the client's per-call wall times in seconds, as one JSON list on stdout."""
    with CLIENTS[client](endpoints) as call:
        for _ in range(WARMUP_CALLS):
            call()
        times = []
        clock = time.perf_counter
        for _ in range(calls):
            start = clock()
            call()
            times.append(clock() - start)
    print(json.dumps(times))
    return 0


def in_process(device: Device, args: argparse.Namespace, cpus: set[int] | None) -> list[Row]:
    endpoints = json.dumps({"events": device.events, "commands": device.commands})

    def case(client: str, python: str = sys.executable) -> Callable[[int], list[float]]:
        def run(round_: int) -> list[float]:
            argv = [python, __file__, "calls", "--client", client, "--endpoints", endpoints, "--count", str(args.calls)]
            stdout, _ = _common.run_child(argv, f"{client} round trips", _common.child_env(), cpus, timeout=300)
            times: list[float] = json.loads(stdout)
            return times

        return run

    clients = args.client or list(FIELDCTL_CLIENTS)
    print(
        f"command round trips in one process (raw, asyncio floor, {', '.join(clients)}): {args.calls} calls "
        f"per round, {args.rounds} rounds",
        flush=True,
    )
    cases: dict[str | tuple[str, str], Callable[[int], list[float]]] = {"raw": case("raw"), "asyncio": case("asyncio")}
    for client in clients:
        for which, python in _common.fieldctl_pythons(args).items():
            cases[client, which] = case(client, python)
    results = _common.interleaved(args.rounds, cases)

    def ms(which: str | tuple[str, str], fraction: float = 0.5) -> list[float] | None:
        runs = results.get(which)
        return None if runs is None else [_common.percentile(times, fraction) * 1000 for times in runs]

    rows = []
    for client in clients:
        for label, fraction, goal, was in (
            ("p50", 0.5, "≤ 1.2", "4.8× (command), 34× (console)"),
            ("p90", 0.9, "", ""),
        ):
            rows.append(
                Row(
                    f"command get-status in-process ({client}) vs raw REQ, {label}",
                    "ms",
                    ms((client, "fieldctl"), fraction) or [],
                    ms("raw", fraction),
                    "raw REQ/REP",
                    goal,
                    was,
                    before=ms((client, "before"), fraction),
                )
            )
    rows.append(
        Row(
            f"{_common.FLOOR} raw zmq.asyncio REQ vs raw REQ, p50",
            "ms",
            ms("asyncio") or [],
            ms("raw"),
            "raw REQ/REP",
            notes=[
                "one REQ socket kept, one loop.run_until_complete per call, as the "
                "session is called: what asyncio + zmq.asyncio cost over the sync loop"
            ],
        )
    )
    rows += [
        Row(
            f"command get-status in-process ({client}) vs the asyncio floor, p50",
            "ms",
            ms((client, "fieldctl")) or [],
            ms("asyncio"),
            "raw zmq.asyncio REQ/REP",
            before=ms((client, "before")),
        )
        for client in clients
    ]
    return rows


RAW_ONE_SHOT = """\
import json, sys, zmq
req = zmq.Context.instance().socket(zmq.REQ)
req.setsockopt(zmq.LINGER, 0)
req.connect(sys.argv[1])
req.send(json.dumps({"command": 400, "nonce": 1}).encode())
reply = json.loads(req.recv())
print(json.dumps(reply))
sys.exit(0 if reply.get("nonce") == 1 else 1)
"""


#: The one-shot floor: a process that only imports the stack fieldctl must use, sends nothing.
FLOOR_ONE_SHOT = "import typer, asyncio, zmq.asyncio, json"


def one_shot(device: Device, args: argparse.Namespace, cpus: set[int] | None) -> list[Row]:
    argvs = {
        "raw": [sys.executable, "-c", RAW_ONE_SHOT, device.commands],
        "floor": [sys.executable, "-c", FLOOR_ONE_SHOT],
    }
    for which, python in _common.fieldctl_pythons(args).items():
        argvs[which] = [
            *_common.fieldctl(python),
            "command",
            "autotrainer",
            "get-status",
            *(arg for endpoint in device.endpoints for arg in ("--endpoint", endpoint)),
        ]
    env = _common.child_env()
    cases = {name: _common.wall_time(argv, f"{name} one-shot command", env, cpus) for name, argv in argvs.items()}
    print(f"one-shot command processes: {args.processes} of each per round, {args.rounds} rounds", flush=True)
    medians = _common.median_ms_per_round(args.rounds, args.processes, cases)
    return [
        Row(
            "one `fieldctl command get-status` process vs one-shot raw pyzmq",
            "ms",
            medians["fieldctl"],
            medians["raw"],
            "python -c (zmq)",
            "≤ 2",
            "5.1×",
            before=medians.get("before"),
        ),
        Row(
            f"{_common.FLOOR} python -c '{FLOOR_ONE_SHOT}' vs one-shot raw pyzmq",
            "ms",
            medians["floor"],
            medians["raw"],
            "python -c (zmq)",
            notes=["imports the stack fieldctl must use and sends nothing: no fieldctl one-shot can be faster"],
        ),
        Row(
            "one `fieldctl command get-status` process vs the import floor",
            "ms",
            medians["fieldctl"],
            medians["floor"],
            "python -c (import the stack)",
            before=medians.get("before"),
        ),
    ]


def collect(args: argparse.Namespace) -> list[Row]:
    device_cpus, client_cpus = _common.cpu_split(args.pin)
    device = _common.start_device(device_cpus, "--no-timeline")
    try:
        rows = in_process(device, args, client_cpus) + one_shot(device, args, client_cpus)
    finally:
        _common.stop(device.proc)
    _common.print_rounds(rows)
    return rows


SCALED: _common.Scaled = {"calls": (150, 500), "processes": (5, 9)}  # option: (--quick, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.scaled_argument(parser, SCALED, "calls", "in-process round trips per round")
    _common.scaled_argument(parser, SCALED, "processes", "one-shot processes of each kind per round")
    parser.add_argument(
        "--client",
        choices=FIELDCTL_CLIENTS,
        action="append",
        help="the fieldctl client measured in-process (repeatable; default both: session, the "
        "console's, and driver, what one `fieldctl command` runs)",
    )


settle = _common.settler(SCALED)


def main() -> int:
    if sys.argv[1:2] == ["calls"]:  # the child process of one in-process round
        parser = argparse.ArgumentParser()
        parser.add_argument("role")
        parser.add_argument("--client", choices=CLIENTS, required=True)
        parser.add_argument("--endpoints", required=True, help="JSON: endpoint name -> URL")
        parser.add_argument("--count", type=int, required=True)
        args = parser.parse_args()
        return run_calls(args.client, json.loads(args.endpoints), args.count)
    return _common.standalone(__doc__, add_arguments, collect, settle)


if __name__ == "__main__":
    sys.exit(main())
