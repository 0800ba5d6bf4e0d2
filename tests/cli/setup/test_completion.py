"""Shell completion: the committed scripts are current, bash completes with them, install puts
them where each shell looks and leaves rc files alone."""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.processes import cli_env, run_cli
from tests.helpers.repository import ROOT

COMPLETIONS = ROOT / "completions"
BIN = Path(sys.executable).parent  # where the `fieldctl` the scripts call back into lives
SHELL_FILES = {"bash": "fieldctl.bash", "zsh": "_fieldctl", "fish": "fieldctl.fish"}


def test_committed_scripts_are_what_make_completions_writes(tmp_path: Path) -> None:
    # -o: do not rebuild the venv the tests are running in.
    subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "completions", f"COMPLETIONS={tmp_path}", f"PY={sys.executable}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in COMPLETIONS.iterdir())
    for fresh in tmp_path.iterdir():
        assert fresh.read_text() == (COMPLETIONS / fresh.name).read_text(), (
            f"completions/{fresh.name} is stale: run make completions"
        )


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user profile next to the built-ins, and PATH leading to this venv's fieldctl."""
    profiles = tmp_path / "config" / "fieldctl" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "rig7.toml").write_text('extends = "autotrainer"\nname = "rig7"\n')
    assert (BIN / "fieldctl").exists(), f"no fieldctl script in {BIN}"
    return cli_env(XDG_CONFIG_HOME=str(tmp_path / "config"), PATH=f"{BIN}:/usr/bin:/bin")


def bash_words(line: str) -> list[str]:
    """The words bash gives a completion function for `line`: split at spaces, and around each `=`
    (COMP_WORDBREAKS): `--filter channel=he` is `--filter`, `channel`, `=`, `he`."""
    words = []
    for word in line.split(" "):
        words += [part for part in re.split("(=)", word) if part] or [word]
    return words


def bash_completion(line: str, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """What TAB offers at the end of `line` in a bash that sourced completions/fieldctl.bash, and
    the compopt calls it made (the real compopt works only under readline's completion)."""
    words = bash_words(line)
    script = "\n".join(
        [
            f"source {shlex.quote(str(COMPLETIONS / 'fieldctl.bash'))}",
            'compopt() { printf "%s %s\\n" "$1" "$2" >&2; }',
            "func=$(complete -p fieldctl | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')",
            f"COMP_WORDS=({' '.join(shlex.quote(word) for word in words)}); COMP_CWORD={len(words) - 1}",
            f"COMP_LINE={shlex.quote(line)}; COMP_POINT={len(line)}",
            '"$func" fieldctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ]
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=30,
    )
    compopts = result.stderr.splitlines()
    assert result.returncode == 0 and all(line.startswith("-o ") for line in compopts), result.stderr
    return [word for word in result.stdout.splitlines() if word], compopts


def bash_complete(line: str, env: dict[str, str]) -> list[str]:
    return bash_completion(line, env)[0]


def test_bash_completes_subcommands(user_env: dict[str, str]) -> None:
    assert {"listen", "register", "command", "publish", "simulate", "probe", "demo", "profiles", "completion"} <= set(
        bash_complete("fieldctl ", user_env)
    )
    assert bash_complete("fieldctl li", user_env) == ["listen"]
    assert bash_complete("fieldctl profiles s", user_env) == ["show"]


def test_bash_completes_profile_names(user_env: dict[str, str], tmp_path: Path) -> None:
    assert {"autotrainer", "rig7"} <= set(bash_complete("fieldctl listen ", user_env))
    assert bash_complete("fieldctl probe r", user_env) == ["rig7"]
    assert bash_complete("fieldctl profiles show a", user_env) == ["autotrainer"]
    extra = tmp_path / "bench.toml"
    extra.write_text('extends = "autotrainer"\nname = "bench-rig"\n')
    assert bash_complete(f"fieldctl simulate --profile-file {extra} b", user_env) == ["bench-rig"]


def test_bash_completes_demos_profile_overrides(user_env: dict[str, str], tmp_path: Path) -> None:
    assert {"--host", "--endpoint", "--set", "--profile-file", "--duration"} <= set(
        bash_complete("fieldctl demo --", user_env)
    )
    extra = tmp_path / "bench.toml"
    extra.write_text('extends = "autotrainer"\nname = "bench-rig"\n')
    assert bash_complete(f"fieldctl demo --profile-file {extra} b", user_env) == ["bench-rig"]


def test_a_broken_targets_file_still_completes_the_profiles(user_env: dict[str, str], tmp_path: Path) -> None:
    deep = 100_000
    (tmp_path / "config" / "fieldctl" / "targets.toml").write_text("x = " + "[" * deep + "]" * deep + "\n")
    assert {"autotrainer", "rig7"} <= set(bash_complete("fieldctl listen ", user_env))
    assert bash_complete("fieldctl target show ", user_env) == []
    assert "get-status" in bash_complete("fieldctl command autotrainer get-", user_env)


def test_bash_completes_a_profiles_command_names(user_env: dict[str, str]) -> None:
    offered = bash_complete("fieldctl command autotrainer get-", user_env)
    assert "get-status" in offered and all(name.startswith("get-") for name in offered)
    assert bash_complete("fieldctl command rig7 get-s", user_env) == ["get-status"]
    assert bash_complete("fieldctl command nosuch get-", user_env) == []


def test_bash_completes_protocol_options_of_the_named_profile_only(user_env: dict[str, str]) -> None:
    assert bash_complete("fieldctl listen tracim --ma", user_env) == ["--master"]
    assert bash_complete("fieldctl listen autotrainer --ma", user_env) == []
    assert bash_complete("fieldctl command rig7 --cus", user_env) == ["--custom-command"]  # rig7 extends autotrainer
    assert "--master" in bash_complete("fieldctl listen --ma", user_env)  # no profile yet: every protocol's


def test_bash_completes_filter_keys_then_the_profiles_names(user_env: dict[str, str]) -> None:
    keys = ["channel=", "kind=", "direction=", "endpoint="]
    assert bash_complete("fieldctl listen autotrainer --filter ", user_env) == keys
    assert bash_complete("fieldctl listen --fleet fleet.toml --filter ", user_env) == [*keys, "target=", "group="]
    # bash has split the word at `=`: each offer is what follows it
    assert bash_complete("fieldctl listen autotrainer --filter channel=he", user_env) == ["heartbeat"]
    assert bash_complete("fieldctl listen rig7 --filter kind=tunnelE", user_env) == ["tunnelEnter", "tunnelExit"]
    assert bash_complete("fieldctl register autotrainer --filter direction=", user_env) == ["in", "out"]
    assert bash_complete("fieldctl listen autotrainer --filter=kind=tunnelEx", user_env) == ["tunnelExit"]
    line = "fieldctl listen --json autotrainer --filter kind=trialStarted --filter endpoint=e"
    assert bash_complete(line, user_env) == ["events"]
    assert bash_complete("fieldctl listen nosuch --filter kind=", user_env) == []


def test_bash_completes_a_fleets_targets_and_groups_after_their_keys(user_env: dict[str, str], tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[targets.rig-1]\nprofile = "autotrainer"\ngroup = ["room-1", "night"]\n'
        '[targets.rig-2]\nprofile = "tracim"\ngroup = "room-2"\n'
    )
    assert bash_complete(f"fieldctl listen --fleet {fleet} --filter target=", user_env) == ["rig-1", "rig-2"]
    assert bash_complete(f"fieldctl listen --fleet {fleet} --filter group=room", user_env) == ["room-1", "room-2"]
    assert bash_complete(f"fieldctl listen --fleet {tmp_path / 'none.toml'} --filter target=", user_env) == []
    assert bash_complete("fieldctl listen autotrainer --filter target=", user_env) == []  # no fleet, no key


def test_bash_leaves_no_space_after_a_filter_key(user_env: dict[str, str]) -> None:
    assert bash_completion("fieldctl listen autotrainer --filter ch", user_env) == (["channel="], ["-o nospace"])
    assert bash_completion("fieldctl listen autotrainer --filter channel=he", user_env) == (["heartbeat"], [])


def test_bash_completes_the_event_kinds_publish_takes(user_env: dict[str, str]) -> None:
    assert bash_complete("fieldctl publish autotrainer tunnelE", user_env) == ["tunnelEnter", "tunnelExit"]
    assert bash_complete("fieldctl publish rig7 --data '{}' emergencyS", user_env) == ["emergencyStop"]


@pytest.mark.parametrize("shell", SHELL_FILES)
def test_show_prints_the_committed_script(shell: str) -> None:
    result = run_cli("completion", "show", shell)
    assert result.returncode == 0 and result.stdout == (COMPLETIONS / SHELL_FILES[shell]).read_text()


def test_install_writes_where_each_shell_looks_and_leaves_rc_files_alone(tmp_path: Path) -> None:
    env = cli_env(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    for name in ("XDG_DATA_HOME", "BASH_COMPLETION_USER_DIR"):
        env.pop(name, None)
    targets = {
        "bash": tmp_path / ".local/share/bash-completion/completions/fieldctl",
        "zsh": tmp_path / ".zfunc/_fieldctl",
        "fish": tmp_path / "config/fish/completions/fieldctl.fish",
    }
    for shell, path in targets.items():
        result = run_cli("completion", "install", shell, env=env)
        assert result.returncode == 0, result.stderr
        assert str(path) in result.stdout
        assert path.read_text() == (COMPLETIONS / SHELL_FILES[shell]).read_text()
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(targets.values())
    assert "fpath=(~/.zfunc $fpath)" in run_cli("completion", "install", "zsh", env=env).stdout


def test_unsupported_shell_is_a_usage_error() -> None:
    result = run_cli("completion", "show", "powershell")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_install_replaces_a_link_at_its_name_instead_of_writing_through_it(tmp_path: Path) -> None:
    env = cli_env(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / ".zfunc" / "_fieldctl"
    path.parent.mkdir()
    path.symlink_to(victim)
    assert run_cli("completion", "install", "zsh", env=env).returncode == 0
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o644
