"""What the console keeps open between lines: the profile, its client and simulator, the
subscription feeding lines above the prompt. Lines are parsed by the CLI's own click commands,
so a console line and a command line mean the same thing."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from typer import TyperException

from fieldctl.cli.framework import bad_values
from fieldctl.cli.framework.common import ProfileOptions, read_data, rtt_text, wait_while_running
from fieldctl.cli.framework.escape import stderr_line, visible
from fieldctl.cli.framework.protocol_options import GIVEN, Given
from fieldctl.cli.roles.verbs import CONSOLE_VERBS, ROLE_VERBS, commands
from fieldctl.cli.views.stream import Filters
from fieldctl.profiles import available_profiles, load_profile
from fieldctl.profiles.schema import did_you_mean
from fieldctl.protocols.core.errors import FieldctlError, RemoteFailure, Timeout, UsageError
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.core.redact import scrub, scrub_value
from fieldctl.protocols.runtime.heartbeat import HeartbeatWatch
from fieldctl.protocols.runtime.registry import driver_for
from fieldctl.protocols.sdk.contract import BaseDriver, ClientSession, CommandOutcome
from fieldctl.protocols.transport import together

if TYPE_CHECKING:
    from fieldctl.profiles import Profile

#: The verbs of the table (the same arguments as the subcommand; the profile may be omitted),
#: then the console's own.
LINE_VERBS = (*CONSOLE_VERBS, "simulate", "use", "status", "help", "exit")
HELP = "\n".join(
    [line for verb in CONSOLE_VERBS for line in ROLE_VERBS[verb].console]
    + [
        "simulate                           start a simulator for this profile in the console",
        "use PROFILE                        switch profile (closes this profile's connections)",
        "status · help · exit (or Ctrl-D)   Ctrl-C cancels a running command",
    ]
)

Print = Callable[[str], None]


def _exit_code(exc: BaseException) -> int:
    return int(exc.exit_code) if isinstance(exc, FieldctlError) else 1


def _render(msg: Message, summarize: Callable[[Message], str]) -> str:
    """One line above the prompt: known secrets masked, every control character escaped."""
    msg = scrub(msg)
    clock = time.strftime("%H:%M:%S", time.localtime(msg.ts)) + f".{int(msg.ts * 1000) % 1000:03d}"
    arrow = "←" if msg.direction == "in" else "→"
    ident = "" if msg.id is None else f" #{msg.id}"
    detail = f"✗ {msg.error}" if msg.error else summarize(msg)
    return visible(f"{clock} {arrow} {msg.channel:<14} {msg.kind}{ident}  {detail}".rstrip())


class Session:
    """`out` gets what the lines show, `err` their errors (the same callable on a terminal)."""

    def __init__(self, start: ProfileOptions, simulate: bool, out: Print, err: Print | None = None) -> None:
        self.out = out
        self.err = err or out
        self.start_options = start
        self.profile: Profile = start.load()
        assert start.name is not None  # load() refuses a missing name
        self.profile_name: str = start.name
        self.client: BaseDriver = driver_for(self.profile, self._warn)
        self.simulator: BaseDriver | None = None
        #: The profile's client session: opened by the first command, kept until `use` or exit.
        self.commands: ClientSession | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.subscription: asyncio.Future[Any] | None = None
        self.feed_on = False
        self.filters = Filters(None)
        self.listen_options: dict[str, Any] = {}
        self.links: dict[str, str] = {}
        self.last_heartbeat: float | None = None
        self.want_simulator = simulate
        #: `listen --count N`: how many more messages to show, and who waits for them.
        self.counting: tuple[list[int], asyncio.Future[None]] | None = None
        #: The exit code of the first failure (a line or a background task); 0 while none.
        self.code = 0

    # -- output ------------------------------------------------------------------------------

    def _warn(self, text: str) -> None:
        self.err(f"warning: {stderr_line(text)}")

    def _error(self, text: str, code: int) -> None:
        self.code = self.code or code
        self.err(f"error: {stderr_line(text)}")

    @property
    def subscribed(self) -> bool:
        return self.subscription is not None and not self.subscription.done()

    def _emit(self, msg: Message) -> None:
        """Every message of a subscription or a simulator: state for the toolbar, a line if shown."""
        if msg.is_link:
            self.links[msg.endpoint] = str(msg.kind)
        elif msg.channel == self.profile.heartbeat.channel and msg.direction == "in" and not msg.error:
            self.last_heartbeat = time.monotonic()
        if self.feed_on and (msg.is_link or self.filters.match(msg)):
            self.out(_render(msg, self.client.summarize))
            if self.counting is not None and not msg.is_link and not msg.error:
                left, done = self.counting
                left[0] -= 1
                if left[0] <= 0 and not done.done():
                    self.feed_on = False  # exactly N shown, as `listen --count N` ends after N
                    done.set_result(None)

    def _show(self, msg: Message) -> None:
        """What a command caused; a simulator's traffic is already on screen while the feed is on."""
        fed = self.feed_on and self.simulator is not None and self.filters.match(msg)
        if not msg.is_link and not fed:
            self.out(_render(msg, self.client.summarize))

    def toolbar(self) -> str:
        links = "  ".join(f"{name}: {state}" for name, state in sorted(self.links.items())) or "not connected"
        if self.profile.heartbeat.channel is None or not self.subscribed:
            beat = ""
        elif self.last_heartbeat is None:
            beat = " │ heartbeat: none yet"
        else:
            age = time.monotonic() - self.last_heartbeat
            stale = " STALE" if age > self.profile.heartbeat.stale_after_s else ""
            beat = f" │ heartbeat {age:.1f} s{stale}"
        feed = "on" if self.feed_on else "off"
        sim = " │ simulator running" if self.simulator is not None else ""
        return f" {self.profile_name} │ {links}{beat} │ feed {feed}{sim}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.want_simulator:
            await self.run_line("simulate")

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        task.add_done_callback(self._report_end)
        self.tasks.append(task)
        return task

    def _report_end(self, task: asyncio.Future[Any]) -> None:
        if task is self.subscription:
            self.feed_on = False  # nothing feeds it any more: the toolbar must not say "feed on"
        # A cancelled gather() ends with CancelledError set as its exception, not as cancelled.
        if not task.cancelled() and not isinstance(task.exception(), (asyncio.CancelledError, type(None))):
            exc = task.exception()
            assert exc is not None
            self._error(str(exc), _exit_code(exc))

    async def close(self) -> None:
        """Connections closed and socket files removed: every role cleans up when cancelled."""
        if self.commands is not None:
            commands, self.commands = self.commands, None
            await commands.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        self.simulator = self.subscription = None
        self.links.clear()
        self.feed_on = False
        self.last_heartbeat = None  # the next subscription's, not the closed one's

    # -- one line ----------------------------------------------------------------------------

    async def run_line(self, line: str) -> bool:
        """Runs one line; False means leave. Errors are shown inline, never raised; the first one's
        exit code stays in `code`."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self._error(str(exc), 2)
            return True
        if not words:
            return True
        verb, args = words[0], words[1:]
        try:
            if verb in ("exit", "quit"):
                return False
            if verb == "help":
                self.out(HELP)
            elif verb == "status":
                self.out(self.toolbar().strip())
            elif verb == "use":
                await self._use(args)
            elif verb == "simulate":
                self._simulate()
            elif verb == "listen" and args == ["off"]:
                self.feed_on = False
            elif verb == "listen" and args == ["on"] and self.subscribed:
                self.feed_on = True
            elif verb in CONSOLE_VERBS:
                params, given = self._parse(verb, [] if args == ["on"] else args)
                await getattr(self, f"_{verb}")(params, given.options(verb, self.profile))
            else:
                self._error(f"unknown verb {verb!r}{did_you_mean(verb, LINE_VERBS) or ' (try: help)'}", 2)
        except FieldctlError as exc:
            self._error(str(exc), int(exc.exit_code))
        except TyperException as exc:  # a click usage error, shown like the CLI shows it
            self._error(f"{verb}: {bad_values.message(exc)}", 2)
        return True

    def _parse(self, verb: str, args: list[str]) -> tuple[dict[str, Any], Given]:
        """The subcommand's own click command, built once per process; the current profile is
        implied when not named."""
        if not args or args[0] not in available_profiles(self.start_options.files):
            args = [self.profile_name, *args]
        ctx = commands()[verb].make_context(verb, list(args))
        if ctx.params.get("profile") != self.profile_name:
            raise UsageError(f"this console uses {self.profile_name}; say `use {ctx.params['profile']}` first")
        if any(ctx.params.get(name) for name in ("host", "endpoint", "set_", "profile_file")):
            raise UsageError("overrides belong to the console's start: fieldctl console PROFILE --endpoint ...")
        return ctx.params, ctx.meta[GIVEN]

    async def _use(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("use PROFILE")
        start = self.start_options  # --host and --profile-file carry over; endpoints and --set are per profile
        if args[0] == start.name:  # back to the first profile: with its --endpoint and --set again
            profile = start.load()
        else:
            profile = load_profile(args[0], profile_files=start.files, host=start.host)
        client = driver_for(profile, self._warn)
        await self.close()
        self.profile_name, self.profile, self.client = args[0], profile, client
        self.filters, self.listen_options = Filters(None), {}
        self.out(f"using {args[0]} ({profile.description})")

    def _simulate(self) -> None:
        if self.simulator is not None:
            raise UsageError("a simulator is already running in this console")
        self.simulator = driver_for(self.profile, self._warn)
        self._spawn(self.simulator.simulate(self._emit, scenario=None, timeline=True, options={}))
        self.out(f"simulating {self.profile_name} on " + ", ".join(self.profile.endpoints.values()))

    async def _listen(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        """Every argument is checked before anything changes: a bad line leaves the feed as it was."""
        if type(self.client).listen is BaseDriver.listen:  # Unsupported now, not in a task closed unseen
            await self.client.listen(self._emit, options={})
        filters = Filters(params.get("filter_"))
        count, timeout = params.get("count"), params.get("timeout")
        if self.subscribed and options != self.listen_options:
            assert self.subscription is not None
            self.subscription.cancel()  # other protocol options: a new subscription
            await asyncio.gather(self.subscription, return_exceptions=True)
        self.filters, self.feed_on = filters, True
        if not self.subscribed:
            watch = HeartbeatWatch(self.profile, self._emit)
            self.listen_options = options
            self.subscription = self._spawn(
                together(self.client.listen(watch, channels=None, options=options), watch.run())
            )
        if count is not None:
            await self._count(count, timeout)

    async def _count(self, count: int, timeout: float | None) -> None:
        """Until `count` well-formed messages that pass the filters have been shown."""
        left, done = [count], asyncio.get_running_loop().create_future()
        self.counting = (left, done)
        try:
            assert self.subscription is not None
            shown = await wait_while_running(self.subscription, done, timeout)
        finally:
            self.counting = None
        if shown:
            return
        got = f"received {count - left[0]} of {count} messages"
        if self.subscription.done():
            if self.subscription.cancelled() or self.subscription.exception() is None:
                raise RemoteFailure(f"the subscription ended: {got}")
            return  # its error is already reported (_report_end)
        self.feed_on = False
        raise Timeout(f"{got} within {timeout:g} s")

    async def _command(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        data = read_data(params.get("data"))
        timeout = params.get("timeout") or float(self.profile.setting("timeouts.command_s", 5.0))
        if self.simulator is not None:
            msg = Message(
                profile=self.profile_name,
                endpoint="console",
                direction="out",
                channel="command",
                kind=params["name"],
                payload=data,
            )
            outcome = await self.simulator.control("command", msg, self._show)
        else:
            if self.commands is None:
                self.commands = self.client.session(self._show, {})
            outcome = await self.commands.command(
                params["name"], data, timeout=timeout, wait=not params.get("no_wait"), options=options
            )
        self._conclude(outcome)

    async def _publish(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        if params.get("kind") is None:
            raise UsageError("publish KIND [--data JSON]")
        msg = self.client.publication(params["kind"], read_data(params.get("data")))
        if self.simulator is not None:
            self._conclude(await self.simulator.control("publish", msg, self._show))
            return
        await self.client.publish([msg], self._show, wait_s=params.get("wait") or 10.0, realtime=False, options=options)

    async def _probe(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        from fieldctl.cli.roles.probe import Format, render
        from fieldctl.protocols.sdk.probing import probed, thresholds

        warn, crit = thresholds(self.profile, params.get("warn"), params.get("crit"))
        report = await probed(self.client, warn, crit, options)  # as probe runs it: bounded, always a verdict
        self.out(render(report, self.profile_name, Format.text))

    def _conclude(self, outcome: CommandOutcome) -> None:
        if outcome.result is not None:  # ASCII: every control character escaped
            self.out(json.dumps(scrub_value(outcome.result), indent=2, default=repr))
        self.out(("ok: " if outcome.ok else "FAILED: ") + stderr_line(outcome.summary) + rtt_text(outcome.rtt_s))
        if not outcome.ok:
            self.code = self.code or int(RemoteFailure.exit_code)
