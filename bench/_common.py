"""What every benchmark shares: the result row, the A/B round runner, the report table and JSON,
subprocess environment and CPU pinning, and a simulated autotrainer device.

A benchmark is a report, not a test: it prints ratios and never asserts times. Every row compares
fieldctl with a baseline measured in the same run, alternating A, B, A, B... round by round, so
load on the (shared, noisy) machine affects both alike; the ratio is taken per round (fieldctl and
the baseline of the same round) and reported as the median and min–max over the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

#: A module's options whose default depends on --quick: option name -> (quick, full).
Scaled = dict[str, tuple[float, float]]


class BenchFailed(Exception):
    """A process failed or hung: the report cannot be made (exit 1)."""


#: The path of a row that measures the stack's floor, not fieldctl (bench/commands.py).
FLOOR = "floor:"


@dataclass
class Row:
    """One row of the report: fieldctl's value and the baseline's, one of each per round."""

    path: str
    unit: str  # of the values: "msgs/s", "ms", "MB"
    fieldctl: list[float]
    baseline: list[float] | None  # None: an absolute row (memory growth), the value is the result
    baseline_name: str = ""
    goal: str = ""
    was: str = ""  # what the row measured when its goal was set, for reference
    notes: list[str] = field(default_factory=list)
    #: The same case run by the --before interpreter (an older fieldctl) in the same rounds.
    before: list[float] | None = None

    @property
    def results(self) -> list[float]:
        """Per round: fieldctl / baseline of the same round (or the value itself for an absolute row)."""
        return self._ratios(self.fieldctl)

    @property
    def before_results(self) -> list[float] | None:
        return None if self.before is None else self._ratios(self.before)

    def _ratios(self, values: list[float]) -> list[float]:
        if self.baseline is None:
            return list(values)
        return [mine / base if base else float("nan") for mine, base in zip(values, self.baseline, strict=True)]

    @property
    def absolute(self) -> bool:
        return self.baseline is None

    def as_dict(self) -> dict[str, object]:
        results = self.results
        return {
            "path": self.path,
            "unit": self.unit,
            "rounds": len(results),
            "fieldctl": self.fieldctl,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "result": "value" if self.absolute else "ratio",
            "median": statistics.median(results),
            "min": min(results),
            "max": max(results),
            "goal": self.goal,
            "was": self.was,
            "notes": self.notes,
            **(
                {}
                if self.before is None
                else {
                    "before": self.before,
                    "before_median": statistics.median(self.before_results or []),
                    "before_min": min(self.before_results or []),
                    "before_max": max(self.before_results or []),
                }
            ),
        }


def interleaved(rounds: int, cases: dict[K, Callable[[int], T]], warmup: bool = False) -> dict[K, list[T]]:
    """Runs the cases A, B, A, B... for `rounds` rounds (plus an untimed first round with `warmup`)."""
    results: dict[K, list[T]] = {name: [] for name in cases}
    for round_ in range(0 if warmup else 1, rounds + 1):
        for name, case in cases.items():
            value = case(round_)
            if round_:
                results[name].append(value)
    return results


def _number(value: float, unit: str) -> str:
    if unit == "MB":
        return f"{value:+.1f} MB"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"
    return f"{value:,.0f} {unit}"


def _result(row: Row, results: list[float] | None = None) -> str:
    results = row.results if results is None else results
    if not results:
        return "-"
    low, mid, high = min(results), statistics.median(results), max(results)
    if row.absolute and row.unit == "MB":
        return f"{mid:+.1f} MB ({low:+.1f}–{high:+.1f})"
    if row.absolute:
        return f"{mid:.1f} {row.unit} ({low:.1f}–{high:.1f})"
    times = "×" if row.unit == "ms" else ""
    return f"{mid:.2f}{times} ({low:.2f}–{high:.2f})"


def table(rows: list[Row], title: str = "") -> str:
    """The report: one line per row, ratio = fieldctl / baseline per round, median (min–max)."""
    head: tuple[str, ...] = ("path", "rounds", "fieldctl", "baseline", "ratio (min–max)", "goal", "was")
    lines = [
        [
            row.path,
            str(len(row.fieldctl)),
            _number(statistics.median(row.fieldctl), row.unit),
            "-" if row.baseline is None else _number(statistics.median(row.baseline), row.unit),
            _result(row),
            row.goal,
            row.was,
        ]
        for row in rows
    ]
    if any(row.before is not None for row in rows):  # --before: its ratio next to this one's
        head = (*head[:4], "before: ratio", "after: ratio", *head[5:])
        for line, row in zip(lines, rows, strict=True):
            line.insert(4, _result(row, row.before_results or []))
    left = (0, len(head) - 2, len(head) - 1)
    widths = [max(len(head[i]), *(len(line[i]) for line in lines)) for i in range(len(head))]

    def fmt(cells: list[str] | tuple[str, ...]) -> str:
        aligned = (
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(aligned).rstrip()

    out = [title] if title else []
    out += [fmt(head), "-" * len(fmt(head)), *(fmt(line) for line in lines)]
    for row in rows:
        for note in row.notes:
            out.append(f"note ({row.path}): {note}")
    out.append(
        "fieldctl and baseline: medians over the rounds; ratio: fieldctl / baseline of the same round "
        "(throughput: higher is better; times: lower is better); memory: growth after warm-up"
    )
    if any(row.goal for row in rows):
        out.append("goal: what a row should reach; was: what it measured when the goal was set")
    if any(row.path.startswith(FLOOR) for row in rows):
        out.append(
            f"rows '{FLOOR} ...': the least the stack fieldctl must use costs (in the fieldctl column), "
            "against the raw baseline; rows 'vs the ... floor': fieldctl against that floor"
        )
    if any(row.before is not None for row in rows):
        out.append(
            "before: the --before interpreter's fieldctl, run in the same rounds against the same baseline; "
            "after: this tree's"
        )
    return "\n".join(out)


def print_rounds(rows: list[Row]) -> None:
    """Each row's rounds, so a suspicious median can be traced to its round."""
    for row in rows:
        pairs = zip(row.fieldctl, row.baseline or row.fieldctl, strict=True)
        cells = [f"{mine:.2f}/{base:.2f}" for mine, base in pairs]
        print(f"{row.path}: fieldctl/baseline {row.unit} per round: {', '.join(cells)}")
        if row.before is not None:
            print(f"{row.path}: before {row.unit} per round: {', '.join(f'{value:.2f}' for value in row.before)}")


def as_json(rows: list[Row]) -> str:
    return json.dumps(
        {"python": sys.version.split()[0], "cpus": os.cpu_count(), "rows": [row.as_dict() for row in rows]},
        indent=2,
        ensure_ascii=False,
    )


# --- processes ---------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank, the same for every row (NaN when there is nothing to rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def fieldctl(python: str = sys.executable) -> list[str]:
    """The command line of a fieldctl process. -P: the working directory (perhaps a checkout, with
    its fieldctl.egg-info) stays off sys.path, so an older fieldctl (--before) reads its own entry
    points, not this tree's."""
    return [python, "-P", "-m", "fieldctl"]


def child_env(**extra: str) -> dict[str, str]:
    """The same environment for fieldctl and the baseline: no PYTHONUNBUFFERED (which makes every
    write a system call) and bytecode caches allowed (installed code has its caches)."""
    env = {**os.environ, **extra}
    env.pop("PYTHONUNBUFFERED", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cpu_split(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """The device on one CPU, the client under test on the others, so they never take turns on one CPU."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def spawn(argv: list[str], cpus: set[int] | None, **options: Any) -> subprocess.Popen[bytes]:
    """A child process on `cpus` (None: any CPU), pinned before exec so that its threads stay there."""
    return subprocess.Popen(
        argv,
        preexec_fn=_pinned(cpus),  # noqa: PLW1509  the benchmarks start children while no thread of theirs runs
        **options,
    )


def last_line(stderr: bytes) -> str:
    """What a failed child said last, for the error that ends the report."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no stderr)"


def run_child(
    argv: list[str], what: str, env: dict[str, str], cpus: set[int] | None = None, timeout: float = 60.0
) -> tuple[bytes, float]:
    """Runs a child to its end: its stdout and its wall time in seconds, start-up included."""
    start = time.perf_counter()
    result = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=timeout,
        preexec_fn=_pinned(cpus),
        check=False,  # a failure becomes BenchFailed, with what the child said
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchFailed(f"{what} exited {result.returncode}: {last_line(result.stderr)}")
    return result.stdout, elapsed


def wall_time(argv: list[str], what: str, env: dict[str, str], cpus: set[int] | None = None) -> Callable[[int], float]:
    """A case for interleaved(): one run of the child, its wall time in seconds."""
    return lambda _: run_child(argv, what, env, cpus)[1]


def median_ms_per_round(rounds: int, runs: int, cases: dict[K, Callable[[int], float]]) -> dict[K, list[float]]:
    """Per case, the median of `runs` runs (seconds) in each round, in ms; within a round the cases
    alternate run by run, and the first round starts with an untimed pass of each that fills the OS
    file cache and the bytecode caches."""
    medians: dict[K, list[float]] = {key: [] for key in cases}
    for round_ in range(1, rounds + 1):
        for key, samples in interleaved(runs, cases, warmup=round_ == 1).items():
            medians[key].append(statistics.median(samples) * 1000)
    return medians


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
    if proc is not None:
        proc.wait(10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, goal: str, timeout: float) -> float:
    """Seconds until `ready()` (polled every 50 ms); BenchFailed if `proc` exits or time runs out first."""
    start = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            raise BenchFailed(f"{what} exited {proc.returncode} while waiting for {goal}")
        if time.monotonic() - start > timeout:
            raise BenchFailed(f"{what}: waited {timeout:g} s for {goal}")
        time.sleep(0.05)
    return time.monotonic() - start


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def serve(
    argv: list[str], port: int, cpus: set[int] | None, what: str, timeout: float = 20.0
) -> subprocess.Popen[bytes]:
    """A simulator on `cpus`, returned once it listens on `port` (stopped if it does not)."""
    proc = spawn(
        argv, cpus, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env()
    )
    try:
        wait_until(lambda: _listening(port), proc, what, f"a listener on port {port}", timeout)
    except BenchFailed:
        stop(proc)
        raise
    return proc


#: The device's get-status command (ApiCommand.GET_STATUS, spec §6.3).
GET_STATUS = 400


def get_status(nonce: int) -> bytes:
    """A get-status request as the device's REQ/REP socket takes it."""
    return json.dumps({"command": GET_STATUS, "nonce": nonce}).encode()


@dataclass
class Device:
    """`fieldctl simulate autotrainer` on free loopback ports: the same device for fieldctl and baseline."""

    proc: subprocess.Popen[bytes]
    events: str
    commands: str

    @property
    def endpoints(self) -> list[str]:
        return [f"events={self.events}", f"commands={self.commands}"]


def fieldctl_pythons(args: argparse.Namespace) -> dict[str, str]:
    """The interpreters whose fieldctl is measured: "fieldctl" (this tree), and "before" with --before."""
    return {"fieldctl": sys.executable, **({"before": args.before} if getattr(args, "before", None) else {})}


def start_device(cpus: set[int] | None, *options: str, python: str = sys.executable) -> Device:
    """A simulated autotrainer (`options` added to its command line) on `cpus`, once it takes commands."""
    port = free_port()
    events, commands = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{port}"
    argv = [
        *fieldctl(python),
        "simulate",
        "autotrainer",
        "--json",
        "--endpoint",
        f"events={events}",
        "--endpoint",
        f"commands={commands}",
        *options,
    ]
    return Device(serve(argv, port, cpus, "fieldctl simulate autotrainer"), events, commands)


# --- running a benchmark ------------------------------------------------------------------------


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds, at least 3 (default 3)")
    parser.add_argument("--quick", action="store_true", help="smaller runs: the whole `make bench` in ~3 minutes")
    parser.add_argument("--json", action="store_true", help="print the result rows as JSON (details go to stderr)")
    parser.add_argument(
        "--before",
        metavar="PYTHON",
        default=None,
        help="also run every fieldctl case with this interpreter (one with an older fieldctl "
        "installed, e.g. /work/main/.venv/bin/python), interleaved in the same rounds: "
        "the report shows its ratio (before) next to this tree's (after)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the device to one CPU and the client under test to the others (default on)",
    )


def scaled_argument(
    parser: argparse.ArgumentParser, scaled: Scaled, name: str, help: str, type: Callable[[str], float] = int
) -> None:
    """An option of `scaled`: default None (filled by settler()), its help naming both defaults."""
    quick, full = scaled[name]
    parser.add_argument(
        f"--{name.replace('_', '-')}",
        type=type,
        default=None,
        help=f"{help} (default {_plain(full)}; --quick {_plain(quick)})",
    )


def _plain(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def settler(
    scaled: Scaled, check: Callable[[argparse.Namespace], None] | None = None
) -> Callable[[argparse.Namespace], None]:
    """A module's settle(args): each option of `scaled` left unset gets its --quick or full default,
    then `check` validates the options together (and exits with a message if they do not fit)."""

    def settle(args: argparse.Namespace) -> None:
        for name, (quick, full) in scaled.items():
            if getattr(args, name) is None:
                setattr(args, name, quick if args.quick else full)
        if check is not None:
            check(args)

    return settle


def standalone(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    collect: Callable[[argparse.Namespace], list[Row]],
    settle: Callable[[argparse.Namespace], None] | None = None,
) -> int:
    """main() of a benchmark module, or of run.py for all of them: its options plus the common ones,
    its rows as a table or JSON (then everything else goes to stderr)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    if settle is not None:
        settle(args)
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            rows = collect(args)
    except BenchFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(as_json(rows), flush=True)
    else:
        quick = " (--quick)" if args.quick else ""
        minutes = (time.monotonic() - started) / 60
        title = f"fieldctl against its baselines, {args.rounds} interleaved rounds{quick}, {minutes:.1f} min"
        print("\n" + table(rows, title), flush=True)
    return 0
