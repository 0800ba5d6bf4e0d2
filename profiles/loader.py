"""Finds profiles (built-in, user, explicit files), applies overrides and validates them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldctl.profiles.files import BUILTIN_DIR, ProfileError, available_profiles, read_toml
from fieldctl.profiles.model import CommandSpec, HeartbeatSpec, Profile
from fieldctl.profiles.secrets import SecretRef
from fieldctl.profiles.validate import validate
from fieldctl.protocols.core import entry_points
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.limits import loads
from fieldctl.protocols.core.urls import INSTEAD, has_password

if TYPE_CHECKING:
    from fieldctl.profiles.schema import Setting

#: The profile `console` and `demo` start with when none is named: data, so cli/ names no system.
DEFAULT_PROFILE = "autotrainer"


def merge_tables(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over`'s values on top of `base`'s, table into table; the tables on the way are copies, so
    `base` stays as it was."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def _raw(path: Path, profile_files: Iterable[str | Path], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    data = read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or parent in seen:
        raise ProfileError(f"{path}: extends: must name another profile, without cycles")
    known = available_profiles(profile_files)
    if parent not in known or known[parent] == path:
        known = available_profiles()
    if parent not in known:
        raise ProfileError(f"{path}: extends: unknown profile {parent!r}")
    return merge_tables(_raw(known[parent], profile_files, (*seen, parent)), data)


def parse_value(text: str) -> Any:
    """--set values: JSON where it parses (numbers, booleans, lists), else the plain string."""
    try:
        return loads(text)
    except ValueError:
        return text


def _apply_set(data: dict[str, Any], assignment: str, who: str = "--set") -> str:
    """Sets the dotted key of `assignment` (KEY=VALUE) in `data`, and returns the key."""
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"{who} {assignment!r}: expected dotted.key=value")
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"{who} {key}: {part!r} is not a table")
        node = child
    node[parts[-1]] = parse_value(value)
    return key.strip()


def problems_in(data: dict[str, Any], declared: Mapping[str, Setting] | None = None) -> list[tuple[str, str]]:
    """The core's problems; with `declared` (the settings the profile's protocol declares), the
    protocol's sections too, which the quick paths such as completion never need."""
    protocol = data.get("protocol")
    installed = entry_points.group(entry_points.PROTOCOLS)  # names only: no driver is loaded
    if declared is not None and protocol in installed:
        return validate(data, declared)
    problems = validate(data)
    if isinstance(protocol, str) and protocol not in installed:
        problems.append(("protocol", f"unknown protocol {protocol!r} (installed: {', '.join(installed)})"))
    return problems


def set_by(field: str, overrides: Mapping[str, str]) -> str | None:
    """Who set `field`, or a key under or above it (`--set`, `target NAME: set`); None: a file."""
    return next(
        (
            who
            for key, who in overrides.items()
            if f"{field}.".startswith(f"{key}.") or f"{key}.".startswith(f"{field}.")
        ),
        None,
    )


def problems_error(
    source: str, problems: list[tuple[str, str]], overrides: Mapping[str, str] | None = None
) -> ProfileError:
    """The first problem as one line; one an override made is told first, as its setter's."""
    overrides = overrides or {}
    ours = [(who, field, reason) for field, reason in problems if (who := set_by(field, overrides))]
    who, field, reason = ours[0] if ours else (f"{source}:", *problems[0])
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return ProfileError(f"{who} {field}: {reason}{more}")


def build(
    data: dict[str, Any], source: str, host: str | None = None, overrides: Mapping[str, str] | None = None
) -> Profile:
    overrides = dict(overrides or {})
    problems = problems_in(data)
    if problems:
        raise problems_error(source, problems, overrides)
    host = host or data.get("defaults", {}).get("host") or "127.0.0.1"
    endpoints = {name: url.replace("{host}", host) for name, url in data["endpoints"].items()}
    for name, url in endpoints.items():
        if has_password(url):  # a host given as user:password@host
            raise ProfileError(f"{source}: endpoints.{name}: {INSTEAD}")
    heartbeat = data.get("heartbeat", {})
    return Profile(
        name=data["name"],
        protocol=data["protocol"],
        description=data.get("description", ""),
        source=source,
        host=host,
        endpoints=endpoints,
        channels=dict(data.get("channels", {})),
        commands={
            name: CommandSpec(
                name=name, code=spec["code"], help=spec.get("help", ""), payload=dict(spec.get("payload", {}))
            )
            for name, spec in data.get("commands", {}).items()
        },
        events=dict(data.get("events", {})),
        heartbeat=HeartbeatSpec(
            channel=heartbeat.get("channel"),
            interval_s=float(heartbeat.get("interval_s", 5.0)),
            stale_after_s=float(heartbeat.get("stale_after_s", 3 * heartbeat.get("interval_s", 5.0))),
            fields=tuple(heartbeat.get("fields", ())),
        ),
        auth={name: SecretRef(**ref) for name, ref in data.get("auth", {}).items()},
        data=data,
        overrides=overrides,
    )


def load_profile(
    name: str,
    *,
    profile_files: Iterable[str | Path] = (),
    host: str | None = None,
    endpoints: Iterable[str] = (),
    sets: Iterable[str] = (),
    target_sets: Iterable[str] = (),
    target: str = "",
) -> Profile:
    """`name` with its overrides: a saved target's own (`target_sets`, of target `target`), then
    the command line's, which win."""
    profile_files = tuple(profile_files)
    known = available_profiles(profile_files)
    if name not in known:
        names = ", ".join(sorted(known)) or "none"
        raise ProfileError(f"unknown profile {name!r} (available: {names})")
    path = known[name]
    data = _raw(path, profile_files)
    overrides: dict[str, str] = {}
    for who, assignments in ((f"target {target}: set", target_sets), ("--set", sets)):
        for assignment in assignments:
            overrides[_apply_set(data, assignment, who)] = who
    if host and has_password(f"//{host}"):
        raise UsageError(f"--host: {INSTEAD}")
    for override in endpoints:
        key, sep, url = override.partition("=")
        if not sep or not url:
            raise UsageError(f"--endpoint {override!r}: expected NAME=URL")
        if key not in data.get("endpoints", {}):
            names = ", ".join(data.get("endpoints", {})) or "none"
            raise UsageError(f"--endpoint {key}: profile {name} has no such endpoint (endpoints: {names})")
        if has_password(url):
            raise UsageError(f"--endpoint {key}: {INSTEAD}")
        data["endpoints"][key] = url
    source = "built-in" if path.parent == BUILTIN_DIR else str(path)
    return build(data, source, host, overrides)


def check_file(path: str | Path, settings_of: Callable[[str], Mapping[str, Setting]]) -> list[str]:
    """Every problem of a profile file, one line each (file: field: reason); `settings_of` gives
    what a protocol declares (the registry's declared_settings, which loads its driver)."""
    path = Path(path)
    try:
        data = _raw(path, ())
    except ProfileError as exc:
        return [str(exc)]
    protocol = data.get("protocol")
    installed = entry_points.group(entry_points.PROTOCOLS)
    declared = settings_of(protocol) if isinstance(protocol, str) and protocol in installed else None
    return [f"{path}: {field}: {reason}" for field, reason in problems_in(data, declared)]


def load_profile_file(path: str | Path) -> Profile:
    path = Path(path)
    data = _raw(path, ())
    return build(data, str(path))
