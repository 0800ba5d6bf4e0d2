"""Endpoints for a self-contained run (`demo`, the conformance suite, fleets of simulators): the
simulator and the client side by side on free loopback ports and private socket paths, so nothing
else on the machine is touched. A broker's endpoint (the profile's [topology]) is where both sides
connect, not something either binds: it stays as the profile resolved it."""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Mapping
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import SIMULATOR


def private_url(name: str, url: str, folder: str) -> str:
    """A URL with a host (any scheme) moves to 127.0.0.1 with the port left to the system (the
    simulator announces the real one in its `bound` link message); ZeroMQ spells that port '*'.
    TLS is dropped (no certificate to verify in a private run). A socket (a path, unix://) moves into folder."""
    parts = urlsplit(url)
    if is_socket_path(url):
        return os.path.join(folder, f"{name}.sock")
    if parts.scheme == "tcp":
        return "tcp://127.0.0.1:*"
    scheme = {"wss": "ws", "https": "http"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://127.0.0.1:0{parts.path}"


def is_socket_path(url: str) -> bool:
    """A Unix socket (a plain path, unix://, ipc://) rather than a host and port."""
    parts = urlsplit(url)
    return parts.scheme in ("", "unix", "ipc") or not parts.netloc


def with_port(url: str, port: int) -> str:
    """A private URL on a chosen loopback port instead of the one the system would pick."""
    return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{port}"))


def check_free(ports: range) -> None:
    """Every port of the range can be bound on loopback now; else a usage error naming the first
    that cannot (something else holds it, or it is out of range)."""
    from fieldctl.protocols.core.errors import UsageError

    if ports.stop - 1 > 65535:
        raise UsageError(f"ports {ports.start}-{ports.stop - 1}: past 65535")
    for port in ports:
        with socket.socket() as probe:
            # as the simulators' listeners bind: a port left in TIME_WAIT by an earlier run is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise UsageError(
                    f"port {port} (of {ports.start}-{ports.stop - 1}) cannot be bound on 127.0.0.1: "
                    f"{exc.strerror or exc}; pick another --base-port"
                ) from None


def per_target_url(url: str, target: str) -> str:
    """A client's own socket path made distinct per target (the target's name before the
    extension), so one client process can reach many targets at once; other URLs unchanged."""
    if not is_socket_path(url):
        return url
    root, extension = os.path.splitext(url)
    return f"{root}-{target}{extension}"


def private_endpoints(profile: Profile, folder: str) -> dict[str, str]:
    """Endpoint name -> private URL, for every endpoint of the profile but a broker's, which keeps
    the URL the profile resolved (the command line's, the target's or the profile's own)."""
    brokers = profile.broker_endpoints
    return {name: url if name in brokers else private_url(name, url, folder) for name, url in profile.endpoints.items()}


def on_endpoints(profile: Profile, endpoints: Mapping[str, str]) -> Profile:
    """The profile with these endpoints instead: a copy, not a reload (the URLs are private ones,
    or the profile's own)."""
    return replace(profile, endpoints=dict(endpoints), data={**profile.data, "endpoints": dict(endpoints)})


def all_announced(profile: Profile, reached: Mapping[str, str], announced: Collection[str]) -> bool:
    """Whether a simulator of `profile` has said where it is: no port of an endpoint it binds is
    still left to the system, and one `bound` came when it binds any (a socket path announces
    nothing new, but is bound only then). A broker's or the client's endpoint needs no `bound`."""
    binds = [name for name in reached if profile.topology(name) == SIMULATOR]
    return not any(is_wildcard(reached[name]) for name in binds) and (not binds or bool(announced))


def is_wildcard(url: str) -> bool:
    """A URL whose port the system picks: only its `bound` announcement says where it is."""
    port = urlsplit(url).netloc.rpartition(":")[2]
    return port in ("*", "0")
