"""`fieldctl bench PROFILE command NAME` and `fieldctl bench PROFILE listen`: throughput and
latency of a device (or a simulator) through the same client sessions `command` and the console
use. Sessions are opened and warmed up (one request each, not counted) before the clock starts,
so the figures are the device's and the wire's, not process start-up's."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldctl.cli.framework.bounded import COUNT, SECONDS, Bounded
from fieldctl.cli.framework.common import JsonOpt, ProfileOptions, ViaOpt, wait_while_running, with_profile
from fieldctl.cli.framework.completers import command_names
from fieldctl.cli.framework.protocol_options import ProtocolCommand
from fieldctl.protocols.core.limits import MAX_RUN_SECONDS

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message
    from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome

Call = Callable[[], Awaitable["CommandOutcome"]]
Tick = Callable[[float], None]
MODES = ("command", "listen")
#: How often the progress bar moves (seconds).
TICK_S = 0.1
#: A benchmark's own bounds: it runs for a moment at least, and asks for a rate a loop can keep.
BENCH_SECONDS = Bounded(float, 0.001, MAX_RUN_SECONDS, " of seconds")
RATE = Bounded(float, 0.001, 1_000_000, " of requests per second")
#: How long each mode runs when neither --requests nor --duration says: long enough for the
#: percentiles of a loopback simulator (thousands of answers a second) to rest on many samples.
COMMAND_SECONDS, LISTEN_SECONDS = 5.0, 10.0


class BenchCommand(ProtocolCommand):
    """bench runs the command or the listen role: it takes the protocol options of both."""

    roles = MODES


@dataclass
class Sample:
    """One request: when it left (seconds since the clock started) and how long its answer took."""

    client: int
    sent_s: float
    latency_s: float
    ok: bool
    error: str | None = None  # raised instead of answered (timeout, connection lost): no latency figure


@with_profile
def bench(
    profile: ProfileOptions,
    mode: Annotated[str, typer.Argument(help="what to measure: command or listen", show_default=False)],
    name: Annotated[
        str | None,
        typer.Argument(help="command mode: the command's name", show_default=False, autocompletion=command_names),
    ] = None,
    data: Annotated[str | None, typer.Option("--data", metavar="JSON|@FILE|@-", help="Request payload.")] = None,
    clients: Annotated[int, typer.Option("--clients", min=1, max=1000, help="Concurrent client sessions.")] = 1,
    requests: Annotated[
        int | None, typer.Option("--requests", parser=COUNT, metavar="N", help="Requests in all (default: run 5 s).")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            parser=BENCH_SECONDS,
            metavar="S",
            help="Run for S seconds instead of a number of requests (default 5; listen: 10).",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            parser=RATE,
            metavar="R",
            help="At most R requests per second in all (default: as fast as answers come).",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            parser=SECONDS,
            metavar="S",
            help="Seconds to wait for each answer (default timeouts.command_s).",
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Do not wait for the result of an asynchronous command.")
    ] = False,
    via: ViaOpt = None,
    json_: JsonOpt = False,
    csv: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="Also write every sample to FILE (CSV).")
    ] = None,
) -> None:
    """Measure messages per second and latency (min, p50, p90, p99, p99.9, max); exit 1 if a request
    failed, 4 if listen heard nothing."""
    import asyncio

    from fieldctl.cli.framework import common
    from fieldctl.protocols.core.errors import Unsupported, UsageError

    if mode not in MODES:
        raise UsageError(f"bench: {mode!r} is not a mode (command NAME, or listen)")
    if mode == "listen" and (name or data or via or requests or rate or no_wait or clients != 1):
        raise UsageError(
            "bench listen takes --duration only (NAME, --data, --clients, --requests, --rate, --via "
            "and --no-wait are for bench command)"
        )
    if mode == "command" and not name:
        raise UsageError("bench command: name the command (bench PROFILE command NAME)")
    if requests is not None and duration is not None:
        raise UsageError("--requests and --duration: give one of them")
    payload = common.read_data(data)
    prof = profile.load()
    drv = common.driver(prof)
    as_json = common.json_mode(json_)
    count = requests if mode == "command" else None
    if count is None and duration is None:
        duration = COMMAND_SECONDS if mode == "command" else LISTEN_SECONDS
    if mode == "command":
        _reserve_open_files(drv, clients, via)
    with _progress(not as_json, count or duration or LISTEN_SECONDS, "" if count else " s") as tick:
        if mode == "listen":
            assert duration is not None
            result, rows = asyncio.run(_listen(drv, profile.options("listen", drv), duration, tick))
        else:
            assert name is not None
            wait_s = timeout if timeout is not None else float(prof.setting("timeouts.command_s", 5.0))
            client = (
                _control(via, prof, name, payload, wait_s)
                if via
                else _session(drv, profile.options("command", drv), name, payload, wait_s, not no_wait)
            )
            try:
                result, rows = asyncio.run(_commands([client] * clients, count, duration, rate, tick))
            except Unsupported as exc:  # no client command: perhaps its simulator acts on them
                if drv.commands_from_simulator:
                    raise  # it says so, and how
                raise Unsupported(
                    f"{exc}; where a simulator acts on commands: `simulate {prof.name} --control "
                    f"SOCKET`, then `bench ... command NAME --via SOCKET`"
                ) from None
            result = {"command": name, "clients": clients, **result}
    result = {"target": profile.name, "profile": prof.name, "mode": mode, **result}
    if csv is not None:
        _write_csv(csv, rows)
    _report(result, as_json)
    if result.get("failed") or result.get("errors"):
        raise typer.Exit(1)
    if result.get("messages") == 0:
        raise typer.Exit(4)  # silence: nothing to measure


def _reserve_open_files(drv: BaseDriver, clients: int, via: str | None) -> None:
    """Every client's session (or, through --via, its control connection) must fit the process's
    limit on open files, raised to the hard one first; exit 2 if they cannot."""
    from fieldctl.protocols.runtime.open_files import per_run, reserve

    reserve(clients * (1 if via else per_run(drv, "command")), f"{clients} bench clients")


def _session(
    drv: BaseDriver, options: dict[str, Any], name: str, data: Any, timeout: float, wait: bool
) -> Callable[[], contextlib.AbstractAsyncContextManager[Call]]:
    """A client that is one session of the driver, kept open for all its requests."""

    @contextlib.asynccontextmanager
    async def client() -> AsyncIterator[Call]:
        async with drv.session(drv.context(_ignore, options)) as session:
            yield lambda: session.command(name, data, timeout=timeout, wait=wait)

    return client


def _control(
    via: str, prof: Profile, name: str, data: Any, timeout: float
) -> Callable[[], contextlib.AbstractAsyncContextManager[Call]]:
    """A client for a profile whose commands act from the server side: as `command --via`, each
    request asks the simulator's control path."""
    from fieldctl.protocols.runtime.control import command_message, request

    msg = command_message(prof.name, name, data)

    @contextlib.asynccontextmanager
    async def client() -> AsyncIterator[Call]:
        yield lambda: request(via, "command", msg, _ignore, timeout)

    return client


def _ignore(msg: Message) -> None:
    """The bench counts answers; it does not show the traffic."""


async def _commands(
    clients: list[Callable[[], contextlib.AbstractAsyncContextManager[Call]]],
    requests: int | None,
    duration: float | None,
    rate: float | None,
    tick: Tick,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every client sends until `requests` are sent in all, or for `duration` seconds; request k
    leaves no earlier than k / rate seconds after the start."""
    import asyncio
    import itertools
    import time

    from fieldctl.cli.roles.latency import quantiles
    from fieldctl.protocols.core.errors import FieldctlError
    from fieldctl.protocols.transport import together

    samples: list[Sample] = []
    async with contextlib.AsyncExitStack() as stack:
        calls = [await stack.enter_async_context(client()) for client in clients]
        await together(*(call() for call in calls))  # warm-up: connections and handshakes, not counted
        start = time.perf_counter()
        numbers = itertools.count()

        async def run(index: int, call: Call) -> None:
            while True:
                number = next(numbers)
                if requests is not None and number >= requests:
                    return
                if rate is not None:
                    await asyncio.sleep(max(0.0, start + number / rate - time.perf_counter()))
                if duration is not None and time.perf_counter() - start >= duration:
                    return
                sent = time.perf_counter()
                try:
                    outcome = await call()
                    samples.append(Sample(index, sent - start, time.perf_counter() - sent, outcome.ok))
                except FieldctlError as exc:
                    samples.append(Sample(index, sent - start, time.perf_counter() - sent, False, str(exc)))

        def progress() -> float:
            return len(samples) if requests is not None else time.perf_counter() - start

        async with _ticking(tick, progress):
            await together(*(run(index, call) for index, call in enumerate(calls)))
        elapsed = time.perf_counter() - start
    answered = [sample for sample in samples if sample.error is None]
    errors = [sample.error for sample in samples if sample.error is not None]
    result = {
        "requests": len(samples),
        "ok": sum(s.ok for s in answered),
        "failed": sum(not s.ok for s in answered),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "duration_s": elapsed,
        "per_second": len(answered) / elapsed if elapsed > 0 else None,
        "latency_s": quantiles(s.latency_s for s in answered),
        "latency_samples": len(answered),
    }
    rows = [
        {
            "client": s.client,
            "sent_s": s.sent_s,
            "latency_s": s.latency_s if s.error is None else None,
            "ok": s.ok,
            "error": s.error,
        }
        for s in samples
    ]
    return result, rows


async def _listen(
    drv: BaseDriver, options: dict[str, Any], duration: float, tick: Tick
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Follows the device for `duration` seconds from its first message (connecting is not
    measured; no message within `duration` of the start ends the run with none)."""
    import asyncio
    import itertools
    import time

    from fieldctl.cli.roles.latency import quantiles

    arrivals: list[tuple[float, bool]] = []
    first = asyncio.Event()

    def emit(msg: Message) -> None:
        if not msg.is_link:
            arrivals.append((time.perf_counter(), msg.error is not None))
            first.set()

    listening = asyncio.ensure_future(drv.listen(drv.context(emit, options)))
    started = time.perf_counter()
    try:
        await wait_while_running(listening, first.wait(), duration)
        if listening.done():
            listening.result()  # it could not connect: that is the outcome
        start = arrivals[0][0] if arrivals else started
        async with _ticking(tick, lambda: time.perf_counter() - start):
            await wait_while_running(
                listening, asyncio.sleep(max(0.0, start + duration - time.perf_counter())), duration
            )
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening  # a listener that failed meanwhile raises its error here
    counted = (
        [(at - arrivals[0][0], bad) for at, bad in arrivals if at <= arrivals[0][0] + duration] if arrivals else []
    )
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(counted)]
    result = {
        "messages": len(counted),
        "malformed": sum(bad for _, bad in counted),
        "duration_s": duration,
        "per_second": len(counted) / duration,
        "interval_s": quantiles(gaps),
        "interval_samples": len(gaps),
    }
    rows = [
        {"received_s": at, "interval_s": gap, "malformed": bad}
        for (at, bad), gap in zip(counted, [None, *gaps], strict=False)
    ]
    return result, rows


@contextlib.asynccontextmanager
async def _ticking(tick: Tick, progress: Callable[[], float]) -> AsyncIterator[None]:
    """Moves the progress bar every TICK_S while the body runs, and once more at the end."""
    import asyncio

    async def ticker() -> None:
        while True:
            tick(progress())
            await asyncio.sleep(TICK_S)

    task = asyncio.ensure_future(ticker())
    try:
        yield
    finally:
        task.cancel()
        tick(progress())


@contextlib.contextmanager
def _progress(shown: bool, total: float, unit: str) -> Any:
    """A rich progress bar on stderr (requests done, or seconds gone);
    nothing when the output is for a script."""
    if not shown:
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("bench"),
        BarColumn(),
        TextColumn(f"{{task.completed:.0f}}/{{task.total:g}}{unit}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("bench", total=total)
        yield lambda done: bar.update(task, completed=done)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Booleans as `true`/`false`, as other tools read them (not Python's True/False); a figure
    that is not there (no answer, no interval yet) as an empty field."""
    import csv

    from fieldctl.protocols.core.errors import UsageError

    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["sent_s", "latency_s"])
            writer.writeheader()
            writer.writerows({key: _csv_value(value) for key, value in row.items()} for row in rows)
    except OSError as exc:
        raise UsageError(f"--csv {path}: cannot write: {exc.strerror}") from None


def _csv_value(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _report(result: dict[str, Any], as_json: bool) -> None:
    """One JSON line for a script; two lines for a person."""
    import json

    from fieldctl.protocols.core.redact import scrub_value

    result = scrub_value(result)
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console

    from fieldctl.cli.framework.escape import visible
    from fieldctl.cli.roles.latency import NEEDED, milliseconds, too_few

    if result["mode"] == "listen":
        head = (
            f"{result['messages']} messages ({result['malformed']} malformed) in {result['duration_s']:g} s: "
            f"{result['per_second']:.1f} per second"
        )
        figures, label = result["interval_s"], "interval"
    else:
        head = (
            f"{result['requests']} requests by {result['clients']} client(s) in {result['duration_s']:.2f} s: "
            f"{result['per_second'] or 0:.1f} answers per second; {result['ok']} ok, {result['failed']} failed, "
            f"{result['errors']} errors" + (f" (first: {result['first_error']})" if result["first_error"] else "")
        )
        figures, label = result["latency_s"], "latency"
    console = Console(highlight=False)
    console.print(
        visible(
            f"bench {result['target']} {result['mode']}"
            + (f" {result['command']}" if "command" in result else "")
            + f": {head}"
        )
    )
    samples = result[f"{label}_samples"]
    missing = too_few(samples)
    console.print(
        f"{label} ({samples} samples): "
        + "  ".join(f"{key} {milliseconds(value)}" for key, value in figures.items())
        + (f"  ({', '.join(f'{name} needs {NEEDED[name]:,}' for name in missing)} samples)" if missing else "")
    )
