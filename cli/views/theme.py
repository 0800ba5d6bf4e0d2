"""Colours by meaning, readable on light and dark backgrounds alike: the direction of a message,
its severity, a notice. Nothing people must read is dim, and no notice is yellow (unreadable on
white). FIELDCTL_THEME=dark or light trades a little of that neutrality for a clearer colour on
the background it names; NO_COLOR (honoured by rich) turns every colour off."""

from __future__ import annotations

import functools
import os

#: Meaning -> rich style. `in` and `notice` are plain bold by default: the one colour that reads
#: on every background is the terminal's own foreground.
_NEUTRAL = {
    "in": "bold",
    "out": "bold magenta",
    "alarm": "bold red",
    "error": "bold red",
    "ok": "green",
    "notice": "bold",
    "link": "bold",
}
_THEMES = {
    "dark": {**_NEUTRAL, "in": "bold cyan", "notice": "bold yellow"},
    "light": {**_NEUTRAL, "in": "bold blue", "out": "bold magenta", "ok": "dark_green", "notice": "bold dark_orange3"},
}


@functools.cache
def theme() -> dict[str, str]:
    """The styles for $FIELDCTL_THEME (dark, light; anything else: readable on both), read once:
    every line asks."""
    return _THEMES.get(os.environ.get("FIELDCTL_THEME", "").strip().lower(), _NEUTRAL)


def style(meaning: str) -> str:
    """The rich style of one meaning (in, out, alarm, error, ok, notice, link)."""
    return theme()[meaning]
