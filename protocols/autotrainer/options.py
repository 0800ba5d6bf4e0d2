"""autotrainer's own command-line options (docs/plugins.md, "Options"): loaded without the driver."""

from __future__ import annotations

from fieldctl.protocols.sdk.options import Declared, OptionSpec

OPTIONS: Declared = {
    "command": {"--custom-command": OptionSpec("custom_command", "json", "customCommand for user-defined (99999)")},
}
