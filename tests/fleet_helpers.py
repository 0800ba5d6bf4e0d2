"""Simulated devices of every profile on private loopback endpoints, for the fleet tools' tests
(probe --fleet, bench): one `fieldctl simulate` process per device, waited on until bound."""

from __future__ import annotations

from pathlib import Path

from conftest import FIELDCTL, Proc, cli_env, free_port

SECRET = "fleet-test-secret"
#: The secrets the simulators and their clients read (the profiles' [auth] references).
ENV = cli_env(SEPL_PASSWORD=SECRET, CONNECTOR_AUTH_TOKEN=SECRET)


def endpoint_urls(profile: str, folder: Path) -> dict[str, str]:
    """Private endpoints for one device of `profile`; `folder` holds its Unix sockets (keep it short)."""
    port = free_port()
    return {
        "autotrainer": {"events": f"tcp://127.0.0.1:{port}", "commands": f"tcp://127.0.0.1:{free_port()}"},
        "oneliner": {"calls": f"tcp://127.0.0.1:{port}", "streams": f"tcp://127.0.0.1:{free_port()}"},
        "tracim": {"master": f"unix://{folder}/master.sock"},
        "sepl": {"platform": f"ws://127.0.0.1:{port}"},
        "vantiq": {"server": f"ws://127.0.0.1:{port}/api/v1/wsock/websocket"},
    }[profile]


def endpoint_args(urls: dict[str, str]) -> list[str]:
    """Endpoints as --endpoint arguments."""
    return [arg for name, url in urls.items() for arg in ("--endpoint", f"{name}={url}")]


def endpoints(profile: str, folder: Path) -> list[str]:
    """Private endpoints for one device of `profile`, as --endpoint arguments."""
    return endpoint_args(endpoint_urls(profile, folder))


def start_device(profile: str, urls: dict[str, str], *extra: str) -> Proc:
    """`fieldctl simulate PROFILE` on these endpoints, once every one is bound."""
    proc = Proc([*FIELDCTL, "simulate", profile, "--json", *endpoint_args(urls), *extra], env=ENV)
    for name in urls:
        proc.wait_json(lambda m, name=name: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == name)
    return proc
