"""Runs one check file against one profile: the steps in order over one client session, with a
listener running from the start into a bounded inbox, so an `event` step sees what arrived since
the previous step began (a command's own event is not missed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fieldctl.cli.check.checkfile import CheckFile, Step
from fieldctl.cli.check.matching import mismatches
from fieldctl.cli.framework.common import wait_while_running, warn
from fieldctl.protocols.core.errors import ExitCode, FieldctlError, ProtocolFailure
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.core.redact import scrub, scrub_text, scrub_value
from fieldctl.protocols.transport import within

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.sdk.contract import BaseDriver, ClientSession, CommandOutcome

#: Messages the inbox keeps; older ones are dropped (an event step looks back one step only).
INBOX_SIZE = 2000
#: How long the listener may take to say it is ready before the steps start anyway.
READY_WITHIN_S = 10.0
#: Which outcome decides the exit code when steps end differently: cannot connect first.
PRIORITY = (ExitCode.CONNECT, ExitCode.TIMEOUT, ExitCode.PROTOCOL, ExitCode.USAGE, ExitCode.REMOTE_FAILED)


@dataclass
class Result:
    file: str
    suite: str
    step: Step
    status: str  # passed | failed (an expectation) | error (the step could not be done) | skipped
    code: int  # the exit code this result stands for (0 passed or skipped)
    seconds: float = 0.0
    detail: str = ""
    diff: list[str] = field(default_factory=list)
    observed: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "suite": self.suite,
            "step": self.step.number,
            "name": self.step.name,
            "action": self.step.action,
            "status": self.status,
            "exit": self.code,
            "time_s": round(self.seconds, 6),
            "detail": scrub_text(self.detail),
            "diff": [scrub_text(line) for line in self.diff],
            "observed": scrub_value(self.observed),
        }


def exit_code(results: list[Result]) -> int:
    codes = {result.code for result in results}
    return next((int(code) for code in PRIORITY if code in codes), 0)


class Inbox:
    """What the listener received, numbered in arrival order; the oldest dropped past INBOX_SIZE."""

    def __init__(self) -> None:
        self.items: deque[tuple[int, Message]] = deque(maxlen=INBOX_SIZE)
        self.count = 0
        self.changed = asyncio.Event()
        self.used: set[int] = set()  # matched by an event step: a later one looks for another

    def put(self, msg: Message) -> None:
        self.count += 1
        self.items.append((self.count, msg))
        self.changed.set()

    def after(self, mark: int) -> list[tuple[int, Message]]:
        return [(seq, msg) for seq, msg in self.items if seq > mark and seq not in self.used]


def not_run(check: CheckFile, report: Callable[[Result], None], error: FieldctlError | None = None) -> list[Result]:
    """A check that did not run: every step skipped, or, when it could not start, its first step
    carrying the error."""
    results = [
        Result(check.path, check.name, step, "error", error.exit_code, detail=str(error))
        if error is not None and not index
        else Result(check.path, check.name, step, "skipped", 0, detail="not run")
        for index, step in enumerate(check.steps)
    ]
    for result in results:
        report(result)
    return results


def selects(selector: dict[str, Any], msg: Message) -> bool:
    """An event step's selector (channel, kind, endpoint, direction) against a message."""
    return not msg.is_link and all(str(getattr(msg, key)) == str(value) for key, value in selector.items())


class FileRun:
    """One check file, one profile, one driver; `via` is the control socket for the steps that act
    from the simulator's side, when there is one."""

    def __init__(
        self,
        check: CheckFile,
        profile: Profile,
        driver: BaseDriver,
        options: dict[str, dict[str, Any]],
        via: str | None,
        report: Callable[[Result], None],
        stop: Callable[[], bool],
        listener: BaseDriver | None = None,
    ) -> None:
        self.check, self.profile, self.driver, self.options = check, profile, driver, options
        self.listener_driver = listener or driver  # its own when the file gives it its own endpoints
        self.via, self.report, self.stop = via, report, stop
        self.inbox = Inbox()
        self.listener: asyncio.Future[Any] | None = None
        self.session: ClientSession | None = None

    async def run(self) -> list[Result]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._close)
            setup = await self._setup()
            if setup is not None:
                return not_run(self.check, self.report, setup)
            results: list[Result] = []
            mark = 0
            for step in self.check.steps:
                if self.stop():
                    result = self._result(step, "skipped", 0, detail="not run")
                else:
                    started, begun = time.monotonic(), self.inbox.count
                    result = await self._step(step, mark)
                    result.seconds = time.monotonic() - started
                    mark = begun
                results.append(result)
                self.report(result)
        return results

    async def _setup(self) -> FieldctlError | None:
        """Starts the listener and waits for it to be ready; the error that keeps the check from running."""
        if not self.check.listens:
            return None
        ready = asyncio.Event()
        driver = self.listener_driver
        if self.check.ready is not None:
            wanted = self.check.ready
        else:  # behind a broker, the device itself must be there, not only the connection
            wanted = "present" if driver.presence else driver.ready_state

        def put(msg: Message) -> None:
            if msg.is_link and msg.kind == wanted:
                ready.set()
            self.inbox.put(msg)

        if "listen" in driver.roles:
            selectors = [step.value for step in self.check.steps if step.action == "event"]
            channels = {str(sel["channel"]) for sel in selectors} if all("channel" in s for s in selectors) else None
            follow = driver.listen(driver.context(put, self.options["listen"]), channels or None)
        else:
            follow = driver.register(driver.context(put, self.options["register"]))
        self.listener = asyncio.ensure_future(follow)
        if not wanted:
            return None
        await wait_while_running(self.listener, ready.wait(), READY_WITHIN_S)
        if not ready.is_set() and not self.listener.done():
            warn(
                f"{self.check.path}: the listener did not report {wanted!r} within {READY_WITHIN_S:g} s; "
                "the steps start anyway (a protocol without that link state: set [listener] ready)"
            )
        return self._listener_error()

    def _listener_error(self) -> FieldctlError | None:
        if self.listener is None or not self.listener.done() or self.listener.cancelled():
            return None
        error = self.listener.exception()
        if isinstance(error, FieldctlError):
            return error
        return ProtocolFailure(f"the listener failed: {error!r}" if error else "the listener ended")

    async def _close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.listener is not None:
            self.listener.cancel()
            await asyncio.gather(self.listener, return_exceptions=True)

    def _result(self, step: Step, status: str, code: int, **fields: Any) -> Result:
        return Result(self.check.path, self.check.name, step, status, code, **fields)

    def _thresholds(self, step: Step) -> tuple[float, float]:
        """A probe step's (warn, crit): its own, else the defaults `fieldctl probe` has."""
        from fieldctl.protocols.sdk.probing import thresholds

        given = step.value or {}
        return thresholds(self.profile, given.get("warn"), given.get("crit"))

    async def _step(self, step: Step, mark: int) -> Result:
        from fieldctl.protocols.sdk.probing import GRACE_S

        limit = max(step.timeout_s, self._thresholds(step)[1]) if step.action == "probe" else step.timeout_s
        try:
            if step.action == "wait":
                await asyncio.sleep(step.value)
                return self._result(step, "passed", 0)
            if step.action == "event":
                return await self._event(step, mark)
            act = {"command": self._command, "publish": self._publish, "probe": self._probe}[step.action]
            observed, expect = await within(act(step), limit + GRACE_S)
        except TimeoutError:
            return self._result(step, "error", ExitCode.TIMEOUT, detail=f"no outcome within {limit:g} s")
        except FieldctlError as exc:
            return self._result(step, "error", exc.exit_code, detail=str(exc))
        return self._judged(step, expect if step.expect is None else step.expect, observed)

    def _judged(self, step: Step, expect: Any, observed: Any, detail: str = "") -> Result:
        diff = mismatches(expect, observed)
        if not detail and isinstance(observed, dict):
            detail = str(observed.get("summary", ""))
        return self._result(
            step,
            "failed" if diff else "passed",
            ExitCode.REMOTE_FAILED if diff else 0,
            detail=detail,
            diff=diff,
            observed=observed,
        )

    def _options(self, role: str, step: Step) -> dict[str, Any]:
        """The file's options for the role, the step's own over them."""
        from fieldctl.cli.framework.protocol_options import role_options

        return {**self.options[role], **role_options(role, list(step.options), self.driver.profile)}

    def _via(self, step: Step) -> str | None:
        if not self.check.acts_via(step):
            return None
        assert self.via is not None, "check refuses such a step without a control path before it runs"
        return self.via

    async def _command(self, step: Step) -> tuple[Any, Any]:
        via = self._via(step)
        if via is not None:
            from fieldctl.protocols.runtime.control import command_message, request

            msg = command_message(self.profile.name, step.value, step.data)
            outcome = await request(via, "command", msg, _ignore, step.timeout_s)
        else:
            if self.session is None:
                self.session = self.driver.session(self.driver.context(_ignore, self.options["command"]))
                await self.session.__aenter__()
            outcome = await self.session.command(
                step.value, step.data, timeout=step.timeout_s, wait=step.wait, options=self._options("command", step)
            )
        return _outcome(outcome), {"ok": True}

    async def _publish(self, step: Step) -> tuple[Any, Any]:
        msg = self.driver.publication(step.value, step.data)
        via = self._via(step)
        if via is not None:
            from fieldctl.protocols.runtime.control import request

            return _outcome(await request(via, "publish", msg, _ignore, step.timeout_s)), {"ok": True}
        context = self.driver.context(_ignore, self._options("publish", step))
        await self.driver.publish(context, [msg], wait_s=step.timeout_s, realtime=False)
        return {"ok": True, "summary": f"published {msg.channel} {msg.kind}"}, {"ok": True}

    async def _probe(self, step: Step) -> tuple[Any, Any]:
        warn, crit = self._thresholds(step)
        report = await self.driver.probe(
            self.driver.context(_ignore, self._options("probe", step)), warn=warn, crit=crit
        )
        observed = {
            "status": report.status.name,
            "code": int(report.status),
            "summary": report.summary,
            "metrics": report.metrics,
        }
        return observed, {"status": "OK"}

    async def _event(self, step: Step, mark: int) -> Result:
        """The first message since `mark` that the selector picks and the expectation matches; else a
        failure with the diff against the last one picked, or a timeout when none was picked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + step.timeout_s
        expect = step.expect or {}
        closest: Message | None = None
        while True:
            for seq, msg in self.inbox.after(mark):
                if loop.time() >= deadline:  # each match is bounded, a flood of them is not
                    break
                mark = seq
                if selects(step.value, msg):
                    if not mismatches(expect, _shown(msg)):
                        self.inbox.used.add(seq)
                        return self._judged(step, expect, _shown(msg), detail=f"{msg.channel} {msg.kind}")
                    closest = msg
            error = self._listener_error()
            if error is not None:
                return self._result(step, "error", error.exit_code, detail=str(error))
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self.inbox.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await within(self.inbox.changed.wait(), remaining)
        if closest is not None:
            return self._judged(
                step,
                expect,
                _shown(closest),
                detail=f"no match within {step.timeout_s:g} s; closest: {closest.channel} {closest.kind}",
            )
        wanted = " ".join(f"{key}={value}" for key, value in step.value.items()) or "any message"
        return self._result(step, "error", ExitCode.TIMEOUT, detail=f"no {wanted} within {step.timeout_s:g} s")


def _ignore(msg: Message) -> None:
    """The exchanges of a step are not shown: its result is."""


def _outcome(outcome: CommandOutcome) -> dict[str, Any]:
    """What a command step's expectation is matched against."""
    return {"ok": outcome.ok, "summary": outcome.summary, "data": outcome.result, "rtt_s": outcome.rtt_s}


def _shown(msg: Message) -> dict[str, Any]:
    """A message as an event step's expectation sees it: its JSON form, secrets scrubbed, no raw bytes."""
    data = scrub(msg).to_dict()
    data.pop("raw", None)
    return data
