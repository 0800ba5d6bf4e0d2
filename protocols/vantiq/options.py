"""vantiq's own command-line options (docs/plugins.md, "Options"): loaded without the driver."""

from __future__ import annotations

from fieldctl.protocols.sdk.options import RUNS_A_PROGRAM, Declared, OptionSpec
from fieldctl.protocols.sdk.websocket_options import OPTIONS as WEBSOCKET_OPTIONS
from fieldctl.protocols.sdk.websocket_options import PROXY_OPTIONS

CONNECTOR_OPTIONS = {
    **WEBSOCKET_OPTIONS,
    "--config": OptionSpec(
        "config", "str", "server.config (default: serverConfig/server.config, then ./server.config)"
    ),
    "--token-file": OptionSpec(
        "token_file", "str", "file holding the access token (else authToken, CONNECTOR_AUTH_TOKEN)"
    ),
    "--source": OptionSpec(
        "sources", "str", "source name (repeatable; default: sources in server.config)", repeat=True
    ),
}
HEALTH = {"--health-port": OptionSpec("health_port", "int", "TCP health probe port (the SDK's tcpProbePort)")}

OPTIONS: Declared = {
    "register": {
        **CONNECTOR_OPTIONS,
        **HEALTH,
        "--data-file": OptionSpec("data_file", "str", "answer queries from rows in FILE (.json, .ndjson, .csv)"),
        "--answer-with": OptionSpec(
            "answer_with", "str", "answer queries with CMD: parameters on stdin, rows on stdout", risk=RUNS_A_PROGRAM
        ),
        "--same-socket": OptionSpec(
            "same_socket", "flag", "after reconnectRequired, reconnect on the same websocket (Java style)"
        ),
    },
    "publish": CONNECTOR_OPTIONS,
    "probe": {**CONNECTOR_OPTIONS, **HEALTH},
    "simulate": {
        "--source": OptionSpec(
            "sources", "str", "serve source NAME, configured from CONFIG.json (repeatable)", repeat=True
        ),
        "--token-file": OptionSpec(
            "token_file", "str", "accepted tokens, one a line (else CONNECTOR_AUTH_TOKEN; none: any)"
        ),
        "--reconnect-after": OptionSpec(
            "reconnect_after", "seconds", "send reconnectRequired S seconds after a source's first connect"
        ),
        "--send": OptionSpec("send", "str", "frame type to send: binary (default, Java and Python) or text"),
        "--query-timeout": OptionSpec("query_timeout", "seconds", "seconds to wait for a query's final response"),
    },
    "proxy": PROXY_OPTIONS,
}
