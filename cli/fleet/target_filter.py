"""The board's `/` filter: words typed as on a command line, all of which a target must match.

`sim-15*` is a glob (fnmatch) on the target's name, group, profile, link state or status; a
word without glob characters matches within them (`15` finds sim-150..sim-159, as k9s' filter
does); `status=down`, `profile=auto*`, `group=room-?`, `link=retrying`, `target=sim-1*` match that
field only. Status is one of up, stale, down (down: not linked, connecting included).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

KEYS = ("target", "group", "profile", "link", "status")
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

    @property
    def dynamic(self) -> bool:
        """It reads the link or the status, which change: matched each frame, not once."""
        return any(key in (None, "link", "status") for key, _ in self.words)

    def match(self, fields: dict[str, tuple[str, ...]]) -> bool:
        """`fields`: each key's values (a target has several groups), lower-cased."""
        for key, glob in self.words:
            keys = KEYS if key is None else (key,)
            if not any(fnmatchcase(value, glob) for name in keys for value in fields.get(name, ())):
                return False
        return True
