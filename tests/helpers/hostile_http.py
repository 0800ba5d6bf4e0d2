"""Hostile HTTP clients in a process of their own, so that their work never takes the time of the
test that measures a server under them.

`python hostile_http.py PORT SECONDS CLIENTS` runs CLIENTS clients sending a request head of 99
headers of 64 KiB each, and CLIENTS trickling a header a second; none ever ends its head, each holds
its connection until the server closes it, then connects again. It prints `flooding` once they run
and, after SECONDS, one JSON line: {"connections": N, "ended_by_server": M}."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.helpers.processes import Proc

#: A header value just under what Python's own http.server reads as one line.
FILLER = b"a" * 65_000


@dataclass
class Tally:
    connections: int = 0
    ended_by_server: int = 0


async def _connected(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection, however long the server takes to accept it."""
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)


async def _oversized(port: int, tally: Tally) -> None:
    while True:
        reader, writer = await _connected(port)
        tally.connections += 1
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\n")
            for number in range(99):
                writer.write(b"X-Big-%02d: %s\r\n" % (number, FILLER))
                await writer.drain()
            while await reader.read(1 << 16):
                pass
            tally.ended_by_server += 1
        except OSError:
            tally.ended_by_server += 1
        finally:
            writer.close()


async def _trickling(port: int, tally: Tally) -> None:
    while True:
        reader, writer = await _connected(port)
        tally.connections += 1
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\n")
            while True:
                try:
                    if not await asyncio.wait_for(reader.read(1 << 16), 1):
                        break
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
        tally.ended_by_server += 1


async def _flood(port: int, seconds: float, clients: int) -> Tally:
    tally = Tally()
    tasks = [asyncio.ensure_future(_oversized(port, tally)) for _ in range(clients)]
    tasks += [asyncio.ensure_future(_trickling(port, tally)) for _ in range(clients)]
    print("flooding", flush=True)
    await asyncio.wait(tasks, timeout=seconds)
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    return tally


def start_flood(port: int, seconds: float, clients: int) -> Proc:
    """2 x `clients` hostile clients against 127.0.0.1:`port` for `seconds`, once they run."""
    from tests.helpers.processes import Proc  # not at the top: run as a script, this file stands alone

    proc = Proc([sys.executable, str(Path(__file__)), str(port), str(seconds), str(clients)])
    proc.wait_line(lambda line: line == "flooding")
    return proc


if __name__ == "__main__":
    port, seconds, clients = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asdict(asyncio.run(_flood(port, seconds, clients)))), flush=True)
