"""sepl's own command-line options (docs/plugins.md, "Options"): loaded without the driver."""

from __future__ import annotations

from fieldctl.protocols.sdk.options import PARAMS, RUNS_A_PROGRAM, Declared, OptionSpec
from fieldctl.protocols.sdk.websocket_options import OPTIONS as WEBSOCKET_OPTIONS
from fieldctl.protocols.sdk.websocket_options import PROXY_OPTIONS

ACCOUNT = {
    "--user": OptionSpec("user", "str", "platform user (default: connector.user)"),
    "--gid": OptionSpec(
        "gid",
        "str",
        "gateway id (default: the one in --store, else connector.gid, else the one the platform assigned before, "
        "kept in the state folder)",
    ),
    "--password-file": OptionSpec(
        "password_file",
        "str",
        "read the password from FILE (default: the profile's [auth] password reference, e.g. env SEPL_PASSWORD)",
    ),
    "--store": OptionSpec("store", "str", "sqlite device store (devices and gateway id survive restarts)"),
    **WEBSOCKET_OPTIONS,
}

OPTIONS: Declared = {
    "register": {
        **ACCOUNT,
        "--device": OptionSpec("devices", "str", "a device id:type:name[:tag=value...] (repeatable)", repeat=True),
        "--devices-file": OptionSpec(
            "devices_file", "str", "one device spec per line; edits while running become put/disconnect + commit"
        ),
        "--on-remove": OptionSpec(
            "on_remove", "str", "a device removed from --devices-file: disconnect (default) or delete"
        ),
        "--answer": OptionSpec("answer", "str", "answer commands: echo (default), fixed (--answer-data) or cmd"),
        "--answer-data": OptionSpec("answer_data", "json", "the data part of every answer with --answer fixed"),
        "--answer-with": OptionSpec(
            "answer_with",
            "str",
            "program that gets the command as JSON on stdin and prints the data part",
            risk=RUNS_A_PROGRAM,
        ),
    },
    "publish": {
        **ACCOUNT,
        PARAMS: OptionSpec(PARAMS, "str", "SERVICE (publish sepl DEVICE SERVICE --data JSON)"),
        "--metadata": OptionSpec("metadata", "json", "the event's metadata part (default null)"),
    },
    "probe": ACCOUNT,
    "simulate": {
        "--users-file": OptionSpec(
            "users_file",
            "str",
            "accepted logins, one NAME=PASSWORD per line (default: simulate.user with the [auth] password)",
        ),
        "--send": OptionSpec("send", "str", "frame type the platform sends: text (default) or binary"),
        "--tls-cert": OptionSpec("tls_cert", "str", "certificate (PEM) for a wss:// platform endpoint"),
        "--tls-key": OptionSpec("tls_key", "str", "its private key, if not in the certificate file"),
    },
    "proxy": PROXY_OPTIONS,
}
