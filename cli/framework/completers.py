"""What <TAB> offers for profile and command names. These run on every completion request, so
they import only the profile loader, and only when called; Typer keeps the names that start
with the word being completed."""

from __future__ import annotations

from pathlib import Path

import typer


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
    from fieldctl.profiles.targets import default_target, resolve
    from fieldctl.protocols.core.errors import UsageError

    name = ctx.params.get("profile") or default_target()
    if not name:
        return []
    try:
        return list(resolve(name, profile_files=_profile_files(ctx)).commands)
    except UsageError:
        return []
