"""Protocols and their profiles are found through entry points; the five built-in systems
register exactly as a third-party plugin package does (see docs/plugins.md)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .driver import BaseDriver

#: name -> "package.module:Driver", a BaseDriver subclass.
PROTOCOLS = "fieldctl.protocols"
#: name -> "package.module:ATTRIBUTE", a folder of profile TOML files.
PROFILES = "fieldctl.profiles"


@functools.cache
def _group(group: str) -> dict[str, "EntryPoint"]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in sorted(entry_points(group=group), key=lambda ep: ep.name)}


def _load(ep: "EntryPoint", what: str) -> Any:
    try:
        return ep.load()
    except Exception as exc:  # a broken plugin is the user's to fix, with one clear line
        raise UsageError(f"{what} {ep.name!r} ({ep.value}) cannot be loaded: {type(exc).__name__}: {exc}") from None


def protocol_names() -> list[str]:
    return list(_group(PROTOCOLS))


def driver_class(protocol: str) -> type["BaseDriver"]:
    ep = _group(PROTOCOLS).get(protocol)
    if ep is None:
        raise UsageError(f"unknown protocol {protocol!r} (installed: {', '.join(protocol_names()) or 'none'})")
    return _load(ep, "protocol")  # type: ignore[no-any-return]


def profile_folders() -> list[tuple[str, Path]]:
    """(package name, folder) of every installed package's profiles, in name order."""
    return [(name, Path(_load(ep, "profile folder"))) for name, ep in _group(PROFILES).items()]
