"""Which protocols are installed, and their drivers, options and declared settings: found
through entry points, so the five built-in systems register exactly as a third-party plugin
package does (see docs/plugins.md)."""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from fieldctl.protocols.core import entry_points
from fieldctl.protocols.core.errors import UsageError

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.profiles.schema import Setting
    from fieldctl.protocols.sdk.contract import BaseDriver, Notify
    from fieldctl.protocols.sdk.options import Declared


def protocol_names() -> list[str]:
    return list(entry_points.group(entry_points.PROTOCOLS))


def _entry_point(protocol: str) -> entry_points.EntryPoint:
    ep = entry_points.group(entry_points.PROTOCOLS).get(protocol)
    if ep is None:
        raise UsageError(f"unknown protocol {protocol!r} (installed: {', '.join(protocol_names()) or 'none'})")
    return ep


def driver_class(protocol: str) -> type[BaseDriver]:
    driver: type[BaseDriver] = _entry_point(protocol).load("protocol")  # what the group promises (docs/plugins.md)
    return driver


def declared_settings(protocol: str) -> dict[str, Setting]:
    """The settings a protocol's driver declares."""
    return driver_class(protocol).settings


def driver_for(profile: Profile, notify: Notify) -> BaseDriver:
    """The profile's driver, once its declared settings have the right types (one line, exit 2)."""
    check_settings(profile)
    return driver_class(profile.protocol)(profile, notify)


def check_settings(profile: Profile) -> None:
    """The profile's declared settings have the right types, and every key a --set (or a saved
    target's `set`) gave is one its protocol reads; else ProfileError (one line, exit 2)."""
    from fieldctl.profiles.loader import problems_error, set_by
    from fieldctl.profiles.schema import CORE, check

    declared = declared_settings(profile.protocol)
    problems = check(profile.data, declared, unknown=False)
    if profile.overrides:  # a key a person gave must be one somebody reads
        problems += [
            problem
            for problem in check(profile.data, {**CORE, **declared})
            if problem not in problems and set_by(problem[0], profile.overrides)
        ]
    if problems:
        raise problems_error(profile.source, problems, profile.overrides)


@functools.cache
def declared_options(protocol: str) -> Declared:
    """The command-line options a protocol declares: `OPTIONS` of the `options` module of the
    package its entry point names (docs/plugins.md), read without importing the driver, so
    `--help` and completion stay light; a protocol without that module has none."""
    from importlib.util import find_spec

    ep = _entry_point(protocol)
    try:
        spec = find_spec(ep.module)
        is_package = spec is not None and spec.submodule_search_locations is not None
        package = ep.module if is_package else ep.module.rpartition(".")[0]
        if find_spec(f"{package}.options") is None:
            return {}
        module = importlib.import_module(f"{package}.options")
    except Exception as exc:  # noqa: BLE001  a broken plugin is the user's to fix, with one clear line
        raise UsageError(
            f"the options of protocol {protocol!r} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    options: Declared = getattr(module, "OPTIONS", {})
    return options
