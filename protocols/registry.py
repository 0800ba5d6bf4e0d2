"""Protocols and their profiles are found through entry points; the five built-in systems
register exactly as a third-party plugin package does (see docs/plugins.md)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .driver import BaseDriver
    from .options import Declared

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


@functools.cache
def declared_options(protocol: str) -> "Declared":
    """The command-line options a protocol declares: `OPTIONS` of the `options` module beside the
    module its entry point names (docs/plugins.md). Read without importing the driver, so `--help`
    and completion stay light; a protocol without that module has none."""
    from importlib.util import find_spec

    ep = _group(PROTOCOLS).get(protocol)
    if ep is None:
        raise UsageError(f"unknown protocol {protocol!r} (installed: {', '.join(protocol_names()) or 'none'})")
    try:
        spec = find_spec(ep.module)
        package = ep.module if spec is not None and spec.submodule_search_locations is not None else \
            ep.module.rpartition(".")[0]
        module = _light_module(f"{package}.options")
    except Exception as exc:  # a broken plugin is the user's to fix, with one clear line
        raise UsageError(f"the options of protocol {protocol!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    return getattr(module, "OPTIONS", {}) if module is not None else {}


def _light_module(name: str) -> ModuleType | None:
    """The module `name`, executed without its package's __init__ when that is not loaded yet:
    a built-in protocol's __init__ is its driver, which imports its transport."""
    import importlib
    from importlib.util import find_spec, module_from_spec, spec_from_file_location

    package = name.rpartition(".")[0]
    if name in sys.modules or package in sys.modules:
        return importlib.import_module(name) if find_spec(name) is not None else None
    package_spec = find_spec(package)
    for folder in (package_spec.submodule_search_locations or []) if package_spec is not None else []:
        path = Path(folder) / "options.py"
        if path.is_file():
            spec = spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = module_from_spec(spec)
            sys.modules[name] = module  # the package's own later import finds this one
            spec.loader.exec_module(module)
            return module
    return None
