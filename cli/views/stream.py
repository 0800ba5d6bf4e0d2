"""Where a stream of Messages goes (filters, NDJSON, --record, the live view) and how a
streaming subcommand ends (--count, --timeout, --idle, --duration, a signal)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import io
import json
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, ClassVar

from fieldctl.cli.framework.vocabulary import DIRECTIONS, FILTER_KEYS
from fieldctl.cli.views.stats import Stats
from fieldctl.protocols.core.errors import Timeout, UsageError
from fieldctl.protocols.core.message import LINK
from fieldctl.protocols.core.redact import scrub

if TYPE_CHECKING:
    from fieldctl.cli.views.lines import Output
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message
    from fieldctl.protocols.sdk.contract import BaseDriver


#: What makes a --filter value a glob (fnmatch): `kind=trial*`, `channel=event|*`.
GLOB = re.compile(r"[*?\[]")


class Filters:
    """--filter key=value: OR within a key, AND across keys; a value may be a glob (fnmatch,
    case-sensitive: `kind=trial*`)."""

    KEYS: ClassVar[tuple[str, ...]] = FILTER_KEYS

    def __init__(self, specs: list[str] | None) -> None:
        self.wanted: dict[str, set[str]] = {}
        for spec in specs or []:
            key, sep, value = spec.partition("=")
            if not sep or key not in self.KEYS or not value:
                raise UsageError(f"--filter {spec!r}: expected one of {', '.join(self.KEYS)} = VALUE")
            self.wanted.setdefault(key, set()).add(value)

    @functools.cached_property
    def _tests(self) -> list[tuple[str, set[str], Callable[[str], Any] | None]]:
        """Per key: its exact values and one regex for its globs (or None). Built at the first
        match, from `wanted` as it is then (a subclass may take keys of its own out of it)."""
        tests: list[tuple[str, set[str], Callable[[str], Any] | None]] = []
        for key, values in self.wanted.items():
            globs = [value for value in values if GLOB.search(value)]
            pattern = re.compile("|".join(fnmatch.translate(glob) for glob in globs)).match if globs else None
            tests.append((key, values - set(globs), pattern))
        return tests

    @property
    def channels(self) -> set[str] | None:
        """The channels asked for by name (a hint for subscribing); None when any may pass."""
        values = self.wanted.get("channel")
        return None if values is None or any(GLOB.search(value) for value in values) else values

    def match(self, msg: Message) -> bool:
        for key, exact, pattern in self._tests:
            value = str(getattr(msg, key))
            if value not in exact and (pattern is None or not pattern(value)):
                return False
        return True

    def check(self, declared: Callable[[str], frozenset[str] | None], profile: str) -> None:
        """Every value must be one the profile can produce (`declared`: the driver's vocabulary
        of a key, None where the other side names its own), and every glob must match one: a
        usage error with a did-you-mean, before anything connects. A number passes: a code the
        profile has no name for is shown as its number (Message.kind may be an int)."""
        from fieldctl.profiles.schema import did_you_mean

        vocabularies = {key: declared(key) for key in ("channel", "kind")}
        vocabularies["direction"] = frozenset(DIRECTIONS)
        for key, values in self.wanted.items():
            known = vocabularies.get(key)
            if known is None:
                continue
            for value in sorted(values):
                if value.isdigit():
                    continue
                if GLOB.search(value):
                    if not fnmatch.filter(known, value):
                        raise UsageError(f"--filter {key}={value}: matches no {key} of {profile} ({_some(known)})")
                elif value not in known:
                    hint = did_you_mean(value, known) or f" ({_some(known)})"
                    raise UsageError(f"--filter {key}={value}: {profile} has no {key} {value!r}{hint}")


def _some(names: frozenset[str], shown: int = 8) -> str:
    """A few of a vocabulary's names, for a message that must stay one line."""
    first = sorted(names)[:shown]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return "known: " + ", ".join(first) + more


class Sink:
    """The Emit callback: cheap and synchronous, so ingest never waits for rendering. The one
    place a stream's messages are scrubbed of secrets before NDJSON, --record and the view.

    --count counts `matched`: well-formed messages that pass the filters. Link lines are always
    shown and never counted; a malformed frame is always shown and counted as malformed (its
    channel is a guess from bytes that did not decode), but never matches a filter or --count.

    A fleet (several targets into one sink) gives each message with its target (`tagged`): its
    NDJSON line then names the target first, and a view may read `target` while it is shown.

    `lines` (--lines, --format TEMPLATE) writes each message's line on `out` instead of its NDJSON
    (None: nothing on `out` for it); --record stays NDJSON."""

    def __init__(
        self,
        stats: Stats | None = None,
        *,
        out: IO[str] | None = None,
        record: IO[str] | None = None,
        view: Any = None,
        filters: Filters | None = None,
        count: int | None = None,
        lines: Callable[[Message, str | None], str | None] | None = None,
    ) -> None:
        self.stats = stats or Stats()
        self.out, self.record, self.view, self.lines = out, record, view, lines
        self.filters = filters or Filters(None)
        self.count = count
        self.target: str | None = None
        self._tags: dict[str, str] = {}
        self.matched = 0
        self.done = asyncio.Event()
        #: When the last message (not a link line) was shown: what --idle measures silence from.
        self.last_activity = time.monotonic()
        self._flush_scheduled = False

    def duplicate(self, msg: Message) -> None:
        """A role heard `msg` again and did not pass it on: counted, not shown."""
        self.stats.duplicates += 1

    def __call__(self, msg: Message) -> None:
        if self.done.is_set():
            return  # after --count is reached the rest of a batch is not shown
        if msg.channel != LINK:
            if not msg.error and not self.filters.match(msg):
                return
            self.last_activity = time.monotonic()
            stats = self.stats
            if msg.direction == "in":
                stats.received += 1
            else:
                stats.sent += 1
            if msg.error:
                stats.malformed += 1
            else:
                self.matched += 1
        if msg.fault is not None:
            self.stats.faults += 1
        msg = scrub(msg)
        if self.out is not None or self.record is not None:
            line = self._line(msg) if self.record is not None or self.lines is None else None
            if self.record is not None and line is not None:
                self.record.write(line)
            if self.out is not None:
                shown = line if self.lines is None else self.lines(msg, self.target)
                try:
                    if shown is not None:
                        self.out.write(shown)
                except BrokenPipeError:
                    self._reader_gone()
            if not self._flush_scheduled:
                # One flush per burst: after the current batch of frames, not after each line.
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)
        if self.view is not None:
            self.view.add(msg)
        if self.count is not None and self.matched >= self.count:
            self.done.set()

    def tagged(self, target: str, msg: Message) -> None:
        """A fleet's message, shown as any other, under the name of the target it came from."""
        self.target = target
        try:
            self(msg)
        finally:
            self.target = None

    def _line(self, msg: Message) -> str:
        line = msg.to_json() + "\n"
        if self.target is None:
            return line
        tag = self._tags.get(self.target)
        if tag is None:
            tag = self._tags[self.target] = '{"target":' + json.dumps(self.target) + ","
        return tag + line[1:]

    def flush(self) -> None:
        self._flush_scheduled = False
        if self.record is not None and not self.record.closed:
            self.record.flush()
        if self.out is not None:
            try:
                self.out.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        """A reader that went away (`listen --json | head`) ends the stream like --count does."""
        self.out = None
        self.done.set()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event that SIGINT or SIGTERM sets while inside. On the way out, a SIGTERM that races the
    shutdown must not turn a clean exit into death by signal (the shutdown is bounded; SIGINT
    still interrupts it)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


async def run_stream(
    work: Awaitable[object],
    sink: Sink,
    *,
    timeout: float | None = None,
    duration: float | None = None,
    idle: float | None = None,
) -> str:
    """Runs `work` until it ends or a stop condition holds; returns why it stopped:
    'count', 'duration', 'signal', 'finished', 'timeout' or 'idle'."""
    try:
        with stop_on_signals() as stop:
            return await _until_stopped(work, sink, stop, timeout, duration, idle)
    finally:
        sink.flush()


async def _until_stopped(
    work: Awaitable[object],
    sink: Sink,
    stop: asyncio.Event,
    timeout: float | None,
    duration: float | None,
    idle: float | None,
) -> str:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    waiters = [loop.create_task(sink.done.wait()), loop.create_task(stop.wait())]
    start = time.monotonic()

    def first_deadline() -> tuple[str, float] | None:
        """Taken afresh after every wake-up: a message during the wait moves the idle deadline."""
        deadlines = []
        if timeout is not None:
            deadlines.append(("timeout", start + timeout))
        if duration is not None:
            deadlines.append(("duration", start + duration))
        if idle is not None:
            deadlines.append(("idle", sink.last_activity + idle))
        return min(deadlines, key=lambda item: item[1]) if deadlines else None

    reason = "finished"
    try:
        while True:
            first = first_deadline()
            wait_s = max(0.0, first[1] - time.monotonic()) if first else None
            done, _ = await asyncio.wait([task, *waiters], timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # a role's error ends the command with its exit code
                break
            if waiters[0] in done:
                reason = "count"
                break
            if waiters[1] in done:
                reason = "signal"
                break
            first = first_deadline()
            if first is not None and time.monotonic() >= first[1]:
                reason = first[0]
                break
    finally:
        for pending in (task, *waiters):
            pending.cancel()
        await asyncio.gather(task, *waiters, return_exceptions=True)
    return reason


def open_record(path: str | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--record {path}: cannot open: {exc.strerror}") from None


@contextlib.contextmanager
def shown(
    profile: Profile,
    driver: BaseDriver,
    title: str,
    *,
    as_json: bool,
    record: str | None = None,
    filters: Filters | None = None,
    count: int | None = None,
    simulator: bool = False,
    output: Output | None = None,
) -> Iterator[Sink]:
    """A Sink that feeds NDJSON on stdout, lines (`output`: --lines, --format) or the live table,
    plus the --record file. A simulator's table shows the heartbeats it sends; a simulator in the
    background draws no table at all, nor lines unless asked for them."""
    from fieldctl.cli.views.background import Announcer, in_background

    record_file = open_record(record)
    stats = Stats()
    view: Any = None
    live: Any = contextlib.nullcontext()
    lines = None
    # A simulator started with `&`: neither a table nor lines it was not asked for (a terminal too
    # small) may land in the foreground program's screen.
    quiet = simulator and not as_json and in_background()
    if output is not None and output.mode == "lines" and not (quiet and output.note):
        from fieldctl.cli.views.lines import LineWriter, color_wanted

        if output.note:
            sys.stderr.write(output.note + "\n")
        lines = LineWriter(driver.summarize, driver.styles, output.template, color=color_wanted())
        if isinstance(sys.stdout, io.TextIOWrapper):
            # A terminal's stdout writes at each newline: a system call per line. The Sink flushes
            # once per burst instead, so lines still appear as they arrive.
            sys.stdout.reconfigure(line_buffering=False)
    elif not as_json:
        if quiet:
            view = Announcer(profile, title)
        else:
            from fieldctl.cli.views.live_view import LiveView

            view = LiveView(
                profile,
                stats,
                driver.summarize,
                title,
                beats_sent=simulator,
                styles=driver.styles,
                hint=output is not None,
            )
            live = view.live()
    sink = Sink(
        stats,
        out=sys.stdout if as_json or lines is not None else None,
        record=record_file,
        view=view,
        filters=filters,
        count=count,
        lines=lines,
    )
    try:
        with live:
            yield sink
    finally:
        if record_file is not None:
            record_file.close()


def stream_ended(
    role: str, reason: str, sink: Sink, count: int | None, timeout: float | None, idle: float | None
) -> None:
    """Why a stream stopped, as its exit: 0, or Timeout (4) for --timeout and --idle."""
    if reason == "timeout" and count is not None:
        raise Timeout(f"received {sink.matched} of {count} messages within {timeout:g} s")
    if reason == "timeout":
        raise Timeout(f"{role} ran {timeout:g} s")
    if reason == "idle":
        raise Timeout(f"no message for {idle:g} s (received {sink.matched})")
