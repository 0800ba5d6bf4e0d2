"""A password in an endpoint URL (or a host) is refused wherever it may enter: a profile file, an
--endpoint or --host override, a target's endpoints in a fleet file or targets.toml; the refusal
says what to do instead and never repeats the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldctl.profiles import load_profile, load_profile_file
from fieldctl.profiles.loader import check_file
from fieldctl.profiles.targets import load_fleet
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.runtime.registry import declared_settings

SECRET = "hunter2-in-a-url"
REFUSED = "a URL holds no password"


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def refused(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(UsageError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    text = str(caught.value)
    assert REFUSED in text and SECRET not in text, text
    return text


def test_an_endpoint_override_with_a_password_is_refused() -> None:
    text = refused(load_profile, "sepl", endpoints=[f"platform=ws://admin:{SECRET}@10.0.0.1:8093"])
    assert text.startswith("--endpoint platform: ")
    assert load_profile("sepl", endpoints=["platform=ws://admin@10.0.0.1:8093"]).endpoints["platform"] == (
        "ws://admin@10.0.0.1:8093"
    )  # a user name alone is no secret


def test_a_host_with_a_password_is_refused() -> None:
    assert refused(load_profile, "sepl", host=f"admin:{SECRET}@10.0.0.1").startswith("--host: ")


def test_a_profile_file_with_a_password_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rig.toml"
    path.write_text(f'extends = "sepl"\nname = "rig"\n[endpoints]\nplatform = "ws://admin:{SECRET}@10.0.0.1:8093"\n')
    assert refused(load_profile_file, path).startswith(f"{path}: endpoints.platform: ")
    [problem] = check_file(path, declared_settings)
    assert problem.startswith(f"{path}: endpoints.platform: {REFUSED}") and SECRET not in problem


@pytest.mark.parametrize(
    "table, field",
    [
        (f'endpoints = {{ platform = "ws://admin:{SECRET}@10.0.0.1:8093" }}', "targets.rig.endpoints.platform"),
        (f'host = "admin:{SECRET}@10.0.0.1"', "targets.rig.host"),
    ],
)
def test_a_fleet_file_with_a_password_is_refused(tmp_path: Path, table: str, field: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(f'[targets.rig]\nprofile = "sepl"\n{table}\n')
    assert refused(load_fleet, path).startswith(f"{path}: {field}: ")
