"""Where a stream of Messages goes (filters, NDJSON, --record, the live view) and how a
streaming subcommand ends (--count, --timeout, --idle, --duration, a signal)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Iterator
from typing import IO, TYPE_CHECKING, Any, ClassVar

from fieldctl.protocols.core.errors import Timeout, UsageError
from fieldctl.protocols.core.message import LINK
from fieldctl.protocols.core.redact import scrub

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message
    from fieldctl.protocols.sdk.contract import BaseDriver, Stats


class Filters:
    """--filter key=value: OR within a key, AND across keys."""

    KEYS: ClassVar[tuple[str, ...]] = ("channel", "kind", "direction", "endpoint")

    def __init__(self, specs: list[str] | None) -> None:
        self.wanted: dict[str, set[str]] = {}
        for spec in specs or []:
            key, sep, value = spec.partition("=")
            if not sep or key not in self.KEYS or not value:
                raise UsageError(f"--filter {spec!r}: expected one of {', '.join(self.KEYS)} = VALUE")
            self.wanted.setdefault(key, set()).add(value)

    @property
    def channels(self) -> set[str] | None:
        return self.wanted.get("channel")

    def match(self, msg: Message) -> bool:
        if not self.wanted:
            return True
        return all(str(getattr(msg, key)) in values for key, values in self.wanted.items())


class Sink:
    """The Emit callback: cheap and synchronous, so ingest never waits for rendering. The one
    place a stream's messages are scrubbed of secrets before NDJSON, --record and the view.

    --count counts `matched`: well-formed messages that pass the filters. Link lines are always
    shown and never counted; a malformed frame is always shown and counted as malformed (its
    channel is a guess from bytes that did not decode), but never matches a filter or --count.

    A fleet (several targets into one sink) gives each message with its target (`tagged`): its
    NDJSON line then names the target first, and a view may read `target` while it is shown."""

    def __init__(
        self,
        stats: Stats,
        *,
        out: IO[str] | None = None,
        record: IO[str] | None = None,
        view: Any = None,
        filters: Filters | None = None,
        count: int | None = None,
    ) -> None:
        self.stats, self.out, self.record, self.view = stats, out, record, view
        self.filters = filters or Filters(None)
        self.count = count
        self.target: str | None = None
        self._tags: dict[str, str] = {}
        self.matched = 0
        self.done = asyncio.Event()
        #: When the last message (not a link line) was shown: what --idle measures silence from.
        self.last_activity = time.monotonic()
        self._flush_scheduled = False

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
        msg = scrub(msg)
        if self.out is not None or self.record is not None:
            line = self._line(msg)
            if self.record is not None:
                self.record.write(line)
            if self.out is not None:
                try:
                    self.out.write(line)
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
) -> Iterator[Sink]:
    """A Sink that feeds NDJSON on stdout or the live table, plus the --record file. A simulator's
    table shows the heartbeats it sends; a simulator in the background draws no table at all."""
    record_file = open_record(record)
    view: Any = None
    live: Any = contextlib.nullcontext()
    if not as_json:
        from fieldctl.cli.views.background import Announcer, in_background

        if simulator and in_background():
            view = Announcer(profile, title)
        else:
            from fieldctl.cli.views.live_view import LiveView

            view = LiveView(profile, driver.stats, driver.summarize, title, beats_sent=simulator, styles=driver.styles)
            live = view.live()
    sink = Sink(
        driver.stats, out=sys.stdout if as_json else None, record=record_file, view=view, filters=filters, count=count
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
