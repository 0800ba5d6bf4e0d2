"""Endpoints for a self-contained run (`demo`): the simulator and the client side by side on free
loopback ports and private socket paths, so nothing else on the machine is touched."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from fieldctl.profiles import Profile


def private_endpoints(profile: Profile, folder: str) -> dict[str, str]:
    """Endpoint name -> URL: TCP and WebSocket on 127.0.0.1 with the port left to the system
    (the simulator announces the real one in its `bound` link message), sockets in `folder`."""
    private = {}
    for name, url in profile.endpoints.items():
        parts = urlsplit(url)
        if parts.scheme == "tcp":
            private[name] = "tcp://127.0.0.1:*"
        elif parts.scheme in ("ws", "wss"):
            private[name] = f"ws://127.0.0.1:0{parts.path}"  # no certificate to verify in a demo
        else:
            private[name] = os.path.join(folder, f"{name}.sock")
    return private


def is_wildcard(url: str) -> bool:
    """A URL whose port the system picks: only its `bound` announcement says where it is."""
    port = urlsplit(url).netloc.rpartition(":")[2]
    return port in ("*", "0")
