"""tracim's own command-line options (docs/plugins.md, "Options"): loaded without the driver."""

from __future__ import annotations

from fieldctl.protocols.sdk.options import Declared, OptionSpec

MASTER = {
    "--master": OptionSpec(
        "master",
        "str",
        "the daemon's socket path (default: the profile's master endpoint, "
        "or socket_path from TracimDaemon/config.json)",
    )
}

OPTIONS: Declared = {
    "listen": MASTER,
    "register": MASTER,
    "command": MASTER,
    "probe": MASTER,
    "simulate": MASTER,
    "proxy": MASTER,
    "publish": {
        **MASTER,
        "--to": OptionSpec("to", "str", "the socket to send to (default: the master socket)"),
        "--path": OptionSpec(
            "path",
            "str",
            "the envelope path, where replies go (default: the master "
            "path toward a client, fieldctl's client socket toward the "
            "master)",
        ),
    },
}
