"""One device the console holds under a name: its profile or target, client, command session,
subscription and feed, and the simulator it may run for itself. Several live side by side; the
console's verbs act on the current one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fieldctl.cli.framework.common import ProfileOptions
from fieldctl.cli.framework.escape import visible
from fieldctl.cli.views.stream import Filters
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.core.redact import scrub
from fieldctl.protocols.runtime.heartbeat import HeartbeatWatch
from fieldctl.protocols.runtime.registry import driver_for
from fieldctl.protocols.sdk.contract import BaseDriver, ClientSession
from fieldctl.protocols.transport import together

if TYPE_CHECKING:
    from fieldctl.profiles import Profile

Print = Callable[[str], None]
#: What marks a line the connection's own simulator caused (the client's lines have none).
SIM = "sim"


def render(msg: Message, summarize: Callable[[Message], str], mark: str = "") -> str:
    """One line above the prompt: known secrets masked, every control character escaped; `mark`
    says whose it is (a connection's name, `sim`) when that is not plain."""
    msg = scrub(msg)
    clock = time.strftime("%H:%M:%S", time.localtime(msg.ts)) + f".{int(msg.ts * 1000) % 1000:03d}"
    arrow = "←" if msg.direction == "in" else "→"
    ident = "" if msg.id is None else f" #{msg.id}"
    detail = f"✗ {msg.error}" if msg.error else summarize(msg)
    side = f"[{mark}] " if mark else ""
    return visible(f"{clock} {side}{arrow} {msg.channel:<14} {msg.kind}{ident}  {detail}".rstrip())


class Connection:
    """`source` names what it talks to (a profile or saved target, with the console's overrides
    when it is the console's first); `out` shows a line, `mark` says what marks this connection's
    lines (empty while it is the only one), `failed` reports a background task's end."""

    def __init__(
        self,
        name: str,
        source: ProfileOptions,
        out: Print,
        warn: Print,
        mark: Callable[[], str],
        failed: Callable[[BaseException], None],
    ) -> None:
        assert source.name is not None  # a connection is to a named profile or target
        self.name, self.source, self.target = name, source, source.name
        self.out, self.warn, self.mark, self.failed = out, warn, mark, failed
        self.profile: Profile = source.load()
        self.client: BaseDriver = driver_for(self.profile, warn)
        #: The client session: opened by the first command, kept until the connection closes.
        self.commands: ClientSession | None = None
        self.tasks: list[asyncio.Future[Any]] = []
        self.subscription: asyncio.Future[Any] | None = None
        #: The simulator this connection runs and talks to, and its control socket (`simulate`).
        self.simulator: asyncio.Future[Any] | None = None
        self.control: str | None = None
        self.feed_on = False
        self.filters = Filters(None)
        self.listen_options: dict[str, Any] = {}
        self.links: dict[str, str] = {}
        self.last_heartbeat: float | None = None
        #: `listen --count N`: how many more messages to show, and who waits for them.
        self.counting: tuple[list[int], asyncio.Future[None]] | None = None

    @property
    def label(self) -> str:
        """`autotrainer`, or `autotrainer@dev1` when its name is not its profile's."""
        return self.target if self.name == self.target else f"{self.target}@{self.name}"

    @property
    def subscribed(self) -> bool:
        return self.subscription is not None and not self.subscription.done()

    # -- what arrives ------------------------------------------------------------------------

    def emit(self, msg: Message) -> None:
        """Every message of the subscription: state for the toolbar, a line if the feed is on."""
        if msg.is_link:
            self.links[msg.endpoint] = str(msg.kind)
        elif msg.channel == self.profile.heartbeat.channel and msg.direction == "in" and not msg.error:
            self.last_heartbeat = time.monotonic()
        if self.feed_on and (msg.is_link or self.filters.match(msg)):
            self.out(render(msg, self.client.summarize, self.mark()))
            if self.counting is not None and not msg.is_link and not msg.error:
                left, done = self.counting
                left[0] -= 1
                if left[0] <= 0 and not done.done():
                    self.feed_on = False  # exactly N shown, as `listen --count N` ends after N
                    done.set_result(None)

    def show(self, msg: Message) -> None:
        """What a command or publication of the client caused; its link state for `ls`."""
        if msg.is_link:
            self.links[msg.endpoint] = str(msg.kind)
        else:
            self.out(render(msg, self.client.summarize, self.mark()))

    def show_simulated(self, msg: Message) -> None:
        """What the simulator did when asked (`publish` once `simulate` ran), marked as its side;
        while the feed is on, the client shows it arriving instead: each event once."""
        if not msg.is_link and not self.feed_on:
            mark = self.mark()
            self.out(render(msg, self.client.summarize, f"{mark}/{SIM}" if mark else SIM))

    def link_state(self) -> str:
        links = "  ".join(f"{name}: {state}" for name, state in sorted(self.links.items()))
        return links or ("commands open" if self.commands is not None else "not connected")

    def heartbeat_state(self) -> str:
        if self.profile.heartbeat.channel is None or not self.subscribed:
            return ""
        if self.last_heartbeat is None:
            return " │ heartbeat: none yet"
        age = time.monotonic() - self.last_heartbeat
        stale = " STALE" if age > self.profile.heartbeat.stale_after_s else ""
        return f" │ heartbeat {age:.1f} s{stale}"

    # -- lifecycle ---------------------------------------------------------------------------

    def spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        task.add_done_callback(self._ended)
        self.tasks.append(task)
        return task

    def _ended(self, task: asyncio.Future[Any]) -> None:
        if task is self.subscription:
            self.feed_on = False  # nothing feeds it any more: the toolbar must not say "feed on"
        # A cancelled gather() ends with CancelledError set as its exception, not as cancelled.
        if not task.cancelled() and not isinstance(task.exception(), (asyncio.CancelledError, type(None))):
            exc = task.exception()
            assert exc is not None
            self.failed(exc)

    def subscribe(self, options: dict[str, Any]) -> None:
        watch = HeartbeatWatch(self.profile, self.emit)
        self.listen_options = options
        self.subscription = self.spawn(together(self.client.listen(self.client.context(watch, options)), watch.run()))

    async def unsubscribe(self) -> None:
        if self.subscription is not None:
            self.subscription.cancel()
            await asyncio.gather(self.subscription, return_exceptions=True)
        self.links.clear()
        self.last_heartbeat = None  # the next subscription's, not the closed one's

    async def repoint(self, profile: Profile) -> None:
        """Talks to `profile`'s endpoints from now on (its simulator's): the command session and
        the subscription are opened again there, the feed and filters as they were."""
        subscribed, feed_on = self.subscribed, self.feed_on
        await self._close_commands()
        await self.unsubscribe()
        self.profile, self.client = profile, driver_for(profile, self.warn)
        if subscribed:
            self.subscribe(self.listen_options)
        self.feed_on = feed_on

    async def _close_commands(self) -> None:
        if self.commands is not None:
            commands, self.commands = self.commands, None
            await commands.close()

    async def close(self) -> None:
        """Connections closed and socket files removed: every role cleans up when cancelled."""
        await self._close_commands()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        self.simulator = self.subscription = None
        self.control = None
        self.links.clear()
        self.feed_on = False
        self.last_heartbeat = None
