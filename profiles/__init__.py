"""Profiles are data: TOML files naming a protocol, its endpoints, channels and vocabulary.

The names below are imported on first use (PEP 562): completing a profile name imports
`profiles.files` alone, not the model and validator behind a loaded profile."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what __getattr__ gives, for the type checker
    from .files import ProfileError as ProfileError
    from .files import available_profiles as available_profiles
    from .loader import load_profile as load_profile
    from .loader import load_profile_file as load_profile_file
    from .model import CommandSpec as CommandSpec
    from .model import HeartbeatSpec as HeartbeatSpec
    from .model import Profile as Profile

_HOMES = {
    "CommandSpec": "model",
    "HeartbeatSpec": "model",
    "Profile": "model",
    "ProfileError": "files",
    "available_profiles": "files",
    "load_profile": "loader",
    "load_profile_file": "loader",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
