"""The check file of `fieldctl check` (TOML): its model, loader and validator. Pure: no I/O beyond
reading the file, no rich. Every problem is found before anything runs, and all of them are told,
one a line, as `FILE: step N: FIELD: reason` (or `FILE: FIELD: reason` for the file's own keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldctl.cli.check.matching import CONTAINS
from fieldctl.cli.framework.vocabulary import channel_problem, command_problem, field_problems, kind_problem
from fieldctl.profiles.files import parse_toml, read_toml
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.limits import MAX_SECONDS, finite_within

if TYPE_CHECKING:
    from fieldctl.protocols.sdk.contract import BaseDriver

#: The keys that say what a step does; a step has exactly one of them.
ACTIONS = ("command", "event", "probe", "publish", "wait_s")
#: Roles whose protocol options a check file may give (the options of `fieldctl ROLE PROFILE`).
ROLES = ("command", "listen", "register", "publish", "probe", "simulate")
FILE_KEYS = {"name", "target", "timeout_s", "via", "listener", "options", "step"}
LISTENER_KEYS = ("ready", "endpoints")
STEP_KEYS = {"name", "data", "force", "expect", "timeout_s", "within_s", "wait", "via", "options", *ACTIONS}
#: Keys only some actions take.
ONLY = {
    "within_s": ("event",),
    "wait": ("command",),
    "via": ("command", "publish"),
    "data": ("command", "publish"),
    "force": ("command",),
    "options": ("command", "publish", "probe"),
    "timeout_s": ("command", "publish", "probe"),
    "expect": ("command", "event", "probe", "publish"),
}
SELECTOR_KEYS = ("channel", "kind", "endpoint", "direction")
DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, as problems and reports name it
    name: str
    action: str  # one of ACTIONS, "wait_s" spelled "wait"
    value: Any  # the action key's value: a command name, an event selector, probe thresholds, a kind, seconds
    data: Any = None
    expect: Any = None  # None: the action's default (a command or publish must be ok)
    timeout_s: float = DEFAULT_TIMEOUT_S  # command, publish, probe; an event's within_s
    wait: bool = True  # command: also wait for an asynchronous result
    via: bool | None = None  # command, publish: through the simulator's control path (None: the file's choice)
    options: tuple[str, ...] = ()  # the protocol's own options for this step's role
    force: bool = False  # command: send data fields the profile does not declare for it


@dataclass(frozen=True)
class CheckFile:
    path: str
    name: str
    target: str | None
    steps: list[Step]
    #: A running simulator's control socket for the commands and publishes that act from the
    #: other side; True: the one `--simulate` starts (or `--via` names).
    via: str | bool | None = None
    #: The link state that says the background listener is ready: None, the driver's ready_state
    #: (`present` for a driver with presence); "" waits for none.
    ready: str | None = None
    #: Endpoint overrides for the listener alone (NAME = URL), e.g. its own client socket.
    listener_endpoints: dict[str, str] = field(default_factory=dict)
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def acts_via(self, step: Step) -> bool:
        """Whether a step's command or publish goes through a simulator's control path."""
        return step.via is True or (step.via is None and self.via not in (None, False))

    @property
    def listens(self) -> bool:
        """Whether the check needs a listener from its start: for its events, or to answer what a
        simulator's control path sends."""
        return any(step.action == "event" for step in self.steps) or self.via is not None


def load(path: str | Path) -> CheckFile:
    """The check file at `path`; UsageError (exit 2) listing every problem."""
    return _checked(read_toml(Path(path)), str(path))


def parse(text: str, source: str) -> CheckFile:
    return _checked(parse_toml(text, source), source)


def _checked(data: dict[str, Any], source: str) -> CheckFile:
    problems: list[str] = []
    checked = _File(source, data, problems).build()
    if problems:
        raise UsageError("\n".join(problems))
    return checked


def vocabulary_problems(check: CheckFile, driver: BaseDriver) -> list[str]:
    """Every name a step gives that the target's profile does not know, as `FILE: step N: FIELD:
    reason (did you mean ...?)`: command names, data fields the command does not declare (unless
    `force`), the kinds a step publishes, the channel and kind an event step waits for."""
    problems = []
    quiet = type(driver)(driver.profile, lambda text: None)  # its warnings come when the step runs
    for step in check.steps:
        found: list[tuple[str, str | None]] = []
        if step.action == "command":
            found.append(("command", command_problem(driver.profile, step.value)))
            if not step.force:
                found += [
                    (f"data.{key}", reason) for key, reason in field_problems(driver.profile, step.value, step.data)
                ]
        elif step.action == "publish":
            try:
                quiet.publication(step.value, step.data)
            except UsageError as exc:
                found.append(("publish", str(exc)))
        elif step.action == "event":
            check_name = {"channel": channel_problem, "kind": kind_problem}
            found += [
                (f"event.{key}", check_name[key](driver, str(value)))
                for key, value in step.value.items()
                if key in check_name
            ]
        problems += [f"{check.path}: step {step.number}: {where}: {reason}" for where, reason in found if reason]
    return problems


class _File:
    """One pass over the parsed TOML, collecting problems instead of stopping at the first."""

    def __init__(self, source: str, data: dict[str, Any], problems: list[str]) -> None:
        self.source, self.data, self.problems = source, data, problems

    def problem(self, where: str, reason: str) -> None:
        self.problems.append(f"{self.source}: {where}: {reason}")

    def build(self) -> CheckFile:
        data = self.data
        for key in sorted(set(data) - FILE_KEYS):
            self.problem(key, f"unknown key (known: {', '.join(sorted(FILE_KEYS))})")
        target = self.text(data, "target", "target")
        name = self.text(data, "name", "name") or Path(self.source).stem
        timeout = self.seconds(data, "timeout_s", "timeout_s", DEFAULT_TIMEOUT_S, positive=True)
        via = data.get("via")
        if via is not None and not isinstance(via, (str, bool)):
            self.problem("via", "expected a socket path or true")
        ready, listener_endpoints = self.listener(data.get("listener", {}))
        options = self.options(data.get("options", {}))
        steps = data.get("step")
        if steps is None:
            self.problem("step", "no [[step]] tables: a check needs at least one step")
            steps = []
        elif not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
            self.problem("step", "expected [[step]] tables")
            steps = []
        built = [self.step(number, step, timeout) for number, step in enumerate(steps, 1)]
        return CheckFile(
            self.source,
            name,
            target,
            [step for step in built if step is not None],
            via if isinstance(via, (str, bool)) else None,
            ready,
            listener_endpoints,
            options,
            timeout,
        )

    def listener(self, table: Any) -> tuple[str | None, dict[str, str]]:
        if not isinstance(table, dict):
            self.problem("listener", "expected a table { ready = STATE, endpoints = { NAME = URL } }")
            return None, {}
        for key in sorted(set(table) - set(LISTENER_KEYS)):
            self.problem(f"listener.{key}", f"unknown key (known: {', '.join(LISTENER_KEYS)})")
        ready = self.text(table, "ready", "listener.ready")
        endpoints = table.get("endpoints", {})
        if not isinstance(endpoints, dict) or not all(isinstance(url, str) for url in endpoints.values()):
            self.problem("listener.endpoints", "expected a table of NAME = URL")
            endpoints = {}
        return ready, endpoints

    def options(self, table: Any) -> dict[str, tuple[str, ...]]:
        if not isinstance(table, dict):
            self.problem("options", 'expected a table of ROLE = ["--option", "value", ...]')
            return {}
        result = {}
        for role, args in table.items():
            if role not in ROLES:
                self.problem(f"options.{role}", f"unknown role (known: {', '.join(ROLES)})")
            elif self.strings(args):
                result[role] = tuple(args)
            else:
                self.problem(f"options.{role}", "expected a list of strings, as on the command line")
        return result

    def step(self, number: int, step: dict[str, Any], default_timeout: float) -> Step | None:
        where = f"step {number}"
        before = len(self.problems)
        for key in sorted(set(step) - STEP_KEYS):
            self.problem(f"{where}: {key}", f"unknown key (known: {', '.join(sorted(STEP_KEYS))})")
        actions = [key for key in ACTIONS if key in step]
        if len(actions) != 1:
            said = ", ".join(actions) if actions else "none"
            self.problem(f"{where}: action", f"exactly one of {', '.join(ACTIONS)} (found {said})")
            return None
        action = actions[0]
        for key, allowed in ONLY.items():
            if key in step and action not in allowed:
                self.problem(f"{where}: {key}", f"not for a {action} step (only {', '.join(allowed)})")
        value = self.action_value(where, action, step[action])
        timeout_key = "within_s" if action == "event" else "timeout_s"
        timeout = self.seconds(step, timeout_key, f"{where}: {timeout_key}", default_timeout, positive=True)
        wait = step.get("wait", True)
        if not isinstance(wait, bool):
            self.problem(f"{where}: wait", "expected true or false")
        via = step.get("via")
        if via is not None and not isinstance(via, bool):
            self.problem(f"{where}: via", "expected true or false")
        force = step.get("force", False)
        if not isinstance(force, bool):
            self.problem(f"{where}: force", "expected true or false")
        options = step.get("options", [])
        if not self.strings(options):
            self.problem(f"{where}: options", "expected a list of strings, as on the command line")
        if "expect" in step:
            self.expectation(f"{where}: expect", step["expect"])
        name = self.text(step, "name", f"{where}: name") or _describe(action, step[action])
        if len(self.problems) > before:
            return None
        return Step(
            number,
            name,
            "wait" if action == "wait_s" else action,
            value,
            step.get("data"),
            step.get("expect"),
            timeout,
            wait,
            via,
            tuple(options),
            force,
        )

    def action_value(self, where: str, action: str, value: Any) -> Any:
        if action in ("command", "publish"):
            if not isinstance(value, str) or not value:
                self.problem(f"{where}: {action}", "expected a name")
        elif action == "wait_s":
            return self.seconds({"wait_s": value}, "wait_s", f"{where}: wait_s", 0.0)
        elif action == "event":
            if not isinstance(value, dict):
                self.problem(f"{where}: event", f"expected a table of {', '.join(SELECTOR_KEYS)}")
                return {}
            for key, part in value.items():
                if key not in SELECTOR_KEYS:
                    self.problem(f"{where}: event.{key}", f"unknown key (known: {', '.join(SELECTOR_KEYS)})")
                elif not isinstance(part, (str, int)) or isinstance(part, bool):
                    self.problem(f"{where}: event.{key}", "expected a string")
        elif action == "probe":
            if value is True:
                return {}
            if not isinstance(value, dict):
                self.problem(f"{where}: probe", "expected true or a table { warn = S, crit = S }")
                return {}
            for key in sorted(set(value) - {"warn", "crit"}):
                self.problem(f"{where}: probe.{key}", "unknown key (known: crit, warn)")
            warn = self.seconds(value, "warn", f"{where}: probe.warn", None)
            crit = self.seconds(value, "crit", f"{where}: probe.crit", None)
            if warn is not None and crit is not None and warn > crit:
                self.problem(f"{where}: probe", f"warn {warn:g} is above crit {crit:g}")
        return value

    def expectation(self, where: str, value: Any) -> None:
        """Walks an expectation for misused operators, so a typo is a bad file, not a failed step."""
        if isinstance(value, dict):
            if CONTAINS in value and (len(value) != 1 or not isinstance(value[CONTAINS], list)):
                self.problem(where, f"{CONTAINS} stands alone and takes a list")
            for key, inner in value.items():
                self.expectation(f"{where}.{key}", inner)
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                self.expectation(f"{where}[{index}]", inner)

    def text(self, table: dict[str, Any], key: str, where: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            self.problem(where, "expected a string")
            return None
        return value

    def seconds(
        self, table: dict[str, Any], key: str, where: str, default: float | None, positive: bool = False
    ) -> Any:
        """A duration of the file: finite, at most MAX_SECONDS (inf, nan and 1e308 never end)."""
        value = table.get(key, default)
        if value is None:
            return None
        if not finite_within(value, 0, MAX_SECONDS, above_low=positive):
            self.problem(
                where, f"expected a number of seconds{' above 0' if positive else ''}, at most {MAX_SECONDS:.0f}"
            )
            return default
        return float(value)

    @staticmethod
    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _describe(action: str, value: Any) -> str:
    """A step's name when the file gives none."""
    if action == "event" and isinstance(value, dict):
        return "event " + " ".join(f"{key}={part}" for key, part in value.items())
    if action == "probe":
        return "probe"
    if action == "wait_s":
        return f"wait {value} s"
    return f"{action} {value}"
