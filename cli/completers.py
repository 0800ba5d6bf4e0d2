"""What <TAB> offers for profile and command names. These run on every completion request, so
they import only the profile loader, and only when called; Typer keeps the names that start
with the word being completed."""

from __future__ import annotations

from pathlib import Path

import typer


def _profile_files(ctx: typer.Context) -> list[Path]:
    return ctx.params.get("profile_file") or []


def profile_names(ctx: typer.Context) -> list[str]:
    """Built-in and user profiles, and those of any --profile-file typed before the name."""
    from fieldctl.profiles import ProfileError, available_profiles

    try:
        return list(available_profiles(_profile_files(ctx)))
    except ProfileError:
        return []


def command_names(ctx: typer.Context) -> list[str]:
    """The commands of the profile named earlier on the line; none if it cannot be loaded."""
    from fieldctl.profiles import ProfileError, load_profile

    name = ctx.params.get("profile")
    if not name:
        return []
    try:
        return list(load_profile(name, profile_files=_profile_files(ctx)).commands)
    except ProfileError:
        return []
