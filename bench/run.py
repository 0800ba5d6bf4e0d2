"""Every benchmark, fieldctl's fast paths (ingest, command round trips, start-up, memory, scale) and
its fleets (simulated heartbeats, the board, the exporter), one summary table at the end: what
`make bench` runs.

Run: `.venv/bin/python bench/run.py [--quick] [--rounds R] [--json] [--only NAME ...] [--before PYTHON]`.
Each row is a ratio of fieldctl against a baseline measured in the same run, median and min–max
over at least three interleaved rounds (memory: growth in MB; scale: absolute times). Rows named
"floor: ..." measure the stack fieldctl must use (asyncio, zmq.asyncio, Typer's imports) against
the same baseline, and the rows "vs the ... floor" fieldctl against that floor (bench/commands.py).
A report, not a test: it exits 0 whatever the numbers, 1 only if a process fails or hangs;
tests/bench/ runs every module at tiny sizes so that a broken one fails `make test`.

Before/after: `--before PYTHON` runs every fieldctl case (but memory, fleet_heartbeats and
fleet_board) a second time with an interpreter that has an older fieldctl installed, in the same
rounds, and prints its ratio next to this tree's. An older tree to compare with, e.g. the commit
this branch started from: `git archive REF | tar -x -C /tmp/old && make -C /tmp/old .venv/.installed`,
then `--before /tmp/old/.venv/bin/python`.

Duration on 2 CPUs: `--quick` about 3 minutes; the default about 15-20 minutes, most of it the
memory benchmark's 1,000,000 messages per run (bench/memory.py --messages shrinks it); --before
about doubles it. Each module also runs on its own with more options (see its --help).
"""

from __future__ import annotations

import argparse
import sys

import _common
import commands
import fleet_board
import fleet_heartbeats
import listen_throughput
import memory
import proxy
import scale
import startup

#: The benchmarks in the order they run, each under its module's name (`--only NAME`).
MODULES = {
    module.__name__: module
    for module in (listen_throughput, commands, proxy, startup, memory, scale, fleet_heartbeats, fleet_board)
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", action="append", choices=MODULES, help="run only these benchmarks (repeatable)")


def collect(args: argparse.Namespace) -> list[_common.Row]:
    """Each module's rows in turn, each module with its own options at their defaults (scaled by --quick)."""
    rows: list[_common.Row] = []
    for name in args.only or MODULES:
        module = MODULES[name]
        module_parser = argparse.ArgumentParser()
        module.add_arguments(module_parser)
        module_args = module_parser.parse_args([], namespace=argparse.Namespace(**vars(args)))
        module.settle(module_args)
        print(f"\n== {name} ==", flush=True)
        rows += module.collect(module_args)
    return rows


if __name__ == "__main__":
    sys.exit(_common.standalone(__doc__, add_arguments, collect))
