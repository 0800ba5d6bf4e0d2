"""Every TOML a user hands fieldctl is parsed within a size and a depth: a hostile file is one
`file: reason` usage error (exit 2), found before tomllib recurses or builds a huge key; and a
broken targets.toml breaks only what needs it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.cli.check.checkfile import load as load_check
from fieldctl.profiles.bounded_toml import MAX_TOML_BYTES, MAX_TOML_DEPTH
from fieldctl.profiles.files import ProfileError, parse_toml
from fieldctl.profiles.loader import load_profile_file
from fieldctl.profiles.targets import load_fleet, saved_targets, targets_path
from fieldctl.protocols.core.errors import UsageError
from tests.helpers.fuzzing import contained
from tests.helpers.processes import cli_env, run_cli

DEEP = 100_000
HOSTILE = {
    "a deep array": ("host = " + "[" * DEEP + "]" * DEEP, "nested deeper than 64 levels"),
    "a deep inline table": ("host = " + "{ a = " * DEEP + "1" + " }" * DEEP, "nested deeper than 64 levels"),
    "a long dotted key": ("a" + ".a" * DEEP + " = 1", "a dotted key of more than 64 parts"),
    "a long table header": ("[" + ".".join(["a"] * DEEP) + "]", "a dotted key of more than 64 parts"),
    "dotted keys nested in tables": (
        "x = " + "{ " + ".".join(["b"] * 40) + " = " + "{ c = " * 30 + "1" + " }" * 31,
        "nested deeper than 64 levels",
    ),
}

#: Each kind of file read as fieldctl reads it, given the hostile text as its first line.
READERS: dict[str, Callable[[Path], object]] = {
    "profile": load_profile_file,
    "fleet file": load_fleet,
    "check file": load_check,
}


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.mark.parametrize("reader", READERS, ids=str)
@pytest.mark.parametrize("hostile", HOSTILE, ids=str)
def test_hostile_nesting_is_refused_with_the_file_named(tmp_path: Path, reader: str, hostile: str) -> None:
    text, reason = HOSTILE[hostile]
    path = tmp_path / "hostile.toml"
    path.write_text(text + "\n")
    started = time.monotonic()
    with pytest.raises(UsageError) as caught:
        READERS[reader](path)
    assert str(caught.value) == f"{path}: {reason}"
    assert time.monotonic() - started < 2


def test_a_deep_saved_targets_file_is_refused_too() -> None:
    targets_path().parent.mkdir(parents=True)
    targets_path().write_text('[targets.a]\nprofile = "autotrainer"\nhost = ' + "[" * DEEP + "]" * DEEP + "\n")
    with pytest.raises(UsageError, match=r"targets\.toml: nested deeper than 64 levels"):
        saved_targets()


def test_brackets_and_dots_in_strings_and_comments_do_not_count() -> None:
    many = "[{." * DEEP
    text = f"# {many}\na = \"{many}\"\nb = '{many}'\nc = \"\"\"\n{many}\n\"\"\"\nd = '''{many}'''\n"
    assert parse_toml(text, "strings.toml")["a"] == many


def test_the_deepest_allowed_nesting_parses() -> None:
    assert parse_toml("x = " + "[" * (MAX_TOML_DEPTH - 1) + "]" * (MAX_TOML_DEPTH - 1), "ok.toml")
    assert parse_toml(".".join(["a"] * MAX_TOML_DEPTH) + " = 1", "ok.toml")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:
        handle.truncate(MAX_TOML_BYTES + 1)  # sparse: nothing is written, nothing need be read
    with pytest.raises(UsageError, match=f"huge.toml: {MAX_TOML_BYTES + 1} bytes, over the limit"):
        load_fleet(path)


def test_a_broken_targets_file_breaks_only_what_needs_it(tmp_path: Path) -> None:
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    broken = tmp_path / "config" / "fieldctl" / "targets.toml"
    broken.parent.mkdir(parents=True)
    broken.write_text("[targets.a]\nprofile = " + "[" * DEEP + "]" * DEEP + "\n")

    listed = run_cli("target", "list", env=env)
    assert (listed.returncode, listed.stderr) == (2, f"fieldctl: {broken}: nested deeper than 64 levels\n")
    assert run_cli("profiles", "list", "--json", env=env).returncode == 0
    shown = run_cli("profiles", "show", "autotrainer", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    listened = run_cli("listen", "autotrainer", "--duration", "0", "--json", env={**env, "FIELDCTL_TARGET": "a"})
    assert listened.returncode == 0, listened.stderr
    unknown = run_cli("listen", "nosuch", "--json", env=env)
    assert (unknown.returncode, unknown.stderr) == (2, f"fieldctl: {broken}: nested deeper than 64 levels\n")


@pytest.mark.fuzz
@given(st.text(alphabet="[]{}\"'.=,#\n\\ a1", max_size=2000))
def test_any_text_is_a_document_or_one_usage_error(text: str) -> None:
    """Whatever the text, parsing ends in time with a dict or a ProfileError: never tomllib's
    RecursionError, never another exception."""
    contained(parse_toml, text, "fuzz.toml", allowed=(ProfileError,))


@pytest.mark.fuzz
@given(st.integers(1, 3000), st.sampled_from(["[", "{ a = ", "a.", "[[a.", 'x = "[" , [']))
def test_deep_nesting_of_any_kind_is_refused_in_time(depth: int, opening: str) -> None:
    text = "x = " + opening * depth if not opening.startswith(("a.", "[[")) else opening * depth + "b = 1"
    contained(parse_toml, text, "deep.toml", allowed=(ProfileError,))
