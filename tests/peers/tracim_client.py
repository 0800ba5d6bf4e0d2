"""Peer client for interop tests: the REAL Python SDK ``tracim-daemon-sdk`` (1.0.3) as a plugin.

fieldctl's own client could share its misunderstandings of the protocol, so the interop tests
register the actual package with `fieldctl simulate tracim`. This script runs in its own venv
(``.peers/tracim/``) and never imports fieldctl.

The SDK cannot be imported as published (spec §7, §8 #15): its modules import each other as
top-level modules (``from sdk import ...``), so ``import tracim_daemon_sdk`` fails with
"No module named 'sdk'". The work-around, here only: put the package's own folder on sys.path
and import its modules by their top-level names.

Usage::

    python tracim_client.py --master M --client P

stdout: one JSON object per line: ``{"ready": true}`` once registered, then for every document the
SDK dispatches ``{"type": T, "path": envelope path}`` (plus ``"event_type"`` and ``"event_id"`` for a
daemon_tracim_event) and ``{"log": text}`` for the SDK's own log lines (its pongs).
Exit status 0 after SIGTERM or SIGINT (the SDK then unregisters, and once more from ``__del__``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
from typing import Any


def import_sdk() -> Any:
    spec = importlib.util.find_spec("tracim_daemon_sdk")  # finds the folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("tracim_daemon_sdk is not installed in this interpreter")
    sys.path.insert(0, next(iter(spec.submodule_search_locations)))
    import sdk

    return sdk


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def on_message(_client: Any, event: Any) -> None:
    line = {"type": event.type, "path": event.path}
    if event.type == "daemon_tracim_event" and isinstance(event.data, str):
        tlm = json.loads(event.data)
        line.update(event_type=tlm.get("event_type"), event_id=tlm.get("event_id"))
    say(**line)


def interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # the SDK's loop stops on it while it waits in accept()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--client", required=True)
    args = parser.parse_args()
    sdk = import_sdk()
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    client = sdk.TracimDaemonClient(master_socket_path=args.master, client_socket_path=args.client)
    client.logger = lambda text: say(log=str(text))
    client.event_handlers["custom_message"] = on_message
    client.create_client_socket()
    try:
        client.register_to_master()
        say(ready=True)
        client.listen_to_events()
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
