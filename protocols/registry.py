"""Protocols and their profiles are found through entry points; the five built-in systems
register exactly as a third-party plugin package does (see docs/plugins.md)."""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator

from .errors import UsageError

if TYPE_CHECKING:
    from .driver import BaseDriver
    from .options import Declared

#: name -> "package.module:Driver", a BaseDriver subclass.
PROTOCOLS = "fieldctl.protocols"
#: name -> "package.module:ATTRIBUTE", a folder of profile TOML files.
PROFILES = "fieldctl.profiles"


#: importlib.metadata's entry point value: module, then optionally :attribute and [extras].
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


@dataclass(frozen=True)
class EntryPoint:
    """What the registry needs of importlib.metadata.EntryPoint, and loads the same way."""

    name: str
    value: str

    @property
    def module(self) -> str:
        return self._part("module")

    @property
    def attr(self) -> str:
        return self._part("attr")

    def _part(self, part: str) -> str:
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"not an entry point: {self.value!r}")
        return match.group(part) or ""

    def load(self) -> Any:
        target: Any = importlib.import_module(self.module)
        for attr in filter(None, self.attr.split(".")):
            target = getattr(target, attr)
        return target


@functools.cache
def _group(group: str) -> dict[str, EntryPoint]:
    found = _scan(group)
    if found is None:  # a path or finder only importlib.metadata knows how to read
        from importlib.metadata import entry_points

        found = [EntryPoint(ep.name, ep.value) for ep in entry_points(group=group)]
    return {ep.name: ep for ep in sorted(found, key=lambda ep: ep.name)}


def _scan(group: str) -> list[EntryPoint] | None:
    """The group's entry points from the `entry_points.txt` of every distribution on sys.path,
    the first distribution of each name winning, as importlib.metadata does; without importing
    importlib.metadata (which imports email: ~20 ms of every start-up, and of every completion of
    a profile name). None where only importlib.metadata can tell: a zip or other non-folder on
    sys.path, or a finder of its own that lists distributions."""
    if any(hasattr(finder, "find_distributions") and finder is not PathFinder for finder in sys.meta_path):
        return None
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return None
            continue
        for child in _distributions(folder):
            name = re.sub(r"[-_.]+", "_", child.rpartition(".")[0].partition("-")[0]).lower()
            if name in seen:
                continue
            seen.add(name)
            try:
                with open(os.path.join(folder, child, "entry_points.txt"), encoding="utf-8") as text:
                    found += _section(text, group)
            except OSError:  # no entry points (or an old single-file egg-info)
                pass
    return found


def _distributions(folder: str) -> Iterator[str]:
    try:
        children = os.listdir(folder)
    except OSError:
        return
    for child in children:
        if child.lower().endswith((".dist-info", ".egg-info")):
            yield child


def _section(lines: Any, group: str) -> Iterator[EntryPoint]:
    """`name = value` lines of one [group] of an entry_points.txt (INI, as importlib reads it)."""
    current = None
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group:
            name, sep, value = line.partition("=")
            if sep:
                yield EntryPoint(name.strip(), value.strip())


def _load(ep: EntryPoint, what: str) -> Any:
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
