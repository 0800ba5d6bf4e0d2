"""Checks a raw profile document and reports every problem as (field, reason)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fieldctl.profiles.schema import (
    CORE,
    CORE_TABLES,
    SECONDS,
    TOPOLOGIES,
    Problem,
    Setting,
    check,
    did_you_mean,
    shown,
)
from fieldctl.protocols.core.urls import INSTEAD, has_password

_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_PAYLOAD_TYPES = {"int", "float", "bool", "str", "object", "array", "any"}


def _type_name(value: Any) -> str:
    return type(value).__name__


def validate(data: dict[str, Any], protocol_settings: Mapping[str, Setting] | None = None) -> list[Problem]:
    """Every problem of the core tables, unknown keys in them included; with the protocol's
    declared settings, of the whole document (a key nobody declared is an error)."""
    problems = _core(data)
    if protocol_settings is None:
        keys = check(data, CORE, only=CORE_TABLES)
    else:
        keys = check(data, {**CORE, **protocol_settings})
    reported = {field for field, _ in problems}
    return problems + [problem for problem in keys if problem[0] not in reported]


def _core(data: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []

    def need(key: str, kind: type | tuple[type, ...], label: str) -> Any:
        value = data.get(key)
        if value is None:
            problems.append((key, "is required"))
        elif not isinstance(value, kind):
            problems.append((key, f"expected {label}, got {_type_name(value)}"))
        return value

    need("name", str, "a string")
    need("protocol", str, "a string")
    if not isinstance(data.get("description", ""), str):
        problems.append(("description", "expected a string"))

    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(("defaults", "expected a table"))
    elif not isinstance(defaults.get("host", ""), str):
        problems.append(("defaults.host", "expected a string"))

    endpoints = need("endpoints", dict, "a table")
    if isinstance(endpoints, dict):
        if not endpoints:
            problems.append(("endpoints", "needs at least one endpoint"))
        for name, url in endpoints.items():
            if not isinstance(url, str) or not ("://" in url or url.startswith("/")):
                problems.append((f"endpoints.{name}", "expected a URL such as tcp://{host}:5556, or a socket path"))
            elif has_password(url):
                problems.append((f"endpoints.{name}", INSTEAD))

    problems += _topology(data.get("topology", {}), endpoints if isinstance(endpoints, dict) else {})

    for table in ("channels", "events"):
        value = data.get(table, {})
        if not isinstance(value, dict):
            problems.append((table, "expected a table"))
            continue
        for name, code in value.items():
            if isinstance(code, bool) or not isinstance(code, (int, str)):
                problems.append((f"{table}.{name}", f"expected an integer or string code, got {_type_name(code)}"))

    commands = data.get("commands", {})
    if not isinstance(commands, dict):
        problems.append(("commands", "expected a table"))
        commands = {}
    for name, spec in commands.items():
        where = f"commands.{name}"
        if not _KEBAB.match(name):
            problems.append((where, "command names are kebab-case, e.g. get-status"))
        if not isinstance(spec, dict):
            problems.append((where, "expected a table"))
            continue
        code = spec.get("code")
        if code is None:
            problems.append((f"{where}.code", "is required"))
        elif isinstance(code, bool) or not isinstance(code, (int, str)):
            problems.append((f"{where}.code", f"expected an integer or string, got {_type_name(code)}"))
        if not isinstance(spec.get("help", ""), str):
            problems.append((f"{where}.help", "expected a string"))
        payload = spec.get("payload", {})
        if not isinstance(payload, dict):
            problems.append((f"{where}.payload", "expected a table of field = type"))
            continue
        for field_name, field_type in payload.items():
            if field_type not in _PAYLOAD_TYPES:
                allowed = ", ".join(sorted(_PAYLOAD_TYPES))
                problems.append((f"{where}.payload.{field_name}", f"unknown type {field_type!r} (one of {allowed})"))

    heartbeat = data.get("heartbeat", {})
    if not isinstance(heartbeat, dict):
        problems.append(("heartbeat", "expected a table"))
        heartbeat = {}
    problems.extend(
        (f"heartbeat.{key}", f"expected {SECONDS.expected}, got {shown(heartbeat[key])}")
        for key in ("interval_s", "stale_after_s")
        if key in heartbeat and not SECONDS.accepts(heartbeat[key])
    )
    channel = heartbeat.get("channel")
    if channel is not None and isinstance(data.get("channels"), dict) and channel not in data["channels"]:
        problems.append(("heartbeat.channel", f"{channel!r} is not one of the profile's channels"))
    if not isinstance(heartbeat.get("fields", []), list):
        problems.append(("heartbeat.fields", "expected a list of payload field names"))

    auth = data.get("auth", {})
    if not isinstance(auth, dict):
        problems.append(("auth", "expected a table"))
        auth = {}
    for name, ref in auth.items():
        where = f"auth.{name}"
        if not isinstance(ref, dict):
            problems.append((where, 'secrets are references: use { env = "VAR" } or { file = "PATH" }, never a value'))
        elif len([k for k in ("env", "file") if isinstance(ref.get(k), str)]) != 1 or set(ref) - {"env", "file"}:
            problems.append((where, 'expected exactly one of env = "VAR" or file = "PATH"'))
    return problems


def _topology(topology: Any, endpoints: Mapping[str, Any]) -> list[Problem]:
    """[topology]: endpoint name -> who binds it; a name the endpoints do not have, or a word
    not among TOPOLOGIES, with a did-you-mean."""
    if not isinstance(topology, dict):
        return [("topology", "expected a table of endpoint = " + " | ".join(f'"{t}"' for t in TOPOLOGIES))]
    problems: list[Problem] = []
    for name, who in topology.items():
        where = f"topology.{name}"
        if name not in endpoints:
            known = ", ".join(endpoints) or "none"
            hint = did_you_mean(name, endpoints) or f" (endpoints: {known})"
            problems.append((where, f"no such endpoint{hint}"))
        elif who not in TOPOLOGIES:
            hint = did_you_mean(who, TOPOLOGIES) if isinstance(who, str) else ""
            problems.append((where, f"expected one of {', '.join(TOPOLOGIES)}, got {shown(who)}{hint}"))
    return problems
