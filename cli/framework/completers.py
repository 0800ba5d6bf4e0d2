"""What <TAB> offers for profile, command and event names and --filter. These run on every completion request, so
they import only the profile loader, and only when called; Typer keeps the names that start
with the word being completed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from fieldctl.profiles import Profile


def _profile_files(ctx: typer.Context) -> list[Path]:
    return ctx.params.get("profile_file") or []


def profile_names(ctx: typer.Context) -> list[str]:
    """Built-in and user profiles, those of any --profile-file typed before the name, and the
    saved targets (a target name goes wherever a profile name does)."""
    from fieldctl.profiles import ProfileError, available_profiles

    try:
        profiles = list(available_profiles(_profile_files(ctx)))
    except ProfileError:
        profiles = []
    return profiles + [name for name in target_names(ctx) if name not in profiles]


def target_names(ctx: typer.Context) -> list[str]:
    """The saved targets (targets.toml is read, no driver imported); none if it cannot be read."""
    from fieldctl.profiles import ProfileError
    from fieldctl.profiles.targets import saved_targets

    try:
        return list(saved_targets())
    except ProfileError:
        return []


def command_names(ctx: typer.Context) -> list[str]:
    """The commands of the profile or target named earlier on the line (else the default target's);
    none if it cannot be loaded."""
    profile = _named_profile(ctx)
    return [] if profile is None else list(profile.commands)


def event_kinds(ctx: typer.Context) -> list[str]:
    """`publish PROFILE KIND`: the profile's event kinds (its [events] names)."""
    profile = _named_profile(ctx)
    return [] if profile is None else list(profile.events)


def filter_specs(ctx: typer.Context, incomplete: str) -> list[str]:
    """`--filter KEY=VALUE`: the keys (with --fleet a fleet's too), then a key's values: a fleet's
    targets or groups, or the names cli/framework/vocabulary.py's filter_values gives for the
    profile named on the line."""
    from fieldctl.cli.framework.vocabulary import FILTER_KEYS, FLEET_FILTER_KEYS, filter_values

    fleet = ctx.params.get("fleet")
    key, sep, _ = incomplete.partition("=")
    if not sep:
        return [f"{name}=" for name in (*FILTER_KEYS, *(FLEET_FILTER_KEYS if fleet else ()))]
    if key in FLEET_FILTER_KEYS:
        return [f"{key}={name}" for name in _fleet_names(fleet, key)] if fleet else []
    profile = _named_profile(ctx)
    return [] if profile is None else [f"{key}={name}" for name in filter_values(profile, key)]


def _fleet_names(path: str, key: str) -> list[str]:
    """The fleet file's target names (`key` "target") or group labels; none if it cannot be read."""
    from fieldctl.profiles.targets import load_fleet
    from fieldctl.protocols.core.errors import UsageError

    try:
        fleet = load_fleet(path)
    except UsageError:
        return []
    if key == "target":
        return list(fleet)
    return list(dict.fromkeys(group for target in fleet.values() for group in target.groups))


def _named_profile(ctx: typer.Context) -> Profile | None:
    """The profile or target named earlier on the line (else the default target's), read from its
    files without importing a driver; None if there is none or it cannot be loaded."""
    from fieldctl.profiles.targets import default_target, resolve
    from fieldctl.protocols.core.errors import UsageError

    name = ctx.params.get("profile") or default_target()
    if not name:
        return None
    try:
        return resolve(name, profile_files=_profile_files(ctx))
    except UsageError:
        return None
