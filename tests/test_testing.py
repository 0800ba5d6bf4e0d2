"""fieldctl.testing, the conformance kit, on what its conformance run over every installed
protocol (tests/contract/test_conformance.py) does not show: a plugin found through its entry
points alone and broken fails it with one line, usage errors exit 2 with a did-you-mean, a broker
endpoint needs its address, nothing is left on disk, and it starts without fieldctl's terminal
libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.imports import imported
from tests.helpers.plugins import BROKEN_PROFILE, plugin_on_path
from tests.helpers.processes import cli_env

KIT = [sys.executable, "-m", "fieldctl.testing"]
LINEJSON_PROFILE = Path(__file__).resolve().parents[1] / "examples/plugin/fieldctl_linejson/profiles/linejson.toml"


def kit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KIT, *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        env=cli_env(**(env or {})),
        stdin=subprocess.DEVNULL,
    )


def test_a_plugin_whose_profile_does_not_validate_fails_with_one_line(tmp_path: Path) -> None:
    ran = kit("broken", env=plugin_on_path(tmp_path, "broken", BROKEN_PROFILE))
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout.splitlines() == [ran.stdout.strip()]
    assert ran.stdout.startswith("profile: ") and "broken.toml: endpoints: is required" in ran.stdout
    assert ran.stderr == ""


def test_a_driver_whose_roles_and_methods_disagree_fails_the_roles_check(tmp_path: Path) -> None:
    """Driver.roles is what the command line asks: a role played but not announced would never run."""
    plugin = plugin_on_path(tmp_path, "quiet", LINEJSON_PROFILE.read_text().replace('"linejson"', '"quiet"'))
    driver = (
        "from fieldctl_linejson.driver import Driver as Played\n\n\nclass Driver(Played):\n    roles = frozenset()\n"
    )
    (tmp_path / "fieldctl_quiet" / "driver.py").write_text(driver)
    ran = kit("quiet", "--check", "roles", env=plugin)
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout.strip() == (
        "roles: the driver plays command, listen, probe, publish, simulate, which Driver.roles does not announce"
    )


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["linejsn"], {}, "unknown protocol 'linejsn' (did you mean linejson?)"),
        (["linejson", "--endpoint", "hb=tcp://127.0.0.1:1"], {}, "no such endpoint (did you mean hub?)"),
        (["linejson", "--endpoint", "hub"], {}, "--endpoint: 'hub' is not ENDPOINT=URL"),
        (["linejson", "--check", "probes"], {}, "unknown check 'probes' (did you mean probe?)"),
        (["linejson"], {"FIELDCTL_TESTING_ENDPOINTS": "hub"}, "FIELDCTL_TESTING_ENDPOINTS: 'hub' is not ENDPOINT=URL"),
    ],
)
def test_a_usage_error_exits_2_with_one_line(args: list[str], env: dict[str, str], said: str) -> None:
    ran = kit(*args, env=env)
    assert ran.returncode == 2
    assert ran.stderr.strip() == ran.stderr.strip().splitlines()[0] and said in ran.stderr
    assert ran.stdout == ""


def test_a_broker_endpoint_without_an_address_fails_the_topology_check(tmp_path: Path) -> None:
    """The kit cannot stand in for a broker both sides connect to: with no address given it says
    how to give one, and runs no check (that line is all it says)."""
    profile = LINEJSON_PROFILE.read_text().replace('"linejson"', '"brokered"') + '\n[topology]\nhub = "broker"\n'
    plugin = plugin_on_path(tmp_path, "brokered", profile, driver="fieldctl_linejson.driver:Driver")
    ran = kit("brokered", env={**plugin, "FIELDCTL_TESTING_ENDPOINTS": "other=tcp://127.0.0.1:1"})
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout.strip() == (
        "topology: endpoint hub is a broker's, which the kit cannot stand in for: "
        "give its address with --endpoint hub=URL or in FIELDCTL_TESTING_ENDPOINTS"
    )


def test_nothing_is_left_on_disk(tmp_path: Path) -> None:
    """Every file of a run (sockets, records, configuration and state, the runs' stderr) is in a
    temporary folder removed afterwards, the simulators' own included."""
    (tmp_path / "tmp").mkdir()
    ran = kit("tracim", "--check", "record", "--check", "demo", env={"TMPDIR": str(tmp_path / "tmp")})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.strip() == "tracim: 2 checks passed (record demo)"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_kit_loads_no_terminal_library_and_no_layer_before_a_check_runs() -> None:
    modules = imported(["--help"], {}, module="fieldctl.testing")
    assert "argparse" in modules
    terminal = sorted(m for m in modules if m.split(".")[0] in ("rich", "typer", "prompt_toolkit"))
    layers = sorted(m for m in modules if m.startswith("fieldctl.") and m != "fieldctl.testing")
    assert (terminal, layers) == ([], [])
