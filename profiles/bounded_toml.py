"""TOML a user hands fieldctl (profiles, targets.toml, fleet files, check files), parsed within
limits: a size, and a nesting depth checked before tomllib sees the text. tomllib recurses once
per nested array or inline table (a 100,000-deep array is a RecursionError), and builds a long
dotted key in quadratic memory, so both are measured here first, and the parsed document's
depth (dotted keys in nested tables add up) after."""

from __future__ import annotations

import re
from typing import Any

from fieldctl.protocols.core.limits import MAX_DEPTH, within_depth

#: The largest TOML file read: a generated fleet file of 10,000 targets is about 2 MiB.
MAX_TOML_BYTES = 8 * 1024 * 1024
#: Nesting of tables, arrays and dotted keys; real files stay below 10.
MAX_TOML_DEPTH = MAX_DEPTH


class TomlTooDeep(ValueError):
    """A document nested past MAX_TOML_DEPTH."""


#: Strings and comments, whose brackets and dots do not count; a quote that starts no complete
#: string is where tomllib stops with its own error, and so where the scan stops too.
_STRING_OR_COMMENT = re.compile(
    r'"""(?:[^"\\]|\\.|"{1,2}(?!"))*"{3,5}'
    r"|'''(?:[^']|'{1,2}(?!'))*'{3,5}"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\"']",
    re.DOTALL,
)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
#: A bare key, a number's digits, a value: what a dot may join (a number's own dot makes two
#: parts, far below the limit).
_WORD = re.compile(r"[^\s.\[\]{}=,]+")
_END = "\0"  # never in valid TOML text: tomllib stops at one too


def _plain(match: re.Match[str]) -> str:
    """A string as a one-letter key part, a comment as nothing, a lone quote as the end."""
    token = match.group()
    return _END if token in ('"', "'") else "" if token.startswith("#") else "s"


def check_nesting(text: str, max_depth: int = MAX_TOML_DEPTH) -> None:
    """Raises TomlTooDeep when arrays and inline tables nest deeper than `max_depth`, or a dotted
    key has more parts, before tomllib reads the text. Linear, and mostly at C speed."""
    if text.count("[") + text.count("{") <= max_depth and text.count(".") < max_depth:
        return
    plain = _STRING_OR_COMMENT.sub(_plain, text).partition(_END)[0]
    depth = 0
    for bracket in _NOT_BRACKETS.sub("", plain):
        depth += 1 if bracket in "[{" else -1
        if depth > max_depth:
            raise TomlTooDeep(f"nested deeper than {max_depth} levels")
    words = _WORD.sub("a", plain).replace(" ", "").replace("\t", "")  # `x . y` is `a.a`
    if "a." * max_depth + "a" in words:
        raise TomlTooDeep(f"a dotted key of more than {max_depth} parts")


def parse(text: str, max_depth: int = MAX_TOML_DEPTH) -> dict[str, Any]:
    """`text` as a dict; TomlTooDeep or tomllib.TOMLDecodeError (both ValueErrors) otherwise."""
    import tomllib  # here: listing names parses no TOML (~3 ms of a <TAB>)

    check_nesting(text, max_depth)
    data = tomllib.loads(text)
    if not within_depth(data, max_depth):
        raise TomlTooDeep(f"nested deeper than {max_depth} levels")
    return data
