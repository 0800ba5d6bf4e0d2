"""The connector's gateway id is its identity on the platform, which creates a gateway for every
login that brings none it knows: probe, publish and register reuse the one the platform assigned
(kept in the state folder per profile, user and URL, 0600), so a check run every minute does not
leave a gateway behind each time; `--gid` and `--store` still say otherwise."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import cli_env, lines_of, run_cli
from tests.helpers.sepl import PASSWORD, Platform, is_link


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    plat = Platform(tmp_path)
    yield plat
    plat.proc.stop()


def state_env(tmp_path: Path) -> dict[str, str]:
    return cli_env(SEPL_PASSWORD=PASSWORD, XDG_STATE_HOME=str(tmp_path / "state"))


def gateways(platform: Platform, logins: int) -> set[str]:
    """The gateways of the platform's first `logins` logins."""
    return {platform.proc.wait_json(is_link("logged-in"))["payload"]["gid"] for _ in range(logins)}


def probe(platform: Platform, env: dict[str, str], *extra: str) -> str:
    result = run_cli("probe", "sepl", *platform.args, *extra, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.partition("(gateway ")[2].partition(")")[0]


def test_probes_reuse_the_gateway_the_platform_assigned(platform: Platform, tmp_path: Path) -> None:
    env = state_env(tmp_path)
    first = probe(platform, env)
    assert [probe(platform, env) for _ in range(2)] == [first, first]
    kept = list((tmp_path / "state" / "fieldctl" / "identities").iterdir())
    assert [path.read_text() for path in kept] == [first + "\n"]
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert gateways(platform, 3) == {first}


def test_register_reuses_it_and_another_platform_gets_its_own(platform: Platform, tmp_path: Path) -> None:
    env = state_env(tmp_path)
    first = probe(platform, env)
    lamp = "dev-1:iot#type-lamp:Lamp 1"
    reg = run_cli("register", "sepl", "--json", *platform.args, "--device", lamp, "--duration", "1", env=env)
    assert reg.returncode == 0, reg.stderr
    ready = next(m for m in lines_of(reg.stdout) if m["channel"] == "link" and m["kind"] == "ready")
    assert ready["payload"]["gid"] == first
    other = Platform(tmp_path, "--set", "simulate.gid_prefix=other-")
    try:
        assert probe(other, env) == "other-0001"
        assert probe(platform, env) == first
    finally:
        other.proc.stop()
    assert gateways(platform, 3) == {first}


def test_a_gid_given_is_used_and_not_kept(platform: Platform, tmp_path: Path) -> None:
    env = state_env(tmp_path)
    assert probe(platform, env, "--gid", "gw-named") == "fieldctl-gateway-0001"  # unknown: the platform's own
    assert not (tmp_path / "state" / "fieldctl" / "identities").exists()
