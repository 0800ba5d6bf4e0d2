"""One line per message, for people: `--lines` (time, direction, channel, kind, id, a compact
summary, like `mosquitto_sub -v`) and `--format TEMPLATE` (the Message's own fields, as NDJSON
names them, and paths into its payload). Lines go to stdout and stay in the terminal's
scrollback, unlike the live table's rows.

Everything from the wire is escaped (escape.visible) before it reaches the terminal. A template
is parsed here, never handed to str.format: its names are looked up in a whitelist of fields and
in the payload's dicts and lists, so `{payload.__class__}` is only a key that is not there.
`message_line` (a Message as one rich Text) is what other views (the console, the fleet board)
may reuse."""

from __future__ import annotations

import json
import os
import re
import string
import sys
from binascii import b2a_base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fieldctl.cli.framework.escape import visible
from fieldctl.cli.views import theme
from fieldctl.cli.views.links import link_text
from fieldctl.cli.views.render import channel_style, row_style
from fieldctl.protocols.core.errors import UsageError

if TYPE_CHECKING:
    from rich.text import Text

    from fieldctl.protocols.core.message import Message

#: The names a template may use: the NDJSON fields of a Message, and a fleet's `target`.
FIELDS = (
    "ts",
    "profile",
    "endpoint",
    "direction",
    "channel",
    "kind",
    "id",
    "payload",
    "error",
    "raw",
    "rtt_s",
    "fault",
    "target",
)
#: What a path that is not in the message (or a null) shows as: a column is never left out.
MISSING = "-"
#: What `--format` takes for today's NDJSON, as `--json` gives it.
NDJSON_FORMATS = ("json", "ndjson")
#: Characters of each of a line's cells (the driver's own summary is cut shorter still).
SUMMARY_CHARS = 200
#: Below this size a terminal cannot hold the live table: `listen` prints lines instead.
SMALLEST_TABLE = (50, 12)  # columns, rows

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class _Field:
    """One `{name.path[0]:spec}` of a template."""

    name: str
    path: tuple[str | int, ...]
    spec: str


class Template:
    """`--format TEMPLATE`: literal text and `{field}`s, checked when parsed (a usage error with a
    did-you-mean, before anything connects) and filled per message."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[str | _Field] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise UsageError(f"--format {text!r}: {exc} (write {{{{ and }}}} for literal braces)") from None
        for literal, name, spec, conversion in parsed:
            if literal:
                self.parts.append(literal)
            if name is None:
                continue
            self.parts.append(_field(text, name, spec or "", conversion))

    def render(self, msg: Message, target: str | None = None) -> str:
        """The filled template, every value escaped: one line, whatever the peer sent."""
        return "".join(part if isinstance(part, str) else visible(_value(part, msg, target)) for part in self.parts)


def _field(template: str, name: str, spec: str, conversion: str | None) -> _Field:
    where = f"--format {template!r}"
    if conversion is not None:
        raise UsageError(f"{where}: {{{name}!{conversion}}}: conversions are not supported")
    if "{" in spec or "}" in spec:
        raise UsageError(f"{where}: {{{name}:{spec}}}: a format spec cannot hold a field")
    segments = []
    position = 0
    for match in _SEGMENT.finditer(name):
        gap = name[position : match.start()]
        if gap not in ("", ".") or (gap == "." and match.group(2) is not None):
            raise UsageError(f"{where}: {{{name}}}: expected a field name, then .key or [index] paths")
        segments.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not segments or position != len(name) or not isinstance(segments[0], str):
        raise UsageError(f"{where}: {{{name}}}: expected a field name, e.g. {{kind}} or {{payload.mode}}")
    head = str(segments[0])
    if head not in FIELDS:
        from fieldctl.profiles.schema import did_you_mean

        hint = did_you_mean(head, FIELDS) or f" (fields: {', '.join(FIELDS)})"
        raise UsageError(f"{where}: unknown field {head!r}{hint}")
    path = tuple(int(s) if isinstance(s, str) and s.isdigit() else s for s in segments[1:])
    if path and head not in ("payload", "raw"):
        raise UsageError(f"{where}: {{{name}}}: only payload (and raw) have paths; {head} is one value")
    return _Field(head, path, spec)


def _value(part: _Field, msg: Message, target: str | None) -> str:
    if part.name == "ts" and part.spec:
        try:
            return datetime.fromtimestamp(msg.ts).strftime(part.spec)
        except (OverflowError, OSError, ValueError, TypeError):
            return "?"
    if part.name == "target":
        value: Any = target
    elif part.name == "raw":
        value = [b2a_base64(frame, newline=False).decode("ascii") for frame in msg.raw]
    else:
        value = getattr(msg, part.name)
    for step in part.path:
        value = _step(value, step)
        if value is _ABSENT:
            return MISSING
    return _shown(value, part.spec)


_ABSENT = object()


def _step(value: Any, step: str | int) -> Any:
    """One step down a path: a dict's key (a number is a key too) or a list's index; else absent."""
    if isinstance(value, dict):
        if step in value:
            return value[step]
        return value.get(str(step), _ABSENT)
    if isinstance(value, (list, tuple)) and isinstance(step, int) and step < len(value):
        return value[step]
    return _ABSENT


def _shown(value: Any, spec: str) -> str:
    """A value as NDJSON would write it (strings bare), through its format spec where one fits."""
    if value is None:
        return MISSING
    if spec:
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            pass  # a spec that does not fit this value (`:.2f` on a string): the value as it is
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
    return str(value)


# -- the default line ---------------------------------------------------------------------------


#: The last second clock() wrote, and its HH:MM:SS: a burst's lines share their second, and
#: strftime was a tenth of a line's cost. One tuple, replaced whole (two threads may read it).
_second: tuple[int, str] = (-1, "")


def clock(ts: float) -> str:
    """HH:MM:SS.mmm, or '?' for a time no clock shows (a scenario line may carry any `ts`)."""
    global _second  # noqa: PLW0603  a one-entry cache
    try:
        whole = int(ts // 1)
        second, text = _second
        if whole != second:
            text = datetime.fromtimestamp(whole).strftime("%H:%M:%S")
            _second = (whole, text)
        return f"{text}.{int((ts - whole) * 1000):03d}"
    except (OverflowError, OSError, ValueError, TypeError):
        return "?"


def line_segments(
    msg: Message, summarize: Callable[[Message], str], styles: Mapping[str, str], target: str | None = None
) -> list[tuple[str, str]]:
    """A message's line as (text, rich style) pieces, every text escaped: time, target (a
    fleet's), direction (· for a link line), channel, kind, #id, then the driver's summary (or
    the error)."""
    severity = row_style(styles, msg.channel, bool(msg.error))
    pieces = [(clock(msg.ts), ""), (" ", "")]
    if target is not None:
        pieces += [(visible(target), "bold"), (" ", "")]
    if msg.is_link:
        pieces.append(("·", ""))  # connection state: neither received nor sent
    elif msg.direction == "in":
        pieces.append(("←", theme.style("in")))
    else:
        pieces.append(("→", theme.style("out")))
    cut = SUMMARY_CHARS  # a peer names its own kind and id, at any length
    pieces += [(" ", ""), (visible(msg.channel[:cut]), severity or channel_style(styles, msg.channel))]
    pieces += [(" ", ""), (visible(str(msg.kind)[:cut]), severity or "bold")]
    if msg.id is not None:
        pieces += [(" #", ""), (visible(str(msg.id)[:cut]), "")]
    if msg.is_link:
        detail = f"{msg.endpoint} {link_text(msg)}".strip()
    elif msg.error:
        detail = f"✗ {msg.error}"
    else:
        detail = summarize(msg)
    if msg.fault is not None:  # what a fault rule did to it: before the detail that may be cut
        detail = f"[{msg.fault}] {detail}"
    if detail:
        pieces += [("  ", ""), (visible(detail[:SUMMARY_CHARS]), severity)]
    return pieces


def message_line(
    msg: Message, summarize: Callable[[Message], str], styles: Mapping[str, str], target: str | None = None
) -> Text:
    """One message as one rich Text (for views that print through rich)."""
    from rich.text import Text

    return Text.assemble(*line_segments(msg, summarize, styles, target))


class LineWriter:
    """Message -> the text `--lines` or `--format` writes for it on stdout (None: nothing). A
    Sink's formatter: called on the ingest path, so it builds strings, not rich renderables; the
    colours' escape codes are worked out once per style."""

    def __init__(
        self,
        summarize: Callable[[Message], str],
        styles: Mapping[str, str],
        template: Template | None = None,
        *,
        color: bool = False,
    ) -> None:
        self.summarize, self.styles, self.template = summarize, styles, template
        self._codes: dict[str, tuple[str, str]] | None = {} if color else None

    def __call__(self, msg: Message, target: str | None = None) -> str | None:
        if self.template is not None:
            if msg.is_link:
                note_link(msg)  # a template's lines are messages only: connection state goes to stderr
                return None
            return self.template.render(msg, target) + "\n"
        pieces = line_segments(msg, self.summarize, self.styles, target)
        codes = self._codes
        if codes is None:
            return "".join([text for text, _ in pieces]) + "\n"
        out = []
        for text, style in pieces:
            if style:
                before, after = codes.get(style) or self._codes_of(style)
                out.append(before + text + after)
            else:
                out.append(text)
        return "".join(out) + "\n"

    def _codes_of(self, style: str) -> tuple[str, str]:
        """The escape codes around a text in `style`, worked out once (NO_COLOR: bold, no colour)."""
        from rich.style import Style

        parsed = Style.parse(style)
        marked = (parsed.without_color if os.environ.get("NO_COLOR") else parsed).render("\0")
        before, _, after = marked.partition("\0")
        assert self._codes is not None
        self._codes[style] = (before, after)
        return before, after


def color_wanted() -> bool:
    """Whether lines on stdout get colours: on a terminal that has them (rich decides: TERM,
    FORCE_COLOR), never on a pipe; NO_COLOR keeps bold only."""
    from rich.console import Console

    console = Console()
    return console.is_terminal and console.color_system is not None


def note_link(msg: Message) -> None:
    """A link line under `--format`: connection state for the person, on stderr."""
    sys.stderr.write(visible(f"{msg.endpoint}: {msg.kind} {link_text(msg)}".rstrip()) + "\n")


@dataclass(frozen=True)
class Output:
    """What a streaming role prints on stdout: 'json', 'lines' (with `template` for --format) or
    'table'; `note` says why the table gave way to lines, when it did."""

    mode: str
    template: Template | None = None
    note: str = ""


def choose_output(json_: bool, lines: bool, format_: str | None) -> Output:
    """--json / --format json: NDJSON; --format TEMPLATE: its lines; --lines: lines; else NDJSON
    when stdout is not a terminal, lines when the terminal cannot hold the table, else the table.
    A template is checked here, before anything connects."""
    ndjson = format_ is not None and format_.strip().lower() in NDJSON_FORMATS
    template = format_ is not None and not ndjson
    if json_ and template:
        raise UsageError("--json and --format TEMPLATE give different outputs: choose one")
    as_json = json_ or ndjson
    if as_json and lines:
        raise UsageError("--lines and NDJSON (--json, --format json) give different outputs: choose one")
    if as_json:
        return Output("json")
    if format_ is not None and template:
        return Output("lines", Template(format_))
    if lines:
        return Output("lines")
    if not sys.stdout.isatty():
        return Output("json")
    import shutil

    columns, rows = shutil.get_terminal_size()
    if columns < SMALLEST_TABLE[0] or rows < SMALLEST_TABLE[1]:
        note = f"a {columns}x{rows} terminal cannot hold the live table: one line per message (--lines)"
        return Output("lines", note=note)
    return Output("table")
