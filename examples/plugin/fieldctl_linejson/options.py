"""linejson's own command-line options. fieldctl reads this module on the `--help` and completion
paths without importing the driver, so it imports only the two names it needs from fieldctl.sdk (loaded as used)."""

from __future__ import annotations

from fieldctl.sdk import Declared, OptionSpec

OPTIONS: Declared = {
    "listen": {
        "--kind": OptionSpec("kinds", "str", "only events of this kind (repeatable; heartbeats always)", repeat=True)
    },
}
