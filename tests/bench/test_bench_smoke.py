"""Every benchmark runs to its table, so a broken bench module fails `make test`, not the next
`make bench`.

Each module runs as its own `bench/NAME.py` (a real subprocess, the same collect() that bench/run.py
calls) at the smallest sizes its options allow, all of them at once: most of their time is spent
waiting on paced publishers, heartbeats and process start-up, so together they take about 30 s on
2 CPUs where one after the other they take about 55. A smoke test, not a timed one: it checks the
exit code and that the summary table was printed, never a figure (at these sizes, on a shared
machine, the figures mean nothing). bench/run.py is checked for its wiring only (`--help` imports
every module and offers each to --only): its own runs use the modules' --quick or full sizes,
minutes long.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import cli_env
from tests.helpers.repository import ROOT

BENCH = ROOT / "bench"
#: Per module, the options that make its run the smallest that still measures every row.
SMALLEST = {
    "commands": ["--calls", "1", "--processes", "1"],
    "startup": ["--runs", "1"],
    "listen_throughput": ["--messages", "10"],
    "proxy": ["--calls", "1", "--messages", "10"],
    "memory": ["--messages", "2000", "--rate", "2000", "--warmup", "0.2"],  # 1 s a run: VmRSS is sampled every 0.1 s
    "scale": ["--connectors", "2", "--subscribers", "2", "--seconds", "1", "--rate", "20"],
    "fleet_board": ["--devices", "2", "--messages", "200", "--per-target", "5", "--scrapes", "1"],
    "fleet_heartbeats": ["--devices", "2", "--seconds", "2.5", "--skip-first", "0"],  # heartbeats come once a second
}
NOT_MODULES = {"_common", "_feed", "run"}  # shared code and the runner, not benchmarks
TIMEOUT_S = 180  # a bound for a hung benchmark, far above the ~30 s they take together


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[subprocess.Popen[bytes], Path]]]:
    """Starts every benchmark at once (output into files: a full pipe would stall a process no one
    reads yet); yields each one's process and output folder, kills what is still running at the end."""
    home = tmp_path_factory.mktemp("bench-home")
    env = cli_env(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
    )
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for name, options in SMALLEST.items():
            out = tmp_path_factory.mktemp(name)
            with open(out / "stdout", "wb") as stdout, open(out / "stderr", "wb") as stderr:
                started[name] = (
                    subprocess.Popen(
                        [sys.executable, str(BENCH / f"{name}.py"), *options],
                        cwd=home,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=stdout,
                        stderr=stderr,
                    ),
                    out,
                )
        yield started
    finally:
        for proc, _ in started.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def test_every_bench_module_has_a_smoke_run() -> None:
    modules = {path.stem for path in BENCH.glob("*.py")} - NOT_MODULES
    assert modules == set(SMALLEST), "give each bench module its smallest options in SMALLEST"


@pytest.mark.parametrize("name", SMALLEST)
def test_bench_module_prints_its_table(name: str, runs: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> None:
    proc, out = runs[name]
    try:
        code = proc.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"bench/{name}.py still running after {TIMEOUT_S} s")
    stdout = (out / "stdout").read_text(errors="replace")
    stderr = (out / "stderr").read_text(errors="replace")
    assert code == 0, f"bench/{name}.py exited {code}: {stderr[-2000:]}"
    lines = stdout.splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("path ") and "ratio (min–max)" in line), None)
    assert header is not None, f"no summary table in bench/{name}.py's output: {stdout[-2000:]}"
    assert lines[header + 1].startswith("---") and lines[header + 2].strip(), "the table has no rows"
    assert "Traceback" not in stderr


def test_run_py_imports_every_module() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        check=False,  # the assertion below shows stderr
    )
    assert result.returncode == 0, result.stderr
    only = re.search(r"--only \{([^}]*)\}", result.stdout)
    assert only is not None, result.stdout
    assert set(only.group(1).split(",")) == set(SMALLEST), "bench/run.py runs every bench module, under its name"
