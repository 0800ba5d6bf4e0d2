"""What the console keeps open between lines: its named connections (each a profile or target,
its client, simulator and subscription), the current one, the feed lines above the prompt. Lines
are parsed by the CLI's own click commands, so a console line and a command line mean the same
thing; a verb's --help, error or Ctrl-C never ends the console."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import tempfile
from collections.abc import Callable
from typing import Any

import typer

from fieldctl.cli.console.connection import Connection
from fieldctl.cli.framework import bad_values
from fieldctl.cli.framework.common import ProfileOptions, read_data, rtt_text, wait_while_running
from fieldctl.cli.framework.escape import stderr_line, visible
from fieldctl.cli.framework.protocol_options import GIVEN, Given
from fieldctl.cli.framework.vocabulary import check_command
from fieldctl.cli.roles.verbs import CONSOLE_VERBS, ROLE_VERBS, commands, console_usage
from fieldctl.cli.views.stream import Filters
from fieldctl.profiles import available_profiles
from fieldctl.profiles.schema import did_you_mean
from fieldctl.protocols.core.errors import FieldctlError, RemoteFailure, Timeout, UsageError
from fieldctl.protocols.core.redact import scrub_value
from fieldctl.protocols.sdk.contract import BaseDriver, ClientSession, CommandOutcome

#: The console's own verbs: how a line of each reads, and what it does (`help`, the completion menu).
OWN_VERBS = {
    "simulate": ("simulate", "run a simulator here and talk to it"),
    "connect": ("connect NAME [PROFILE]", "open a named connection and use it"),
    "use": ("use NAME", "switch connection (or connect a profile)"),
    "ls": ("ls", "the connections; * marks the current one"),
    "disconnect": ("disconnect [NAME]", "close a connection (default: the current one)"),
    "status": ("status", "the toolbar's text, as a line"),
    "clear": ("clear", "clear the screen"),
    "help": ("help [VERB]", "the verbs, or one verb's usage and options"),
    "exit": ("exit", "leave (quit, Ctrl-D); Ctrl-C stops a verb"),
    "quit": ("quit", "leave the console"),
}
#: The verbs of the table (the same arguments as the subcommand; the profile may be omitted),
#: then the console's own.
LINE_VERBS = (*CONSOLE_VERBS, *OWN_VERBS)
HELP = "\n".join(
    [line for verb in CONSOLE_VERBS for line in ROLE_VERBS[verb].console]
    + [f"{usage:<34} {text}" for verb, (usage, text) in OWN_VERBS.items() if verb != "quit"]
    + ["VERB --help                        a verb's usage and options"]
)

Print = Callable[[str], None]


def _exit_code(exc: BaseException) -> int:
    return int(exc.exit_code) if isinstance(exc, FieldctlError) else 1


def _talks_commands(client: BaseDriver) -> bool:
    """Whether the profile's client side sends commands (else a simulator's side does)."""
    return "command" in client.roles


class Session:
    """`out` gets what the lines show, `err` their errors (the same callable on a terminal),
    `clear` clears the screen (nothing to clear in a script)."""

    def __init__(
        self,
        start: ProfileOptions,
        simulate: bool,
        out: Print,
        err: Print | None = None,
        clear: Callable[[], None] | None = None,
    ) -> None:
        self.out = out
        self.err = err or out
        self.clear = clear or (lambda: None)
        self.start_options = start
        assert start.name is not None  # the console names its first profile or target
        self.connections: dict[str, Connection] = {}
        self.current_name: str | None = None
        self._open(start.name, start)
        self.want_simulator = simulate
        #: The exit code of the first failure (a line or a background task); 0 while none.
        self.code = 0

    # -- output ------------------------------------------------------------------------------

    def _warn(self, text: str) -> None:
        self.err(f"warning: {stderr_line(text)}")

    def _error(self, text: str, code: int) -> None:
        self.code = self.code or code
        self.err(f"error: {stderr_line(text)}")

    @property
    def current(self) -> Connection:
        if self.current_name is None:
            raise UsageError("no connection: connect NAME PROFILE")
        return self.connections[self.current_name]

    @property
    def prompt(self) -> str:
        """`autotrainer> `, `autotrainer@dev1> `: the current connection's."""
        return f"{self.connections[self.current_name].label if self.current_name else 'fieldctl'}> "

    def toolbar(self) -> str:
        if self.current_name is None:
            return " no connection │ connect NAME PROFILE"
        conn = self.current
        feed = "on" if conn.feed_on else "off"
        sim = " │ simulator" if conn.simulator is not None else ""
        others = len(self.connections) - 1
        more = f" │ +{others} connection{'s' * (others > 1)}" if others else ""
        # The name and the states first: on a narrow terminal the links' details are cut, not they.
        return f" {conn.label} │ feed {feed}{sim}{more} │ {conn.link_state()}{conn.heartbeat_state()}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.want_simulator:
            await self.run_line("simulate")

    async def close(self) -> None:
        for conn in self.connections.values():
            await conn.close()

    def _open(self, name: str, source: ProfileOptions) -> Connection:
        conn = Connection(
            name, source, self.out, self._warn, lambda: self._mark(name), lambda exc: self._failed(name, exc)
        )
        self.connections[name] = conn
        self.current_name = name
        return conn

    def _mark(self, name: str) -> str:
        """A line names its connection once there are several."""
        return name if len(self.connections) > 1 else ""

    def _failed(self, name: str, exc: BaseException) -> None:
        """A connection's subscription or simulator ended with an error: named once there are several."""
        mark = self._mark(name)
        self._error(f"{mark}: {exc}" if mark else str(exc), _exit_code(exc))

    def _source(self, name: str) -> ProfileOptions:
        """What a connection to profile or target `name` loads: the console's first one with its
        --endpoint and --set, any other with the console's --host and --profile-file only."""
        start = self.start_options
        if name == start.name:
            return start
        return ProfileOptions(name, start.host, None, None, start.files)

    # -- one line ----------------------------------------------------------------------------

    async def run_line(self, line: str) -> bool:
        """Runs one line; False means leave. Errors are shown inline, never raised (nor a verb's
        --help, nor click's exit); the first one's exit code stays in `code`."""
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
            await self._run(verb, args)
        except FieldctlError as exc:
            self._error(str(exc), int(exc.exit_code))
        except typer.TyperException as exc:  # a click usage error, shown like the CLI shows it
            self._error(f"{verb}: {bad_values.message(exc)}", 2)
        except (typer.Exit, typer.Abort, SystemExit) as exc:  # what would end a command line ends the verb only
            code = getattr(exc, "exit_code", getattr(exc, "code", 1))
            if code:
                self._error(f"{verb}: ended with exit code {code}", 2)
        except Exception as exc:  # a bug in one verb: that line's error, and the console goes on
            if os.environ.get("FIELDCTL_DEBUG"):
                raise
            self._error(f"{verb}: internal error: {type(exc).__name__}: {exc} (FIELDCTL_DEBUG=1 shows where)", 1)
        return True

    async def _run(self, verb: str, args: list[str]) -> None:
        if verb in CONSOLE_VERBS and ("--help" in args or "-h" in args):
            self.out(self._usage(verb))
        elif verb == "help":
            self.out(self._usage(args[0]) if args else HELP)
        elif verb == "status":
            self.out(self.toolbar().strip())
        elif verb == "clear":
            self.clear()
        elif verb in ("connect", "use", "ls", "disconnect", "simulate"):
            await getattr(self, f"_{verb}")(args)
        elif verb == "listen" and args in (["off"], ["on"]) and (args == ["off"] or self.current.subscribed):
            self.current.feed_on = args == ["on"]
        elif verb in CONSOLE_VERBS:
            params, given = self._parse(verb, [] if args == ["on"] else args)
            await getattr(self, f"_{verb}")(params, given.options(verb, self.current.profile))
        else:
            raise UsageError(f"unknown verb {verb!r}{did_you_mean(verb, LINE_VERBS) or ' (try: help)'}")

    def _usage(self, verb: str) -> str:
        if verb in CONSOLE_VERBS:
            protocol = self.connections[self.current_name].profile.protocol if self.current_name else None
            return console_usage(verb, protocol)
        if verb in OWN_VERBS:
            return "{:<34} {}".format(*OWN_VERBS[verb])
        raise UsageError(f"help: no verb {verb!r}{did_you_mean(verb, LINE_VERBS) or ' (try: help)'}")

    def _parse(self, verb: str, args: list[str]) -> tuple[dict[str, Any], Given]:
        """The subcommand's own click command, built once per process; the current connection's
        profile is implied when not named."""
        source = self.current.target
        if not args or args[0] not in available_profiles(self.start_options.files):
            args = [source, *args]
        ctx = commands()[verb].make_context(verb, list(args))
        if ctx.params.get("profile") != source:
            named = ctx.params["profile"]
            raise UsageError(f"this connection uses {source}; say `connect NAME {named}` or `use NAME` first")
        if any(ctx.params.get(name) for name in ("host", "endpoint", "set_", "profile_file")):
            raise UsageError("overrides belong to the console's start: fieldctl console PROFILE --endpoint ...")
        return ctx.params, ctx.meta[GIVEN]

    # -- connections -------------------------------------------------------------------------

    async def _connect(self, args: list[str]) -> None:
        if not 1 <= len(args) <= 2:
            raise UsageError("connect NAME [PROFILE]")
        from fieldctl.profiles.targets import check_name

        name = check_name(args[0], "connection name")
        if name in self.connections:
            raise UsageError(f"connection {name!r} is open (use {name}, or disconnect {name} first)")
        if len(args) == 2:
            source = self._source(args[1])
        elif self._known(name):
            source = self._source(name)
        else:
            source = self.current.source  # another connection like the current one
        conn = self._open(name, source)
        self.out(f"connected {name} ({conn.profile.description}); using it")

    def _known(self, name: str) -> bool:
        from fieldctl.profiles import ProfileError
        from fieldctl.profiles.targets import saved_targets

        try:
            return name in available_profiles(self.start_options.files) or name in saved_targets()
        except ProfileError:
            return False

    async def _use(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("use NAME")
        name = args[0]
        if name in self.connections:
            self.current_name = name
            self.out(f"using {self.current.label} ({self.current.profile.description})")
            return
        if not self._known(name):
            hint = did_you_mean(name, self.connections) or f" (connections: {', '.join(self.connections) or 'none'})"
            raise UsageError(f"no connection {name!r}{hint}")
        conn = self._open(name, self._source(name))  # a profile or target: connected under its own name
        self.out(f"using {name} ({conn.profile.description})")

    async def _ls(self, args: list[str]) -> None:
        if args:
            raise UsageError("ls")
        rows = [
            (
                "*" if name == self.current_name else " ",
                name,
                conn.target,
                conn.link_state(),
                f"feed {'on' if conn.feed_on else 'off'}" + (" · simulator" if conn.simulator else ""),
            )
            for name, conn in self.connections.items()
        ]
        if not rows:
            self.out("no connections (connect NAME PROFILE)")
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)] if rows else []
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            self.out(visible("  ".join([*cells, row[-1]])))

    async def _disconnect(self, args: list[str]) -> None:
        if len(args) > 1:
            raise UsageError("disconnect [NAME]")
        name = args[0] if args else self.current.name
        if name not in self.connections:
            hint = did_you_mean(name, self.connections) or f" (connections: {', '.join(self.connections) or 'none'})"
            raise UsageError(f"no connection {name!r}{hint}")
        await self.connections.pop(name).close()
        if self.current_name == name:
            self.current_name = next(iter(self.connections), None)
        after = f"; using {self.current.label}" if self.current_name else "; connect NAME PROFILE to go on"
        self.out(f"disconnected {name}{after}")

    async def _simulate(self, args: list[str]) -> None:
        """A simulator of the connection's profile on private endpoints (as `demo` runs one), and
        the connection pointed at it: commands reach it, its events arrive once, through the client."""
        from fieldctl.cli.roles.private_run import CONTROL, private_simulator

        if args:
            raise UsageError("simulate")
        conn = self.current
        if conn.simulator is not None:
            raise UsageError(f"{conn.name} already talks to its simulator")
        bound: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        source = conn.source

        async def run() -> None:
            with tempfile.TemporaryDirectory(prefix="fieldctl-console-") as folder:
                async with private_simulator(
                    source.load(), folder, control=os.path.join(folder, "control.sock")
                ) as urls:
                    bound.set_result(urls)
                    await asyncio.get_running_loop().create_future()  # until the connection closes

        simulator = conn.simulator = conn.spawn(run())
        try:
            await wait_while_running(simulator, bound, None)  # bounded: private_simulator waits BOUND_WITHIN_S
        finally:
            if not bound.done():  # it failed (its error is already reported), or Ctrl-C: none runs
                simulator.cancel()
                await asyncio.gather(simulator, return_exceptions=True)
                conn.simulator = None
        if conn.simulator is None:
            return
        urls = dict(bound.result())
        conn.control = urls.pop(CONTROL)
        endpoints = [*source.endpoints, *(f"{key}={url}" for key, url in urls.items())]
        await conn.repoint(ProfileOptions(source.name, source.host, endpoints, source.sets, source.files).load())
        self.out(f"simulating {conn.profile.name} on {', '.join(urls.values())}; {conn.name} talks to it")

    # -- the role verbs ----------------------------------------------------------------------

    async def _listen(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        """Every argument is checked before anything changes: a bad line leaves the feed as it was;
        a counted listen cancelled (Ctrl-C) leaves the feed as it found it."""
        conn = self.current
        if "listen" not in conn.client.roles:  # Unsupported now, not in a task closed unseen
            await conn.client.listen(conn.client.context(conn.emit))
        filters = Filters(params.get("filter_"))
        count, timeout = params.get("count"), params.get("timeout")
        found = conn.feed_on
        if conn.subscribed and options != conn.listen_options:
            await conn.unsubscribe()  # other protocol options: a new subscription
        conn.filters, conn.feed_on = filters, True
        if not conn.subscribed:
            conn.subscribe(options)
        if count is not None:
            try:
                await self._count(conn, count, timeout)
            except asyncio.CancelledError:
                conn.feed_on = found
                raise

    async def _count(self, conn: Connection, count: int, timeout: float | None) -> None:
        """Until `count` well-formed messages that pass the filters have been shown."""
        left, done = [count], asyncio.get_running_loop().create_future()
        conn.counting = (left, done)
        try:
            assert conn.subscription is not None
            shown = await wait_while_running(conn.subscription, done, timeout)
        finally:
            conn.counting = None
        if shown:
            return
        got = f"received {count - left[0]} of {count} messages"
        if conn.subscription.done():
            if conn.subscription.cancelled() or conn.subscription.exception() is None:
                raise RemoteFailure(f"the subscription ended: {got}")
            return  # its error is already reported (Connection._ended)
        conn.feed_on = False
        raise Timeout(f"{got} within {timeout:g} s")

    async def _command(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        conn = self.current
        if params.get("name") is None:
            raise UsageError("command NAME [--data JSON]")
        data = read_data(params.get("data"))
        check_command(conn.profile, params["name"], data, params["force"])
        timeout = params.get("timeout") or float(conn.profile.setting("timeouts.command_s", 5.0))
        if conn.control is not None and not _talks_commands(conn.client):  # the simulated side sends them
            from fieldctl.protocols.runtime.control import command_message, request

            msg = command_message(conn.profile.name, params["name"], data)
            self._conclude(await request(conn.control, "command", msg, conn.show_simulated, timeout))
            return
        if conn.commands is None:
            conn.commands = conn.client.session(conn.client.context(conn.show))
        session: ClientSession = conn.commands
        outcome = await session.command(
            params["name"], data, timeout=timeout, wait=not params.get("no_wait"), options=options
        )
        self._conclude(outcome)

    async def _publish(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        conn = self.current
        if params.get("kind") is None:
            raise UsageError("publish KIND [--data JSON]")
        msg = conn.client.publication(params["kind"], read_data(params.get("data")))
        wait = params.get("wait") or 10.0
        if conn.control is not None:  # the simulator publishes it, to this connection among others
            from fieldctl.protocols.runtime.control import request

            self._conclude(await request(conn.control, "publish", msg, conn.show_simulated, wait))
            return
        await conn.client.publish(conn.client.context(conn.show, options), [msg], wait_s=wait, realtime=False)

    async def _probe(self, params: dict[str, Any], options: dict[str, Any]) -> None:
        from fieldctl.cli.roles.probe import Format, render
        from fieldctl.protocols.sdk.probing import probed, thresholds

        conn = self.current
        warn, crit = thresholds(conn.profile, params.get("warn"), params.get("crit"))
        report = await probed(conn.client, warn, crit, options)  # as probe runs it: bounded, always a verdict
        self.out(render(report, conn.target, Format.text))

    def _conclude(self, outcome: CommandOutcome) -> None:
        if outcome.result is not None:  # ASCII: every control character escaped
            self.out(json.dumps(scrub_value(outcome.result), indent=2, default=repr))
        self.out(("ok: " if outcome.ok else "FAILED: ") + stderr_line(outcome.summary) + rtt_text(outcome.rtt_s))
        if not outcome.ok:
            self.code = self.code or int(RemoteFailure.exit_code)
