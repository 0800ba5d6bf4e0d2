"""Where the sockets are: the master path by the daemon's own rule (spec §1.1) and fieldctl's
client socket, from the profile's `unix://` endpoints, --endpoint or --master/--to."""

from __future__ import annotations

import itertools
import os
import tempfile
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.limits import loads
from fieldctl.protocols.transport import failures

from .codec import MAX_SOCKET_PATH

SCHEME = "unix://"


def config_dir() -> str:
    """Go's os.UserConfigDir on Linux: $XDG_CONFIG_HOME if set and non-empty, else ~/.config."""
    return os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")


def runtime_dir() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return runtime if runtime and os.access(runtime, os.W_OK) else tempfile.gettempdir()


def configured_socket_path(directory: str) -> str | None:
    """`socket_path` of <dir>/TracimDaemon/config.json, matched case-insensitively like Go."""
    try:
        with open(os.path.join(directory, "TracimDaemon", "config.json"), "rb") as handle:
            config = loads(handle.read(1 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    values = [value for key, value in config.items() if key.lower() == "socket_path"]
    return values[-1] if values and isinstance(values[-1], str) and values[-1] else None


def socket_path(url: str, what: str) -> str:
    """A plain path, or a unix:// URL with the placeholders {config}, {runtime}, {pid} filled in."""
    path = url[len(SCHEME) :] if url.startswith(SCHEME) else url
    if "://" in path:
        raise failures.unsupported_scheme(url, ("unix",), what, "a plain path")
    path = path.replace("{config}", config_dir()).replace("{runtime}", runtime_dir())
    path = path.replace("{pid}", str(os.getpid()))
    if not path:
        raise UsageError(f"{what}: empty socket path")
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise UsageError(
            f"{what}: {path} is {len(os.fsencode(path))} bytes, over the {MAX_SOCKET_PATH}-byte "
            "limit of a Unix socket path"
        )
    return path


def master_path(profile: Profile, options: dict[str, Any]) -> str:
    """--master, else the profile's endpoint; while the endpoint still says {config}, the daemon's
    own config.json decides first (its socket_path is also the `path` it writes)."""
    if options.get("master"):
        return socket_path(options["master"], "--master")
    return daemon_socket(profile.endpoints["master"], "endpoint master")


def daemon_socket(url: str, what: str) -> str:
    """A daemon's master socket from its URL: while the URL still says {config}, the daemon's own
    config.json decides first."""
    if "{config}" in url:
        configured = configured_socket_path(config_dir())
        if configured is not None:
            return socket_path(configured, "config.json socket_path")
    return socket_path(url, what)


#: How many client sockets this process has asked for: each role after the first gets its own.
_CLIENTS = itertools.count()


def client_path(profile: Profile) -> str:
    """fieldctl's own socket for one role. A process may play several clients at once (a bench's
    clients, a fleet's targets, a check's listener beside its commands): after the first, the
    path gets a serial before its extension, so no two of them claim the same socket."""
    path, serial = socket_path(profile.endpoints["client"], "endpoint client"), next(_CLIENTS)
    if serial:
        stem, extension = os.path.splitext(path)
        path = socket_path(f"{stem}-{serial}{extension}", "endpoint client")
    return path
