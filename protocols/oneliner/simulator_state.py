"""The simulated RouterServer's logic, no I/O: declared objects, named calls, periodic streams and the
reserved management objects (spec §4.3-§5.5), answering with the real server's strings and quirks.

Only what the profile declares can be called: an object's methods are small declared actions
(get/set/add an attribute, sum, echo, return, raise, sleep), never arbitrary Python.
"""

from __future__ import annotations

import builtins
import math
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.limits import DEFAULT_LIMITS, Limits

from . import codec, safe_pickle
from .safe_pickle import BUILTIN_EXCEPTIONS, UnsafePickle

ROUTER, STREAMER, RPC = "__router_server", "__streamer", "__rpc_server"  # reserved instance names
DEFAULT_VERSION = "0.1.1.dev4"
#: The longest a declared `sleep` method may hold the simulator's single RPC thread.
MAX_SLEEP_S = 3600.0


@dataclass(frozen=True)
class Delay:
    """A declared `sleep` method: the reply waits, and like the real REP loop so does every other call."""

    seconds: float


@dataclass
class Outcome:
    success: bool
    value: Any
    get_timestamp: bool = False
    delay: float = 0.0
    request: codec.Request | None = None
    malformed: str | None = None  # why the request was refused undecoded (the real server dies instead)

    def reply(self, now: float) -> Reply:
        """The reply packet; a result that cannot be pickled fails as on the real server (§4.4)."""
        timestamp = now if self.get_timestamp else None
        try:
            payload = codec.dumps(safe_pickle.unsealed(self.value))
            success, value = self.success, self.value
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            success, value = False, str(exc)
            payload = codec.dumps(value)
        return Reply(codec.encode_packet("", success, timestamp, payload), success, timestamp, value, len(payload))


@dataclass(frozen=True)
class Reply:
    """A reply as sent: its packet, and the values it encodes (to show it without decoding it)."""

    packet: bytes
    success: bool
    timestamp: float | None
    value: Any
    payload_bytes: int


class SimObject:
    """A declared object: attributes (plain values) and methods (declared actions)."""

    def __init__(self, name: str, spec: Mapping[str, Any]) -> None:
        self.name = name
        self.attributes: dict[str, Any] = dict(spec.get("attributes", {}))
        self.methods: dict[str, Callable[..., Any]] = {
            method: self._action(method, dict(action)) for method, action in spec.get("methods", {}).items()
        }

    def __repr__(self) -> str:
        return f"<fieldctl.simulated {self.name} object>"

    def _action(self, method: str, spec: dict[str, Any]) -> Callable[..., Any]:
        """The declared method as a function named `object.method`, so that Python's own errors for
        a wrong call name it as a real server's errors name `Class.method` (spec §4.4)."""
        action = self._body(method, spec)
        action.__name__, action.__qualname__ = method, f"{self.name}.{method}"
        return action

    def _body(self, method: str, spec: dict[str, Any]) -> Callable[..., Any]:
        kind = spec.get("action")
        where = f"simulate.objects.{self.name}.methods.{method}"
        attribute = spec.get("attribute", "value")
        if kind in ("get", "set", "add") and attribute not in self.attributes:
            raise UsageError(
                f"{where}: attribute {attribute!r} is not declared in simulate.objects.{self.name}.attributes"
            )
        if kind == "get":

            def get() -> Any:
                return self.attributes[attribute]

            return get
        if kind == "set":

            def set_(value: Any = spec.get("value")) -> None:  # noqa: B008  evaluated once, as a Python default is
                self.attributes[attribute] = value

            return set_
        if kind == "add":

            def add(step: Any = spec.get("step", 1)) -> Any:  # noqa: B008  evaluated once, as a Python default is
                self.attributes[attribute] += step
                return self.attributes[attribute]

            return add
        if kind == "sum":

            def sum_(*args: Any, **kwargs: Any) -> Any:  # add(2, 3) and add(a=2, b=3) both answer 5
                return sum([*args, *kwargs.values()])

            return sum_
        if kind == "echo":

            def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
                return {"args": list(args), "kwargs": kwargs}

            return echo
        if kind == "return":

            def return_(*args: Any, **kwargs: Any) -> Any:
                return spec.get("value")

            return return_
        if kind == "raise":
            error = spec.get("error", "RuntimeError")
            if error not in BUILTIN_EXCEPTIONS:
                raise UsageError(f"{where}: error {error!r} is not a built-in exception class")

            def raise_(message: str = spec.get("message", "simulated failure")) -> None:
                raise getattr(builtins, error)(message)

            return raise_
        if kind == "sleep":

            def sleep(seconds: float = spec.get("seconds", 1.0)) -> Delay:
                if not 0 <= float(seconds) <= MAX_SLEEP_S:
                    raise ValueError(f"sleep: seconds must be between 0 and {MAX_SLEEP_S:g}")
                return Delay(float(seconds))

            return sleep
        raise UsageError(f"{where}: action {kind!r} is not one of get, set, add, sum, echo, return, raise, sleep")

    def lookup(self, attr: str) -> Callable[..., Any]:
        if attr in self.methods:
            return self.methods[attr]
        if attr == "__getattribute__":
            return self._read
        if attr in self.attributes:
            value = self.attributes[attr]
            raise TypeError(f"'{type(value).__name__}' object is not callable")
        raise AttributeError(
            f"Instance {self!r} does not have attribute: {attr}. Error: '{self.name}' object has no attribute '{attr}'"
        )

    def _read(self, name: str) -> Any:
        """`__getattribute__` reads a plain attribute, as on the real server (spec §4.3)."""
        if name in self.attributes:
            return self.attributes[name]
        if name in self.methods:
            raise TypeError(f"cannot pickle 'method' object ({name} is a method)")
        raise AttributeError(f"'{self.name}' object has no attribute '{name}'")


# --- streams ------------------------------------------------------------------------------------------


@dataclass
class Stream:
    """A periodic stream: name, frequency, serializer and what produces each sample."""

    name: str
    frequency_hz: float
    encoding: str
    produce: Callable[[int], tuple[bool, Any]]
    return_type: str | None
    enabled_at_start: bool = True
    count: int = 0

    def sample(self) -> tuple[bool, Any]:
        """(success, value); a failure is the exception itself, as the real server publishes it."""
        self.count += 1
        return self.produce(self.count - 1)


def _generator(
    where: str, spec: Mapping[str, Any], call: Callable[[str, str, list[Any], dict[str, Any]], Outcome]
) -> tuple[Callable[[int], tuple[bool, Any]], str | None]:
    start = spec.get("start", 0)
    kind = spec.get("generator", "call" if "call" in spec else "count")
    if kind == "count":
        return (lambda n: (True, start + n)), "int"
    if kind == "sine":
        return (lambda n: (True, round(math.sin(2 * math.pi * n / 20), 6))), "float"
    if kind == "status":
        return (lambda n: (True, {"seq": start + n, "ok": True})), "dict"
    if kind == "bytes":
        return (lambda n: (True, f"frame {start + n}".encode())), "bytes"
    if kind == "constant":
        value = spec.get("value")
        return (lambda n: (True, value)), type(value).__name__
    if kind == "error":
        message = spec.get("message", "sensor offline")
        return (lambda n: (False, ValueError(message))), "float"
    if kind == "call":
        obj, attr = _split_target(f"{where}.call", spec.get("call", ""))

        def produce(n: int) -> tuple[bool, Any]:
            outcome = call(obj, attr, list(spec.get("args", [])), dict(spec.get("kwargs", {})))
            return outcome.success, outcome.value if outcome.success else RuntimeError(outcome.value)

        return produce, None
    raise UsageError(f"{where}.generator: {kind!r} is not one of count, sine, status, bytes, constant, error, call")


class Streamer:
    """`__streamer`: enable/disable/get_configuration with the real server's quirks (spec §5.5)."""

    def __init__(self, streams: dict[str, Stream]) -> None:
        self.streams = streams
        self.enabled = {name for name, stream in streams.items() if stream.enabled_at_start}
        self.disabled_names: dict[str, None] = {}  # disabled remotely, in order: get_configuration fails on them

    def enable(self, stream_name: str) -> None:
        if stream_name not in self.streams:
            raise KeyError(f"Stream: {stream_name} does not exist.")
        self.enabled.add(stream_name)
        self.disabled_names.pop(stream_name, None)

    def disable(self, stream_name: str) -> None:
        if stream_name not in self.enabled:
            raise KeyError(stream_name)
        self.enabled.discard(stream_name)
        self.disabled_names[stream_name] = None

    def get_configuration(self, as_dict: bool = False) -> dict[str, Any]:
        for name in self.disabled_names:
            raise KeyError(name)
        if not as_dict:
            raise ValueError(
                "the simulator cannot build a one_liner.stream_schema.Streams object: "
                "call get_configuration with as_dict=True"
            )
        return {
            "manual_streams": {},
            "zmq_streams": {},
            "periodic_streams": {
                name: {
                    "encoding": None if stream.encoding == codec.RAW else stream.encoding,
                    "return_type": stream.return_type,
                    "frequency_hz": float(stream.frequency_hz),
                    "enabled": name in self.enabled,
                }
                for name, stream in self.streams.items()
            },
        }


# --- the router -----------------------------------------------------------------------------------------


@dataclass
class NamedCall:
    obj: str
    attr: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


class Router:
    """Requests in, Outcomes out: the RPC thread of a RouterServer, minus its ways of dying."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.version = str(settings.get("version", DEFAULT_VERSION))
        self.objects = {name: SimObject(name, spec) for name, spec in settings.get("objects", {}).items()}
        self.named_calls = {
            name: NamedCall(
                *_split_target(f"simulate.named_calls.{name}", spec.get("call", "")),
                list(spec.get("args", [])),
                dict(spec.get("kwargs", {})),
            )
            for name, spec in settings.get("named_calls", {}).items()
        }
        streams = {}
        for name, spec in settings.get("streams", {}).items():
            where = f"simulate.streams.{name}"
            codec.topic_bytes(name)
            encoding = spec.get("serializer", codec.PICKLE)
            if encoding not in codec.ENCODINGS:
                raise UsageError(f"{where}.serializer: {encoding!r} is not one of {', '.join(codec.ENCODINGS)}")
            frequency = float(spec["frequency_hz"]) if "frequency_hz" in spec else 1 / float(spec.get("period_s", 1.0))
            if not frequency > 0:
                raise UsageError(f"{where}: frequency_hz must be positive")
            produce, return_type = _generator(where, spec, self.invoke)
            streams[name] = Stream(name, frequency, encoding, produce, return_type, bool(spec.get("enabled", True)))
        self.streamer = Streamer(streams)
        self._reserved: dict[str, dict[str, Callable[..., Any]]] = {
            ROUTER: {
                "get_version": lambda: self.version,
                "enable_stream": self.streamer.enable,
                "disable_stream": self.streamer.disable,
            },
            STREAMER: {
                "enable": self.streamer.enable,
                "disable": self.streamer.disable,
                "get_configuration": self.streamer.get_configuration,
            },
            RPC: {"_call_by_name": self._call_by_name, "__getattribute__": self._rpc_attribute},
        }

    def handle(self, body: bytes, limits: Limits = DEFAULT_LIMITS) -> Outcome:
        """One request body: decoded restricted and within limits, refused with an error reply when
        malformed."""
        try:
            request = codec.decode_request(body, limits)
        except (codec.RequestError, UnsafePickle) as exc:
            return Outcome(False, f"malformed request: {exc}", malformed=str(exc))
        outcome = self.invoke(request.obj, request.attr, request.args, request.kwargs)
        outcome.get_timestamp, outcome.request = request.get_timestamp, request
        return outcome

    def invoke(self, obj: str, attr: str, args: list[Any], kwargs: dict[str, Any]) -> Outcome:
        try:
            value = self._lookup(obj, attr)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  the real server answers every failure of a call with str(exc)
            return Outcome(False, str(exc))
        if isinstance(value, Delay):
            return Outcome(True, None, delay=value.seconds)
        return Outcome(True, value)

    def _lookup(self, obj: str, attr: str) -> Callable[..., Any]:
        if obj in self._reserved:
            methods = self._reserved[obj]
            if attr not in methods:
                raise AttributeError(
                    f"Instance <{obj}> does not have attribute: {attr}. "
                    f"Error: the simulator does not offer {obj}.{attr}"
                )
            return methods[attr]
        if obj not in self.objects:
            raise KeyError(f"{obj} is not present in instances.")
        return self.objects[obj].lookup(attr)

    def _call_by_name(self, name: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> Any:
        """Spec §4.5: supplied positionals replace defaults by index; kwargs update the defaults."""
        if name not in self.named_calls:
            raise KeyError(f"'{name}' is not a named call.")
        call = self.named_calls[name]
        given = list(args or [])
        outcome = self.invoke(call.obj, call.attr, given + call.args[len(given) :], {**call.kwargs, **(kwargs or {})})
        if not outcome.success:
            raise RuntimeError(outcome.value)
        return Delay(outcome.delay) if outcome.delay else outcome.value

    def _rpc_attribute(self, name: str) -> Any:
        if name != "named_call_signatures":
            raise AttributeError(f"'RPCServer' object has no attribute '{name}'")
        return {name: (call.obj, call.attr, call.args, call.kwargs) for name, call in self.named_calls.items()}


def _split_target(where: str, target: str) -> tuple[str, str]:
    obj, dot, attr = str(target).rpartition(".")
    if not dot or not obj or not attr:
        raise UsageError(f"{where}: expected OBJECT.METHOD, got {target!r}")
    return obj, attr
