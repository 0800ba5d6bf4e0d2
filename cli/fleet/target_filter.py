"""The board's `/` filter: words typed as on a command line, all of which a target must match.

`sim-15*` is a glob (fnmatch) on the target's name, group, profile, link state or status; a
word without glob characters matches within them (`15` finds sim-150..sim-159, as k9s' filter
does); `status=down`, `profile=auto*`, `group=room-?`, `link=retrying`, `target=sim-1*` match that
field only. Status is one of up, stale, down (down: not linked, connecting included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

KEYS = ("target", "group", "profile", "link", "status")
#: The fields of a target that do not change while the board runs.
FIXED = ("target", "group", "profile")
GLOB = frozenset("*?[")


@dataclass(frozen=True)
class TargetFilter:
    text: str
    #: (key or None for any, lower-cased glob) per word
    words: tuple[tuple[str | None, str], ...]

    @classmethod
    def parse(cls, text: str) -> TargetFilter:
        words: list[tuple[str | None, str]] = []
        for word in text.lower().split():
            key, sep, value = word.partition("=")
            if sep and key in KEYS:
                words.append((key, value if GLOB & set(value) else value or "*"))
            else:
                words.append((None, word if GLOB & set(word) else f"*{word}*"))
        return cls(text, tuple(words))

    def __bool__(self) -> bool:
        return bool(self.words)

    def matcher(self, fixed: Mapping[str, Mapping[str, tuple[str, ...]]]) -> Matcher:
        """The filter for these targets: `fixed` holds each one's fields that do not change
        (target, group, profile), lower-cased; they are matched once, here, not every frame."""
        return Matcher(self, fixed)


class Matcher:
    """A TargetFilter over a fleet: per word, the targets whose fixed fields match it, and the
    fields that change (link, status) left to match each frame."""

    def __init__(self, wanted: TargetFilter, fixed: Mapping[str, Mapping[str, tuple[str, ...]]]) -> None:
        self.wanted = wanted
        self.steps: list[tuple[frozenset[str], tuple[str, ...], str]] = []
        for key, glob in wanted.words:
            keys = KEYS if key is None else (key,)
            hits = frozenset(
                name
                for name, fields in fixed.items()
                if any(fnmatchcase(value, glob) for field in keys if field in FIXED for value in fields.get(field, ()))
            )
            self.steps.append((hits, tuple(field for field in keys if field not in FIXED), glob))

    def __call__(self, name: str, changing: Mapping[str, str]) -> bool:
        """Whether target `name`, whose link and status are now `changing` (lower-cased), matches."""
        for hits, fields, glob in self.steps:
            if name not in hits and not any(fnmatchcase(changing[field], glob) for field in fields):
                return False
        return True
