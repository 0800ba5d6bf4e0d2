"""fieldctl.testing: the conformance kit. It holds one installed protocol, built in or a plugin
installed any way, to the Driver contract of docs/plugins.md through the real `fieldctl` command
line, run as subprocesses against the protocol's own simulator on private loopback addresses and
socket paths (as `fieldctl demo` runs), each step within a deadline, in a temporary folder that is
removed afterwards:

    python -m fieldctl.testing NAME [--endpoint ENDPOINT=URL ...] [--check CHECK ...]

exits 0 when every check passes, 1 with one line per failing check, 2 on a usage error. A
plugin's own tests call `conformance_failures(NAME)`, or one check of `CHECKS` at a time.

Only the standard library is imported here; fieldctl's layers load when a check runs, and no
terminal library loads at all, so the kit starts fast and needs nothing but the wheel.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.sdk.contract import BaseDriver

__all__ = ["CHECKS", "ENDPOINTS_VARIABLE", "Failure", "conformance_failures", "main"]

#: Where the addresses of endpoints the kit cannot make private (a broker both sides connect to)
#: come from when no --endpoint gives them: space-separated ENDPOINT=URL.
ENDPOINTS_VARIABLE = "FIELDCTL_TESTING_ENDPOINTS"
FIELDCTL = [sys.executable, "-m", "fieldctl"]
#: The longest one fieldctl run of a check may take, and the wait for one announcement.
RUN_S = 60.0
ANNOUNCE_S = 20.0
#: The link states that say a simulator which binds nothing (it connects to a broker) is up.
UP = ("connected", "ready")


class Failure(NamedTuple):
    """One failing check: its name and why, in one line."""

    check: str
    reason: str

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


class Nonconforming(Exception):
    """What a check found wrong; the text is the reason it reports."""


_CHECKS: dict[str, Callable[[_Subject], None]] = {}


def _check(name: str) -> Callable[[Callable[[_Subject], None]], Callable[[_Subject], None]]:
    def register(function: Callable[[_Subject], None]) -> Callable[[_Subject], None]:
        _CHECKS[name] = function
        return function

    return register


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(nothing on stderr)"


def _failure(check: str, reason: str) -> Failure:
    """One line, control characters escaped: a reason may quote what a process printed."""
    text = " ".join(reason.split())
    return Failure(check, "".join(c if c.isprintable() else repr(c)[1:-1] for c in text))


def _is_link(message: dict[str, Any], *kinds: str) -> bool:
    return message.get("channel") == "link" and message.get("kind") in kinds


class _Running:
    """A fieldctl process in the background: its stdout's NDJSON lines kept for the check to wait
    on, its stderr in a file opened for appending (a pipe nobody reads would stall it; reading
    moves no offset the process writes at)."""

    def __init__(self, args: list[str], env: dict[str, str], stderr: IO[str]) -> None:
        self.title = f"`fieldctl {' '.join(args[:2])}`"
        self.stderr = stderr
        self.popen = subprocess.Popen(
            [*FIELDCTL, *args], stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True, env=env
        )
        self.messages: list[dict[str, Any]] = []
        self.ended = False
        self.arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                with self.arrived:
                    self.messages.append(message)
                    self.arrived.notify_all()
        with self.arrived:
            self.ended = True
            self.arrived.notify_all()

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], within: float) -> dict[str, Any] | None:
        """The first message (already printed or printed within the deadline) that matches, taken
        off the list; None when the process ends or the deadline passes first."""
        deadline = time.monotonic() + within
        with self.arrived:
            while True:
                for message in self.messages:
                    if wanted(message):
                        self.messages.remove(message)
                        return message
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    return None
                self.arrived.wait(left)

    def expect(self, wanted: Callable[[dict[str, Any]], bool], what: str, within: float = ANNOUNCE_S) -> dict[str, Any]:
        found = self.wait_for(wanted, within)
        if found is not None:
            return found
        if self.ended:
            raise Nonconforming(
                f"{self.title} ended (exit code {self.popen.wait(RUN_S)}) before {what}: {self.error()}"
            )
        raise Nonconforming(f"{self.title} printed no {what} within {within:g} s")

    def error(self) -> str:
        """Its stderr's last line."""
        return _last_line(self.stderr_text())

    def stderr_text(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> None:
        """Ends it with SIGTERM, as a service manager would; it must exit 0, with no traceback."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(10)
        except subprocess.TimeoutExpired:
            raise Nonconforming(f"{self.title} did not end within 10 s of SIGTERM") from None
        if code != 0:
            raise Nonconforming(f"{self.title} ended with exit code {code} on SIGTERM: {self.error()}")
        if "Traceback" in self.stderr_text():
            raise Nonconforming(f"{self.title} printed a traceback: {self.error()}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)


class _Subject:
    """The protocol under test in one folder of its own: its own-named profile with private
    endpoints (those of a broker as given), the environment every run gets (configuration, data
    and state in the folder; throwaway values for secrets that are not set), and the processes a
    check started, all ended when the check is."""

    def __init__(self, loaded: _Loaded, folder: Path, given: Mapping[str, str]) -> None:
        from fieldctl.profiles import load_profile
        from fieldctl.profiles.schema import SIMULATOR
        from fieldctl.protocols.runtime.endpoints import private_endpoints

        self.name, self.driver, self.profile, self.folder = loaded.name, loaded.driver, loaded.profile, folder
        self.sets = ["heartbeat.interval_s=0.5", *self.profile.setting("demo.set", [])]
        self.resolved = load_profile(self.name, profile_files=[loaded.file], sets=self.sets)
        private = private_endpoints(self.resolved, str(folder))
        self.brokers = {name: given[name] for name in self.profile.broker_endpoints}
        self.endpoints = {**private, **{name: url for name, url in given.items() if name in private}}
        self.binds = {name for name in private if self.profile.topology(name) == SIMULATOR}
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
        self.env.pop("FIELDCTL_TARGET", None)
        for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            self.env[variable] = str(folder / variable.lower())
        for ref in self.profile.auth.values():
            if ref.env and ref.env not in self.env:
                self.env[ref.env] = "fieldctl-testing"
        self.running: list[_Running] = []

    def args(self, endpoints: Mapping[str, str] | None = None) -> list[str]:
        overrides = [f"--endpoint={key}={url}" for key, url in (endpoints or self.endpoints).items()]
        return [*overrides, *(f"--set={s}" for s in self.sets)]

    def start(self, *args: str) -> _Running:
        stderr = open(self.folder / f"stderr-{len(self.running)}", "a+", encoding="utf-8")  # noqa: SIM115
        self.running.append(_Running(list(args), self.env, stderr))
        return self.running[-1]

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        """`fieldctl ARGS` to its end; its exit code must be `expect` and its stderr hold no traceback."""
        title = f"`fieldctl {' '.join(args[:2])}`"
        try:
            done = subprocess.run(
                [*FIELDCTL, *args],
                capture_output=True,
                text=True,
                timeout=RUN_S,
                env=self.env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise Nonconforming(f"{title} did not end within {RUN_S:g} s") from None
        if done.returncode != expect:
            why = _last_line(done.stderr or done.stdout)
            raise Nonconforming(f"{title} exited {done.returncode}, not {expect}: {why}")
        if "Traceback" in done.stderr:
            raise Nonconforming(f"{title} printed a traceback: {_last_line(done.stderr)}")
        return done

    def simulate(self, *extra: str) -> tuple[_Running, dict[str, str]]:
        """A running simulator and the endpoints that reach it, once it has announced them."""
        proc = self.start("simulate", self.name, "--json", *self.args(), *extra)
        reached = self.announced(proc, self.endpoints)
        if not self.binds:  # it binds nothing (a broker's endpoints): up once connected
            proc.expect(lambda m: _is_link(m, *UP, self.driver.ready_state), "`connected` link")
        return proc, reached

    def announced(self, proc: _Running, endpoints: Mapping[str, str]) -> dict[str, str]:
        """`endpoints` with each that `proc` binds on a port of the system's choice as it announced
        it (a `bound` link); a socket path is reached as given, once it is bound."""
        from fieldctl.protocols.runtime.endpoints import is_wildcard

        reached = dict(endpoints)
        while waiting := {name for name in self.binds if is_wildcard(reached[name])}:
            bound = proc.expect(
                lambda m: _is_link(m, "bound") and m.get("endpoint") in waiting,
                f"`bound` link for {', '.join(sorted(waiting))}",
            )
            reached[bound["endpoint"]] = bound["payload"]["url"]
        if reached == endpoints and self.binds:  # socket paths: nothing to resolve, but bound only then
            proc.expect(lambda m: _is_link(m, "bound"), "`bound` link")
        return reached

    def end(self) -> None:
        for proc in self.running:
            proc.kill()
            proc.stderr.close()


class _Loaded(NamedTuple):
    """The protocol's driver and its own-named profile as installed, validated."""

    name: str
    driver: type[BaseDriver]
    file: Path
    profile: Profile


def _load(protocol: str) -> _Loaded:
    """The driver, and the profile file an installed folder (entry point group fieldctl.profiles)
    holds: a person's own profiles do not shadow it, as they do not in the kit's runs, which have
    a configuration folder of their own. Whatever fails to load or validate is raised."""
    from fieldctl.profiles import load_profile
    from fieldctl.profiles.files import installed_folders
    from fieldctl.protocols.runtime.registry import check_settings, driver_class

    driver = driver_class(protocol)
    found = [file for folder in installed_folders() if (file := folder / f"{protocol}.toml").is_file()]
    if not found:
        raise Nonconforming(f"no installed profile folder (entry point group fieldctl.profiles) holds {protocol}.toml")
    profile = load_profile(protocol, profile_files=found[-1:])
    check_settings(profile)
    return _Loaded(protocol, driver, found[-1], profile)


@_check("roles")
def _roles(subject: _Subject) -> None:
    """The roles the driver announces (Driver.roles) are the ones its methods play (the command
    role is `session`, the simulate role `simulator`); among them `simulate` and a client role that
    follows it (listen or register); and it declares its open files (Driver.open_files) for each."""
    from fieldctl.protocols.sdk.contract import BaseDriver
    from fieldctl.protocols.sdk.options import ROLES

    driver, methods = subject.driver, {role: role for role in ROLES} | {"command": "session", "simulate": "simulator"}
    announced = set(driver.roles)
    if unknown := sorted(announced - set(ROLES)):
        raise Nonconforming(f"Driver.roles names {', '.join(unknown)}: not a role (roles: {', '.join(ROLES)})")
    played = {role for role, method in methods.items() if getattr(driver, method) is not getattr(BaseDriver, method)}
    if unplayed := sorted(announced - played):
        raise Nonconforming(f"Driver.roles announces {', '.join(unplayed)}, which the driver's methods do not play")
    if unannounced := sorted(played - announced):
        raise Nonconforming(f"the driver plays {', '.join(unannounced)}, which Driver.roles does not announce")
    if "simulate" not in announced or not {"listen", "register"} & announced:
        raise Nonconforming(
            f"plays {', '.join(sorted(announced)) or 'no role'}: needs simulate, and listen or register"
        )
    declared = driver.open_files
    if undeclared := sorted(announced - set(declared)):
        raise Nonconforming(f"Driver.open_files declares nothing for {', '.join(undeclared)}")
    if bad := sorted(role for role, n in declared.items() if not isinstance(n, int) or n < 0):
        raise Nonconforming(f"Driver.open_files for {', '.join(bad)}: not a count")


@_check("options")
def _options(subject: _Subject) -> None:
    """Each option the protocol declares (options.py) is a valid declaration and is listed in its
    role's `--help` under the protocol options, labelled with the protocol."""
    from fieldctl.protocols.runtime.registry import declared_options
    from fieldctl.protocols.sdk.options import KINDS, PARAMS, ROLES

    declared = declared_options(subject.name)
    if unknown := sorted(set(declared) - set(ROLES)):
        raise Nonconforming(f"options declared for unknown roles {', '.join(unknown)}")
    for role, specs in declared.items():
        entries = _help_entries(subject, role)
        for flag, spec in specs.items():
            if spec.kind not in KINDS:
                raise Nonconforming(f"{role} {flag}: unknown kind {spec.kind!r} (one of {', '.join(KINDS)})")
            if flag != PARAMS and not re.fullmatch(r"--[a-z0-9][a-z0-9-]*", flag):
                raise Nonconforming(f"{role}: {flag!r} is no --option")
            shown = "[ARGS]..." if flag == PARAMS else flag
            if not re.search(rf"\[[^\]]*\b{re.escape(subject.name)}\b[^\]]*\]", entries.get(shown, "")):
                raise Nonconforming(f"`fieldctl {role} --help` does not list {shown} for {subject.name}")


def _help_entries(subject: _Subject, role: str) -> dict[str, str]:
    """The entries of `fieldctl ROLE --help` under its protocol options: first word -> the text."""
    text = subject.run(role, "--help").stdout
    if "Protocol options" not in text:
        raise Nonconforming(f"`fieldctl {role} --help` lists no protocol options")
    rows: dict[str, str] = {}
    head = ""
    for line in text.split("Protocol options", 1)[1].splitlines()[1:]:
        if re.match(r"  \S", line):  # an entry starts at the indentation, its wrapped text goes deeper
            head = line.split()[0]
            rows[head] = line
        elif line.strip() and head:
            rows[head] += " " + line.strip()
    return rows


@_check("simulate")
def _simulate(subject: _Subject) -> None:
    """`simulate` announces its endpoints (a `bound` link) and ends cleanly on SIGTERM."""
    simulator, _ = subject.simulate()
    simulator.stop()


@_check("demo")
def _demo(subject: _Subject) -> None:
    """`demo NAME --duration 2` runs its simulator and a client, and ends by itself with 0 (given
    the address of a broker, where the protocol has one)."""
    brokers = [f"--endpoint={name}={url}" for name, url in subject.brokers.items()]
    subject.run("demo", subject.name, "--duration", "2", *brokers)


@_check("probe")
def _probe(subject: _Subject) -> None:
    """`probe` is OK against the simulator, and CRITICAL (exit 2) once it is gone."""
    simulator, reached = subject.simulate()
    ok = subject.run("probe", subject.name, *subject.args(reached), "--warn", "5", "--crit", "8", "--format", "json")
    simulator.stop()
    try:
        status = json.loads(ok.stdout)["status"]
    except (ValueError, KeyError, TypeError):
        raise Nonconforming(f"`probe --format json` printed no status: {_last_line(ok.stdout)}") from None
    if status != "OK":
        raise Nonconforming(f"`probe` against the simulator is {status}, not OK")
    down = subject.run("probe", subject.name, *subject.args(reached), "--crit", "2", expect=2)
    if "CRITICAL" not in down.stdout:
        raise Nonconforming(f"`probe` without the simulator says {_last_line(down.stdout)!r}, not CRITICAL")


@_check("record")
def _record(subject: _Subject) -> None:
    """What a client role records (`--record`, NDJSON) holds traffic, and `simulate --scenario`
    plays it back."""
    role = "listen" if "listen" in subject.driver.roles else "register"
    simulator, reached = subject.simulate()
    record = subject.folder / "record.ndjson"
    follow = ["--json", "--count", "1", "--timeout", "30", "--record", str(record)]
    subject.run(role, subject.name, *subject.args(reached), *follow)
    simulator.stop()
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    if not any(line.get("channel") != "link" for line in lines):
        raise Nonconforming(f"`{role} --record` recorded no traffic, only link states")
    if incomplete := [line for line in lines if not {"ts", "channel", "kind", "payload", "raw"} <= set(line)]:
        raise Nonconforming(f"a recorded line lacks ts, channel, kind, payload or raw: {json.dumps(incomplete[0])}")
    replay, _ = subject.simulate("--scenario", str(record), "--no-timeline")
    replay.stop()


@_check("publish")
def _publish(subject: _Subject) -> None:
    """`publish NAME KIND --data` arrives where the protocol sends it: at a listener when publish
    plays the publishing side itself (it binds, and announces where), else at the simulator it
    connects to, or through the simulator at a listener. KIND is the profile's first event kind,
    or its first channel where kinds are open-ended. At a broker publish always has somewhere to
    send, so only the simulator's side is checked there. Passes where the driver has no listen and
    publish pair."""
    if not {"listen", "publish"} <= subject.driver.roles:
        return
    kind = next(iter([*subject.profile.events, *subject.profile.channels]))
    marker = f"conformance-{uuid.uuid4().hex}"
    publish = ["publish", subject.name, kind, "--data", json.dumps({"conformance": marker}), "--wait", "20", "--json"]

    def arrived(message: dict[str, Any]) -> bool:
        return message.get("direction") == "in" and marker in json.dumps(message)

    def listener(endpoints: Mapping[str, str]) -> _Running:
        return subject.start("listen", subject.name, *subject.args(endpoints), "--json", "--duration", "40")

    if not subject.brokers:  # at a broker, publish connects as the device would, and it is always there
        publisher = subject.start(*publish, *subject.args())
        bound = publisher.wait_for(lambda m: _is_link(m, "bound"), 15)
        if bound is not None:  # publish binds: a listener connects to it
            follower = listener({**subject.endpoints, bound["endpoint"]: bound["payload"]["url"]})
            follower.expect(arrived, "publication received", 25)
            if (code := publisher.popen.wait(25)) != 0:
                raise Nonconforming(f"`publish` exited {code} after a listener received it: {publisher.error()}")
            return
        if not publisher.ended or (code := publisher.popen.wait(RUN_S)) != 3:
            raise Nonconforming(f"`publish` with nobody to reach neither bound nor exited 3: {publisher.error()}")
    simulator, reached = subject.simulate("--no-timeline")
    follower = listener(reached)
    follower.expect(lambda m: _is_link(m, "ready", "connected", subject.driver.ready_state), "ready link")
    subject.run(*publish, *subject.args(reached))
    if follower.wait_for(arrived, 10) is None:  # no relay (a hub): the simulator is the other side
        simulator.expect(arrived, "publication received (at the simulator or a listener)", 10)
    follower.stop()
    simulator.stop()


@_check("proxy")
def _proxy(subject: _Subject) -> None:
    """Where the driver plays proxy: `proxy` between the simulator and a client role (on private
    addresses of its own) relays what the simulator sends to the client, shows it decoded as
    coming in, and ends cleanly on SIGTERM."""
    if "proxy" not in subject.driver.roles:
        return
    from fieldctl.protocols.runtime.endpoints import private_endpoints

    simulator, reached = subject.simulate()
    front = subject.folder / "proxy"
    front.mkdir()
    own = private_endpoints(subject.resolved, str(front))
    upstream = [f"--upstream-endpoint={name}={reached[name]}" for name in subject.binds]
    proxy = subject.start("proxy", subject.name, *subject.args(own), *upstream, "--json")
    through = subject.announced(proxy, own)
    role = "listen" if "listen" in subject.driver.roles else "register"
    client = {**subject.endpoints, **{name: through[name] for name in subject.binds}}
    subject.run(role, subject.name, *subject.args(client), "--json", "--count", "1", "--timeout", "30")
    proxy.expect(lambda m: m.get("channel") != "link" and m.get("direction") == "in", "relayed message, decoded")
    proxy.stop()
    simulator.stop()


#: The checks, in the order they run; each passes or fails on its own.
CHECKS: tuple[str, ...] = tuple(_CHECKS)


def conformance_failures(
    protocol: str, checks: Iterable[str] = CHECKS, endpoints: Mapping[str, str] | None = None
) -> list[Failure]:
    """The checks `protocol` fails, [] when it passes them all. First the protocol's driver and its
    own-named profile load and validate (else one failure, `profile`) and every broker endpoint
    has an address, from `endpoints` or FIELDCTL_TESTING_ENDPOINTS (else one failure, `topology`).
    Raises UsageError (fieldctl.sdk) for a protocol that is not installed, an unknown check or
    endpoint, or a malformed FIELDCTL_TESTING_ENDPOINTS."""
    from fieldctl.profiles.schema import did_you_mean
    from fieldctl.protocols.core.errors import FieldctlError, UsageError
    from fieldctl.protocols.runtime.registry import protocol_names

    installed = protocol_names()
    if protocol not in installed:
        raise UsageError(
            f"unknown protocol {protocol!r}{did_you_mean(protocol, installed)} (installed: {', '.join(installed)})"
        )
    chosen = list(checks)
    if unknown := [check for check in chosen if check not in _CHECKS]:
        raise UsageError(
            f"unknown check {unknown[0]!r}{did_you_mean(unknown[0], CHECKS)} (checks: {', '.join(CHECKS)})"
        )
    given = {**_pairs(os.environ.get(ENDPOINTS_VARIABLE, "").split(), ENDPOINTS_VARIABLE), **(endpoints or {})}
    try:
        loaded = _load(protocol)
    except Exception as exc:  # noqa: BLE001  a driver or profile that does not load is the plugin's to fix
        why = str(exc) if isinstance(exc, FieldctlError | Nonconforming) else f"{type(exc).__name__}: {exc}"
        return [_failure("profile", why)]
    known = set(loaded.profile.endpoints)
    if named := [name for name in endpoints or {} if name not in known]:
        raise UsageError(
            f"--endpoint {named[0]}: profile {protocol} has no such endpoint{did_you_mean(named[0], known)} "
            f"(endpoints: {', '.join(sorted(known))})"
        )
    if missing := sorted(loaded.profile.broker_endpoints - set(given)):
        return [
            _failure(
                "topology",
                f"endpoint {', '.join(missing)} is a broker's, which the kit cannot stand in for: give its "
                f"address with --endpoint {missing[0]}=URL or in {ENDPOINTS_VARIABLE}",
            )
        ]
    failures: list[Failure] = []
    with tempfile.TemporaryDirectory(prefix="fieldctl-testing-") as top:
        for number, check in enumerate(chosen):
            folder = Path(top) / str(number)
            folder.mkdir()
            subject = None
            try:
                subject = _Subject(loaded, folder, given)
                _CHECKS[check](subject)
            except Nonconforming as exc:
                failures.append(_failure(check, str(exc)))
            except Exception as exc:  # noqa: BLE001  whatever breaks is this check's failure, in one line
                failures.append(_failure(check, f"{type(exc).__name__}: {exc}"))
            finally:
                if subject is not None:
                    subject.end()
    return failures


def _pairs(items: Iterable[str], where: str) -> dict[str, str]:
    """ENDPOINT=URL items as a mapping; a usage error names the malformed one and where it was."""
    from fieldctl.protocols.core.errors import UsageError

    found: dict[str, str] = {}
    for item in items:
        name, sep, url = item.partition("=")
        if not (sep and name and url):
            raise UsageError(f"{where}: {item!r} is not ENDPOINT=URL")
        found[name] = url
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fieldctl.testing",
        description="Hold an installed fieldctl protocol to the Driver contract (docs/plugins.md).",
        epilog=f"checks: {', '.join(CHECKS)}. Exit 0: all pass; 1: one line per failing check; 2: usage error.",
    )
    parser.add_argument("protocol", metavar="NAME", help="an installed protocol (its own-named profile is used)")
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="ENDPOINT=URL",
        help=f"the address of an endpoint the kit cannot make private (a broker); else from ${ENDPOINTS_VARIABLE}",
    )
    parser.add_argument("--check", action="append", metavar="CHECK", help="run only this check (repeatable)")
    args = parser.parse_args(argv)
    from fieldctl.protocols.core.errors import UsageError

    try:
        failures = conformance_failures(
            args.protocol, args.check or CHECKS, endpoints=_pairs(args.endpoint, "--endpoint")
        )
    except UsageError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    for failure in failures:
        print(failure)
    if not failures:
        print(f"{args.protocol}: {len(args.check or CHECKS)} checks passed ({' '.join(args.check or CHECKS)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
