"""Start-up time of fieldctl's quick paths (help, completion, version) against the floor any Typer
CLI pays, `python -c "import typer"`: a completion request runs on every Tab, so it must cost
little above that floor.

Run: `.venv/bin/python bench/startup.py [--runs N] [--rounds R] [--json]` (`make bench` runs it
through bench/run.py). A report, not a test. Defaults take about 20 s on 2 CPUs, `--quick` 10 s.

Why the comparison is fair: every case is a fresh process of the same interpreter with the same
environment, the cases alternate process by process (so drift on the machine affects all alike),
one untimed warm-up pass fills the OS file cache and the bytecode caches, and each round reports
each case's median wall time; the ratio is taken per round. `import typer` is the floor any Typer
CLI pays; the ratio is what fieldctl adds. One more row, from the same medians: `--help` against
`--version`, which imports fieldctl's app and prints one line (fieldctl's own import floor), so the
table shows how much of `--help` is importing the app and how much is the help itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import _common
from _common import Row

COMPLETE = {"_FIELDCTL_COMPLETE": "complete_bash", "COMP_WORDS": "fieldctl li", "COMP_CWORD": "1"}
#: A profile name: the registry's entry points (every installed package's profiles) are read.
COMPLETE_PROFILE = {"_FIELDCTL_COMPLETE": "complete_bash", "COMP_WORDS": "fieldctl listen a", "COMP_CWORD": "2"}
BASELINE = "python -c 'import typer'"
GOAL, WAS = "≤ 1.3", "1.21–1.29"
COLUMNS = "100"  # the help's width, the same for every run

CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "fieldctl --help": (["--help"], {}),
    "completion of 'fieldctl li'": ([], COMPLETE),
    "completion of 'fieldctl listen a'": ([], COMPLETE_PROFILE),
    "fieldctl listen --help": (["listen", "--help"], {}),
    "fieldctl --version": (["--version"], {}),
}


def collect(args: argparse.Namespace) -> list[Row]:
    print(f"start-up: {args.runs} runs of each case per round, {args.rounds} rounds", flush=True)
    baseline = [sys.executable, "-c", "import typer"]
    cases: dict[str | tuple[str, str], Callable[[int], float]] = {
        BASELINE: _common.wall_time(baseline, BASELINE, _common.child_env(COLUMNS=COLUMNS))
    }
    for which, python in _common.fieldctl_pythons(args).items():
        for name, (argv, env) in CASES.items():
            cases[name, which] = _common.wall_time(
                [*_common.fieldctl(python), *argv], f"{name} ({which})", _common.child_env(COLUMNS=COLUMNS, **env)
            )
    medians = _common.median_ms_per_round(args.rounds, args.runs, cases)
    rows = [
        Row(
            f"{name} vs {BASELINE}",
            "ms",
            medians[name, "fieldctl"],
            medians[BASELINE],
            "import typer",
            GOAL if i < 2 else "",
            WAS if i < 2 else "",
            before=medians.get((name, "before")),
        )
        for i, name in enumerate(CASES)
    ]
    # No extra processes: the same rounds' medians. --version imports the app and prints one line,
    # the least any invocation of fieldctl pays; --help's distance to it is what the help costs.
    rows.append(
        Row(
            "fieldctl --help vs fieldctl --version (its import floor)",
            "ms",
            medians["fieldctl --help", "fieldctl"],
            medians["fieldctl --version", "fieldctl"],
            "fieldctl --version",
        )
    )
    _common.print_rounds(rows)
    return rows


SCALED: _common.Scaled = {"runs": (5, 9)}  # option: (--quick, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.scaled_argument(parser, SCALED, "runs", "timed runs of each case per round")


settle = _common.settler(SCALED)


if __name__ == "__main__":
    sys.exit(_common.standalone(__doc__, add_arguments, collect, settle))
