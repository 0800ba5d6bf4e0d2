"""Columns that fit the terminal as k9s fits them: some never give way (a target's name, its
status), the detail column takes what is left and gives way first, and when even its minimum
does not fit, the lesser columns are dropped one by one in their declared order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

GAP = "  "


@dataclass(frozen=True)
class Column:
    header: str
    width: int
    #: Dropped in this order when the width runs short (lowest first); None: never dropped.
    drop: int | None = None
    right: bool = False


@dataclass(frozen=True)
class Layout:
    """The columns kept, and the width the detail column gets after them (0: no detail)."""

    columns: tuple[Column, ...]
    detail: int

    def line(self, cells: Sequence[Text], detail: Text | None = None, style: str = "") -> Text:
        """One row: `cells` (one per column kept) each cut or padded to its width, then the detail."""
        out = Text(style=style, no_wrap=True, overflow="crop")
        for column, text in zip(self.columns, cells, strict=True):
            out.append_text(sized(text, column.width, right=column.right))
            out.append(GAP)
        if self.detail and detail is not None:
            out.append_text(sized(detail, self.detail))
        return out

    def header(self, detail: str) -> Text:
        return self.line([Text(c.header) for c in self.columns], Text(detail), style="bold")


def fit(columns: Sequence[Column], width: int, detail_min: int) -> Layout:
    """The columns that fit `width` with at least `detail_min` for the detail, lesser ones dropped
    first; when only the undroppable ones are left, the detail gets what remains (maybe nothing)."""
    kept = list(columns)
    droppable = sorted((c for c in kept if c.drop is not None), key=lambda c: c.drop or 0)
    while True:
        rest = width - sum(c.width + len(GAP) for c in kept)
        if rest >= detail_min or not droppable:
            return Layout(tuple(kept), max(0, rest))
        kept.remove(droppable.pop(0))


def sized(text: Text, width: int, *, right: bool = False) -> Text:
    """`text` exactly `width` cells wide: cut with an ellipsis, or padded on the side it leans from."""
    text = text.copy()
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    pad = width - text.cell_len
    if pad > 0:
        if right:
            text = Text(" " * pad) + text
        else:
            text.append(" " * pad)
    return text
