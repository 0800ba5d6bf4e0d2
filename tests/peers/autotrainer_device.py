"""Peer device for interop tests: runs the REAL ``auto-trainer-api`` (0.12.0) ZeroMQ service.

fieldctl's own fakes could share its misunderstandings of the protocol, so the interop tests talk to the
actual package instead. This script runs in its own venv (``.peers/autotrainer/``) and never imports fieldctl.

Usage::

    python autotrainer_device.py --pub-port P --cmd-port C [--identifier ID]
        [--heartbeat-interval S] [--replies FILE] [--no-delegate]

stdout: one line ``READY`` once both ports accept TCP connections on 127.0.0.1, then one JSON object per
line: ``{"delegate": {...}}`` for every delegate call, ``{"sent": true}`` after each stdin event,
``{"error": "..."}`` for a bad stdin line.
stdin: one JSON object per line: ``{"op": "event", "event": {...}}`` or ``{"op": "stop"}``; EOF also stops.
Exit status: 0 after a clean stop (stdin op, EOF, SIGTERM, SIGINT); 1 if the service did not come up.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from autotrainer.api import (
    ApiCommand,
    ApiCommandRequest,
    ApiCommandRequestResponse,
    ApiCommandRequestResult,
    ApiOptions,
    create_api_service,
)
from autotrainer.api.api_options import RpcOptions

READY_TIMEOUT_S = 10.0
ASYNC_DELAY_S = 0.2

CONFIGURATION: dict[str, Any] = {
    "application_version": "1.0.0-peer",
    "device_id": "peer-0001",
    "configuration_location": "/opt/at/config",
    "data_location": "/data/at",
    "animal_location": "/data/at/animals",
    "log_location": "/var/log/at",
    "inference_model": "/opt/at/model",
}
APPLICATION_MODES = {0, 100, 200, 300, 1000, 1100}
TRAINING_MODES = {0, 100, 200, 300}

EVENT_EMERGENCY_STOP = 101
EVENT_EMERGENCY_RESUME = 102
EVENT_APPLICATION_MODE_CHANGED = 301
EVENT_TRAINING_MODE_CHANGED = 5001
REASON_RPC = 401

_out_lock = threading.Lock()


def emit(obj: Any) -> None:
    """Write one JSON line to stdout (thread-safe, flushed)."""
    line = json.dumps(obj, default=str)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def make_event(kind: int, context: Any) -> dict[str, Any]:
    return {"kind": kind, "when": time.time(), "index": time.perf_counter_ns(), "context": context}


def log_request(request: ApiCommandRequest) -> None:
    emit(
        {
            "delegate": {
                "command": int(request.command),
                "custom_command": request.custom_command,
                "nonce": request.nonce,
                "data": request.data,
            }
        }
    )


def _mode_arg(data: Any) -> Any:
    return data.get("mode") if isinstance(data, dict) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class StatefulDevice:
    """Default delegate: a tiny device with application/training mode and an emergency-stop flag."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.application_mode = 0
        self.training_mode = 0
        self.emergency_stopped = False
        self.lock = threading.Lock()

    def __call__(self, request: ApiCommandRequest) -> ApiCommandRequestResponse:
        log_request(request)
        command = request.command
        R = ApiCommandRequestResult
        if command == ApiCommand.GET_CONFIGURATION:
            return ApiCommandRequestResponse(result=R.SUCCESS, data=dict(CONFIGURATION))
        if command == ApiCommand.GET_STATUS:
            with self.lock:
                return ApiCommandRequestResponse(
                    result=R.SUCCESS,
                    data={
                        "application_mode": self.application_mode,
                        "training_mode": self.training_mode,
                        "animal": None,
                        "alarms": [],
                        "detectors": [],
                    },
                )
        if command == ApiCommand.SET_APPLICATION_MODE:
            mode = _mode_arg(request.data)
            if not _is_int(mode) or mode not in APPLICATION_MODES:
                with self.lock:
                    return ApiCommandRequestResponse(result=R.FAILED, data={"mode": self.application_mode})
            timer = threading.Timer(ASYNC_DELAY_S, self._finish_application_mode, args=(mode, request.nonce))
            timer.daemon = True
            timer.start()
            return ApiCommandRequestResponse(result=R.PENDING_WITH_NOTIFICATION)
        if command == ApiCommand.SET_TRAINING_MODE:
            mode = _mode_arg(request.data)
            with self.lock:
                if not _is_int(mode) or mode not in TRAINING_MODES:
                    return ApiCommandRequestResponse(result=R.FAILED, data={"mode": self.training_mode})
                changed = mode != self.training_mode
                self.training_mode = mode
            if changed:
                self.service.send_event_dict(make_event(EVENT_TRAINING_MODE_CHANGED, {"training_mode": mode}))
            return ApiCommandRequestResponse(result=R.SUCCESS, data={"mode": mode})
        if command == ApiCommand.EMERGENCY_STOP:
            with self.lock:
                self.emergency_stopped = True
            self.service.send_event_dict(
                make_event(EVENT_EMERGENCY_STOP, {"reason": "rpc", "reason_code": REASON_RPC, "active_alarms": []})
            )
            return ApiCommandRequestResponse(result=R.SUCCESS)
        if command == ApiCommand.EMERGENCY_RESUME:
            with self.lock:
                was_stopped = self.emergency_stopped
                self.emergency_stopped = False
            if not was_stopped:
                return ApiCommandRequestResponse(result=R.FAILED, error_code=3, error_message="not in emergency stop")
            self.service.send_event_dict(
                make_event(EVENT_EMERGENCY_RESUME, {"reason": "rpc", "reason_code": REASON_RPC, "resumed_alarms": []})
            )
            return ApiCommandRequestResponse(result=R.SUCCESS)
        return ApiCommandRequestResponse(result=R.UNRECOGNIZED)

    def _finish_application_mode(self, mode: int, nonce: Any) -> None:
        """Runs on a timer thread: event on an actual change, then the COMMAND_RESULT publication."""
        with self.lock:
            changed = mode != self.application_mode
            self.application_mode = mode
        if changed:
            self.service.send_event_dict(make_event(EVENT_APPLICATION_MODE_CHANGED, {"mode": mode}))
        self.service.send_command_result(
            ApiCommandRequestResponse(
                result=ApiCommandRequestResult.SUCCESS,
                data={"mode": mode},
                command=ApiCommand.SET_APPLICATION_MODE,
                nonce=nonce,
            )
        )


def make_table_delegate(path: str) -> Callable[[ApiCommandRequest], ApiCommandRequestResponse]:
    """Delegate answering from a JSON table keyed by str(command int); no state, no events."""
    with open(path, encoding="utf-8") as fh:
        table: dict[str, Any] = json.load(fh)

    def delegate(request: ApiCommandRequest) -> ApiCommandRequestResponse:
        log_request(request)
        entry = table.get(str(int(request.command)))
        if entry is None:
            return ApiCommandRequestResponse(result=ApiCommandRequestResult.UNRECOGNIZED)
        if "raise" in entry:
            raise ValueError(entry["raise"])
        return ApiCommandRequestResponse(
            result=entry.get("result", 0),
            data=entry.get("data"),
            error_code=entry.get("error_code", 0),
            error_message=entry.get("error_message"),
        )

    return delegate


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class _Terminate(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pub-port", type=int, required=True)
    parser.add_argument("--cmd-port", type=int, required=True)
    parser.add_argument("--identifier", default="autotrainer-device")
    parser.add_argument("--heartbeat-interval", type=float, default=5.0)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--replies", metavar="FILE")
    group.add_argument("--no-delegate", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="autotrainer_device %(levelname)s %(name)s: %(message)s"
    )

    # The package only logs a failed bind and carries on silently; refuse up front instead.
    for port in (args.pub_port, args.cmd_port):
        if not port_free(port):
            print(f"autotrainer_device: port {port} already in use on 127.0.0.1", file=sys.stderr)
            return 1

    service = create_api_service(
        ApiOptions(
            rpc=RpcOptions(
                identifier=args.identifier,
                heartbeat_interval=args.heartbeat_interval,  # type: ignore[arg-type]
                subscriber_port=args.pub_port,
                command_port=args.cmd_port,
            )
        )
    )
    assert service is not None
    if args.replies:
        service.command_request_delegate = make_table_delegate(args.replies)
    elif not args.no_delegate:
        service.command_request_delegate = StatefulDevice(service)

    stopping = False

    def on_sigterm(signum: int, frame: Any) -> None:
        if not stopping:
            raise _Terminate()

    signal.signal(signal.SIGTERM, on_sigterm)

    try:
        service.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (port_open(args.pub_port) and port_open(args.cmd_port)):
            if time.monotonic() > deadline:
                print("autotrainer_device: service did not come up", file=sys.stderr)
                return 1
            time.sleep(0.05)
        with _out_lock:
            sys.stdout.write("READY\n")
            sys.stdout.flush()

        while True:
            line = sys.stdin.readline()
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
                op = message.get("op")
                if op == "stop":
                    break
                if op == "event":
                    service.send_event_dict(message["event"])
                    emit({"sent": True})
                else:
                    emit({"error": f"unknown op: {op!r}"})
            except (ValueError, KeyError, TypeError, AttributeError) as ex:
                emit({"error": f"{type(ex).__name__}: {ex}"})
    except (_Terminate, KeyboardInterrupt):
        pass
    finally:
        stopping = True
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
