"""Start-up time of fieldctl's quick paths against `python -c "import typer"`.

Run: `.venv/bin/python bench/startup.py [--runs N]` (`make bench` runs it too). It is a report,
not a test: it exits 0 whatever the ratios (target <= 1.5x), and 1 only if a command fails.

Why the comparison is fair: every case is a fresh process of the same interpreter with the same
environment, the cases alternate round by round (so drift on the machine affects all alike),
one warm-up round fills the OS file cache and the bytecode caches, and each case reports its
median wall time. `import typer` is the floor any Typer CLI pays; the ratio is what fieldctl adds.
`import typer.rich_utils` is shown for reference: what Typer's rich help formatting costs any
Typer CLI on `--help`, before it prints anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

FIELDCTL = [sys.executable, "-m", "fieldctl"]
COMPLETE = {"_FIELDCTL_COMPLETE": "complete_bash", "COMP_WORDS": "fieldctl li", "COMP_CWORD": "1"}
TARGET = 1.5

BASELINE = "python -c 'import typer'"
RICH_HELP = "python -c 'import typer.rich_utils'"
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    BASELINE: ([sys.executable, "-c", "import typer"], {}),
    RICH_HELP: ([sys.executable, "-c", "import typer.rich_utils"], {}),
    "fieldctl --version": ([*FIELDCTL, "--version"], {}),
    "fieldctl --help": ([*FIELDCTL, "--help"], {}),
    "fieldctl listen --help": ([*FIELDCTL, "listen", "--help"], {}),
    "completion of 'fieldctl li'": (FIELDCTL, COMPLETE),
}


def run_once(argv: list[str], extra_env: dict[str, str]) -> float:
    env = {**os.environ, "COLUMNS": "100", **extra_env}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed code has its bytecode cached; compare like with like
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed (exit {result.returncode}): {result.stderr.decode(errors='replace')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case (default 10)")
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for round_ in range(runs + 1):
        for name, (argv, env) in CASES.items():
            elapsed = run_once(argv, env)
            if round_:
                times[name].append(elapsed)
    base = statistics.median(times[BASELINE])
    print(f"start-up, median of {runs} runs each (target <= {TARGET:g}x {BASELINE})")
    print(f"{'command':36} {'median ms':>10} {'ratio':>7}")
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = median / base
        verdict = "" if name in (BASELINE, RICH_HELP) else ("  ok" if ratio <= TARGET else "  over target")
        print(f"{name:36} {median * 1000:10.1f} {ratio:6.2f}x{verdict}")


if __name__ == "__main__":
    main()
