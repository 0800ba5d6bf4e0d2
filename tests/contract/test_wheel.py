"""The built wheel is complete: installed into a fresh venv (no source tree on its path), with the
example plugins installed from their own paths beside it, every profile lists and demos, and the
conformance kit it ships passes both plugins (MQTT's on a real broker) and fails a broken one."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.mosquitto import Broker
from tests.helpers.plugins import BROKEN_PROFILE, plugin_on_path
from tests.helpers.processes import cli_env
from tests.helpers.repository import ROOT

PLUGINS = (ROOT / "examples" / "plugin", ROOT / "examples" / "mqtt")


def _run(*argv: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the fieldctl wheel and the example plugins."""
    base = tmp_path_factory.mktemp("wheel")
    # From copies: setuptools keeps a build/ folder beside the sources, and a stale one would ship
    # modules that no longer exist.
    patterns = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "tests", "bench")

    def junk(folder: str, names: list[str]) -> set[str]:  # and sockets or pipes a dev tree may hold
        return set(patterns(folder, names)) | {
            n for n in names if not (Path(folder, n).is_file() or Path(folder, n).is_dir())
        }

    source, plugins = base / "src", [base / folder.name for folder in PLUGINS]
    shutil.copytree(ROOT, source, ignore=junk)
    for folder, copy in zip(PLUGINS, plugins, strict=True):
        shutil.copytree(folder, copy, ignore=junk)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", source, *plugins)
    _run(sys.executable, "-m", "venv", base / "venv")
    wheels = sorted((base / "dist").glob("*.whl"))
    _run(base / "venv" / "bin" / "python", "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", *wheels)
    return base / "venv" / "bin"


def test_the_wheel_ships_every_package_of_the_source_tree(installed: Path) -> None:
    wheel = next((installed.parent.parent / "dist").glob("fieldctl-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("cli", "protocols", "profiles"):
        for init in (ROOT / folder).rglob("__init__.py"):
            assert f"fieldctl/{init.relative_to(ROOT).as_posix()}" in names
    assert {f"fieldctl/profiles/builtin/{p.name}" for p in (ROOT / "profiles" / "builtin").glob("*.toml")} <= names


def test_every_profile_lists_and_demos_from_the_installed_wheel(
    installed: Path, tmp_path: Path, mosquitto: Broker
) -> None:
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path))
    env.pop("PYTHONPATH", None)
    listed = subprocess.run(
        [installed / "fieldctl", "profiles", "list"],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert listed.returncode == 0, listed.stderr
    names = [line.split('"name": "')[1].split('"')[0] for line in listed.stdout.splitlines()]
    assert {"autotrainer", "oneliner", "sepl", "tracim", "vantiq", "linejson", "mqtt"} <= set(names)
    for name in names:
        broker = ["--endpoint", f"broker={mosquitto.url}"] if name == "mqtt" else []
        demo = subprocess.run(
            [installed / "fieldctl", "demo", name, "--duration", "2", *broker],
            capture_output=True,
            check=False,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert demo.returncode == 0 and "Traceback" not in demo.stderr, f"{name}: {demo.stderr[-2000:]}"


def test_the_kit_in_the_wheel_passes_the_plugins_and_fails_a_broken_one(
    installed: Path, tmp_path: Path, mosquitto: Broker
) -> None:
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path))
    env.pop("PYTHONPATH", None)

    def kit(name: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [installed / "python", "-m", "fieldctl.testing", name],
            capture_output=True,
            check=False,
            text=True,
            env={**env, **extra},
            cwd=tmp_path,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    passed = kit("linejson")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    brokered = kit("mqtt", FIELDCTL_TESTING_ENDPOINTS=f"broker={mosquitto.url}")
    assert brokered.returncode == 0, brokered.stdout + brokered.stderr
    broken = kit("broken", **plugin_on_path(tmp_path / "plugin", "broken", BROKEN_PROFILE))
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert broken.stdout.startswith("profile: ") and len(broken.stdout.splitlines()) == 1
