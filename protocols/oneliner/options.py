"""oneliner's own command-line options (docs/plugins.md, "Options"): loaded without the driver."""

from __future__ import annotations

from fieldctl.protocols.sdk.options import PARAMS, UNPICKLES, Declared, OptionSpec

_TRUST = OptionSpec("trust_pickle", "flag", "unpickle without restriction (a trusted server only)", risk=UNPICKLES)

OPTIONS: Declared = {
    "listen": {
        "--stream": OptionSpec("streams", "str", "subscribe to this stream exactly (repeatable)", repeat=True),
        "--trust-pickle": _TRUST,
    },
    "command": {
        PARAMS: OptionSpec(PARAMS, "str", "call OBJECT.ATTR | named NAME | enable STREAM | disable STREAM"),
        "--args": OptionSpec("args", "json", "positional arguments, a JSON array"),
        "--kwargs": OptionSpec("kwargs", "json", "keyword arguments, a JSON object"),
        "--timestamp": OptionSpec("timestamp", "flag", "ask for the server's timestamp (get_timestamp)"),
        "--trust-pickle": _TRUST,
    },
    "probe": {"--stream": OptionSpec("stream", "str", "also wait for a sample on this stream")},
}
