"""Text from a wire, made safe for a terminal: every control character shown, none obeyed.

A device names its own `kind`, `identifier` and `errorMessage`; an escape sequence in one of them
would retitle, clear or scroll the operator's terminal, and `[...]` would be rich markup. So
everything the CLI shows goes through `visible` (C0, DEL and C1 controls become `\\xNN`, a URL's
password `***`) and reaches rich as `Text`, never as a markup string; every stderr line goes
through `stderr_line`, which also masks known secrets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fieldctl.protocols.core.urls import mask_passwords

if TYPE_CHECKING:
    from rich.text import Text

#: C0 (tab and newline too: one cell, one line), DEL and C1, each shown as its escape; and the
#: Unicode line separators and bidirectional overrides, which move or reorder what is drawn.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS.update({code: f"\\u{code:04x}" for code in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def visible(text: Any) -> str:
    """`text` (any value, as str) with every control character written out instead of obeyed,
    and the password of any URL in it masked."""
    return mask_passwords(str(text)).translate(_CONTROLS)


def cell(value: Any, style: str = "") -> Text:
    """A rich Text for one table cell or field: no markup is parsed, no control char survives.
    (rich is imported here, not above: stderr_line is on the path of every error line.)"""
    from rich.text import Text

    return Text(visible(value), style=style)


def stderr_line(text: str) -> str:
    """One line for stderr (or a summary on screen): known secrets masked, then controls escaped,
    so a newline cannot forge a second line."""
    from fieldctl.protocols.core.redact import scrub_text

    return visible(scrub_text(text))
