"""A protocol's own command-line options, declared as data: each protocol package's `options.py`
holds `OPTIONS`, and the CLI turns the declarations into real options of its subcommands (listed
in `--help`, completed, checked, with a did-you-mean). Light on purpose: fieldctl reads these on
the `--help` and completion paths without importing any driver (registry.declared_options)."""

from __future__ import annotations

from dataclasses import dataclass

#: The subcommands a protocol option can belong to; each is the driver role of that name.
ROLES = ("listen", "register", "command", "publish", "simulate", "probe", "proxy")
#: flag: present or not (True); the others take a value, converted by the CLI: float finite,
#: seconds finite from 0 to a day (core/limits.py MAX_SECONDS), json within limits.
KINDS = ("flag", "str", "int", "float", "seconds", "json")
#: The key that declares extra positional arguments for a role (oneliner's `command ... call X.Y`);
#: the role receives them as a list under this key.
PARAMS = "params"


@dataclass(frozen=True)
class OptionSpec:
    """One option of one role, e.g. oneliner's --trust-pickle: `name` is the key in the options
    dict the role receives; a `repeat` option collects a list. `risk` says what the option does
    that data must not be able to ask for (RUNS_A_PROGRAM, UNPICKLES): typed on a command
    line it is the user's choice; written in a check file it is refused unless the run allows it."""

    name: str
    kind: str = "str"
    help: str = ""
    repeat: bool = False
    risk: str = ""


#: The risks the built-in protocols declare, as a refusal says them.
RUNS_A_PROGRAM = "runs a program"
UNPICKLES = "unpickles without restriction (a pickle can run any code)"


#: role -> "--flag" (or PARAMS) -> its declaration: what a package's `options.OPTIONS` holds.
Declared = dict[str, dict[str, OptionSpec]]
