"""The quick paths stay quick: `--version`, `--help`, `SUBCOMMAND --help` and completion requests
load no live view, transport, console or event loop. What they load is asserted, not their time
(bench/startup.py reports that)."""

from __future__ import annotations

import pytest

from tests.helpers.imports import HEAVY, completing, imported

#: Typer's value coercion: app.py's default_map keeps it off the paths that stop at the root or at
#: --help, and a role's completion parses without converting (ProtocolCommand).
COERCION = ("pydantic",)
#: What building a protocol subcommand reads: the root's --help lists subcommands without building them.
SUBCOMMANDS = ("fieldctl.protocols.sdk.options",)
#: A loaded profile; completing a name only lists files.
MODEL = ("fieldctl.profiles.model",)


QUICK_PATHS = {
    "version": (["--version"], {}, HEAVY + COERCION),
    "help": (["--help"], {}, HEAVY + COERCION + SUBCOMMANDS),
    "listen help": (["listen", "--help"], {}, HEAVY + COERCION),
    "command help": (["command", "--help"], {}, HEAVY + COERCION),
    "console help": (["console", "--help"], {}, HEAVY + COERCION),
    "subcommand names": ([], completing("fieldctl li"), HEAVY + COERCION),
    "profile names": ([], completing("fieldctl listen a"), HEAVY + MODEL + COERCION),
    "command names": ([], completing("fieldctl command autotrainer get-"), HEAVY + COERCION),
    "protocol options": ([], completing("fieldctl listen tracim --ma"), HEAVY + COERCION),
    "filter keys": ([], completing("fieldctl listen autotrainer --filter "), HEAVY + COERCION),
    "filter values": ([], completing("fieldctl listen autotrainer --filter kind=tu"), HEAVY + COERCION),
    "event kinds": ([], completing("fieldctl publish autotrainer tunn"), HEAVY + COERCION),
    "publish help": (["publish", "--help"], {}, HEAVY + COERCION),
}


@pytest.mark.parametrize("path", QUICK_PATHS)
def test_quick_paths_load_nothing_heavy(path: str) -> None:
    args, env, forbidden = QUICK_PATHS[path]
    modules = imported(args, env)
    assert "fieldctl.cli.app" in modules
    loaded = sorted(m for m in modules if any(m == name or m.startswith(name + ".") for name in forbidden))
    assert loaded == [], f"{path} imports {loaded}"


def test_help_reads_the_protocol_options_without_importing_a_driver() -> None:
    """`listen --help` lists every protocol's options (declared in its options.py), yet loads no
    module an entry point names (a package's driver.py)."""
    from importlib.metadata import entry_points

    drivers = {ep.module for ep in entry_points(group="fieldctl.protocols")}
    modules = imported(["listen", "--help"], {})
    assert "fieldctl.protocols.sdk.options" in modules
    assert sorted(drivers & modules) == []
