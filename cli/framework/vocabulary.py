"""The names and payload fields a user types, checked against the profile before anything is
sent: a command's name, the fields of its data, the channel and kind an event step waits for.
Each check gives the reason with a did-you-mean, and passes what the profile does not declare
(a profile without commands, a command without payload fields, a protocol whose peer names its
own channels). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fieldctl.profiles.schema import did_you_mean

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.sdk.contract import BaseDriver


def _number(name: str) -> bool:
    """A code given as its number: the profile's names are not all a protocol's codes."""
    return name.lstrip("-").isdigit()


#: A profile's names, listed when none is near enough for a did-you-mean; more are looked up.
LISTED = 12


def _unknown(what: str, name: str, known: Iterable[str], profile: Profile) -> str:
    names = sorted(known)
    listed = f" ({what}s: {', '.join(names)})" if len(names) <= LISTED else ""
    hint = did_you_mean(name, names) or listed or f" (see: fieldctl profiles show {profile.name})"
    return f"unknown {what} {name!r}{hint}"


def command_problem(profile: Profile, name: str) -> str | None:
    """Why `name` is no command of the profile; None when it is one (by name or code), a number,
    or the profile declares no commands (the peer's own, such as a device's services)."""
    commands = profile.commands
    if not commands or name in commands or _number(name):
        return None
    if any(name == str(spec.code) for spec in commands.values()):
        return None
    return _unknown("command", name, commands, profile)


def field_problems(profile: Profile, name: str, data: Any) -> list[tuple[str, str]]:
    """(field, reason) for each field of a command's data object that the command does not
    declare; none when it declares no fields, or the data is no object."""
    spec = profile.commands.get(name)
    if spec is None or not spec.payload or not isinstance(data, dict):
        return []
    declared = spec.payload
    fields = f" (its fields: {', '.join(declared)})"
    return [
        (str(key), f"{name} takes no field {key!r}{did_you_mean(str(key), declared) or fields}")
        for key in data
        if key not in declared
    ]


def check_command(profile: Profile, name: str, data: Any, force: bool, option: str = "--data") -> None:
    """A command and its data as `command` and the console send them: UsageError (exit 2) on one
    line when the name is unknown, or the data has fields the command does not declare and
    --force does not say to send them anyway."""
    from fieldctl.protocols.core.errors import UsageError

    problem = command_problem(profile, name)
    if problem is not None:
        raise UsageError(problem)
    fields = [] if force else field_problems(profile, name, data)
    if fields:
        reasons = "; ".join(reason for _, reason in fields)
        raise UsageError(f"{option}: {reasons}; --force sends it anyway")


def channel_problem(driver: BaseDriver, channel: str) -> str | None:
    """Why no message the driver reports carries `channel`; None when one may."""
    return _undeclared("channel", channel, driver)


def kind_problem(driver: BaseDriver, kind: str) -> str | None:
    """Why no message the driver reports is of `kind`; None when one may be."""
    return _undeclared("kind", kind, driver)


def _undeclared(key: str, name: str, driver: BaseDriver) -> str | None:
    """The driver's vocabulary of `key` (None: the peer names its own) decides; a number passes."""
    known = driver.vocabulary(key)
    if known is None or _number(name) or name in known:
        return None
    return _unknown(key, name, known, driver.profile)


#: The keys of `--filter KEY=VALUE` (views/stream.py's Filters), and those a fleet adds.
FILTER_KEYS = ("channel", "kind", "direction", "endpoint")
FLEET_FILTER_KEYS = ("target", "group")
#: The values of `--filter direction=`.
DIRECTIONS = ("in", "out")


def filter_values(
    profile: Profile, key: str, declared: Callable[[str], frozenset[str] | None] | None = None
) -> dict[str, str]:
    """What `--filter KEY=` offers (name -> what it is), for the shells and the console alike:
    the profile's channels, its event kinds, the directions, its endpoints. `declared` is the
    driver's vocabulary where a driver is loaded (the console): a key it has none for (the peer
    names its own) offers nothing, and only names it knows are offered. The shells read the
    profile alone: importing a driver loads its transport, too slow for every <TAB>."""
    names: dict[str, str] = {
        "channel": dict.fromkeys(profile.channels, "channel"),
        "kind": {name: f"event {code}" for name, code in profile.events.items()},
        "direction": dict.fromkeys(DIRECTIONS, "direction"),
        "endpoint": dict.fromkeys(profile.endpoints, "endpoint"),
    }.get(key, {})
    if declared is not None and key in ("channel", "kind"):
        known = declared(key)
        names = {} if known is None else {name: text for name, text in names.items() if name in known}
    return names
