"""The stream runners on loopback: a client Machine logs in, is woken at its wake_at, reconnects
with backoff when the server drops it; the server gives each peer its own Machine, drops only the
peer that broke something, and Arrivals wakes a wait for a peer within its grace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fieldctl.protocols.core.errors import ConnectFailure
from fieldctl.protocols.core.message import IN, Message, link
from fieldctl.protocols.sdk.machine import Effects, Frame
from fieldctl.protocols.sdk.runners.stream_client import Driven, Link, StreamClient
from fieldctl.protocols.sdk.runners.stream_server import Arrivals, serve_streams
from fieldctl.protocols.transport.backoff import Backoff
from tests.helpers.ports import free_port

DEADLINE_S = 20.0


class Greeter:
    """Server side: answers "login" with "welcome", echoes the rest, breaks on "boom", closes on "bye"."""

    def __init__(self, arrivals: Arrivals, peers: list[Greeter]) -> None:
        self.arrivals, self.peers = arrivals, peers

    def start(self, now: float) -> Effects:
        return Effects()

    def receive(self, frame: Frame, now: float) -> Effects:
        if frame == "login":
            self.peers.append(self)
            self.arrivals.changed()
            return Effects(send=["welcome"])
        if frame == "boom":
            raise ValueError("a frame this machine cannot take")
        if frame == "bye":
            return Effects(close="asked to")
        return Effects(send=[frame])

    def tick(self, now: float) -> Effects:
        return Effects()


class Caller:
    """Client side: logs in, reports ready, then says `said` after a wake-up and closes on its echo."""

    def __init__(self, said: str = "ping") -> None:
        self.said = said

    def start(self, now: float) -> Effects:
        return Effects(send=["login"])

    def receive(self, frame: Frame, now: float) -> Effects:
        if frame == "welcome":
            return Effects(emit=[link("p", "e", "ready")], wake_at=now + 0.05)
        return Effects(emit=[Message("p", "e", IN, "echo", str(frame))], close="done")

    def tick(self, now: float) -> Effects:
        return Effects(send=[self.said])


async def _server(arrivals: Arrivals, peers: list[Greeter], notes: list[str], ended: list[Driven | None]) -> Any:
    async def greeter(link: Link) -> Greeter:
        return Greeter(arrivals, peers)

    return await serve_streams(
        f"ws://127.0.0.1:{free_port()}",
        greeter,
        lambda msg: None,
        notes.append,
        ended=lambda link, machine, driven: ended.append(driven),
    )


def test_a_client_logs_in_is_woken_and_closes_when_its_machine_says_so() -> None:
    async def scenario() -> None:
        arrivals, peers, notes, ended = Arrivals(), [], [], []  # type: ignore[var-annotated]
        server, url = await _server(arrivals, peers, notes, ended)
        shown: list[Message] = []
        try:
            waiting = asyncio.ensure_future(arrivals.until(lambda: bool(peers), DEADLINE_S))
            driven = await asyncio.wait_for(StreamClient(url, shown.append, notes.append).once(Caller(), 5), DEADLINE_S)
            assert await waiting
        finally:
            server.close()
            await server.wait_closed()
        assert driven.reason == "done"
        assert [(m.channel, m.kind) for m in shown] == [("link", "ready"), ("echo", "ping")]
        assert notes == []

    asyncio.run(scenario())


def test_the_server_drops_only_the_peer_whose_frame_broke_its_machine() -> None:
    async def scenario() -> None:
        arrivals, peers, notes, ended = Arrivals(), [], [], []  # type: ignore[var-annotated]
        server, url = await _server(arrivals, peers, notes, ended)
        try:
            client = StreamClient(url, lambda msg: None, lambda text: None)
            broken = asyncio.ensure_future(client.once(Caller("boom"), 5))
            good = await asyncio.wait_for(client.once(Caller(), 5), DEADLINE_S)
            assert (await asyncio.wait_for(broken, DEADLINE_S)).why == "connection closed (1006)"
            assert await arrivals.until(lambda: len(ended) == 2, DEADLINE_S) or len(ended) == 2
        finally:
            server.close()
            await server.wait_closed()
        assert good.reason == "done"
        assert len(notes) == 1 and "dropped: ValueError: a frame this machine cannot take" in notes[0]

    asyncio.run(scenario())


def test_a_kept_client_reconnects_after_the_server_closes_and_stops_when_done() -> None:
    async def scenario() -> None:
        arrivals, peers, notes, ended = Arrivals(), [], [], []  # type: ignore[var-annotated]
        server, url = await _server(arrivals, peers, notes, ended)
        links: list[str] = []
        rounds = iter(["bye", "bye", "ping"])

        async def finished(machine: Caller, driven: Driven) -> bool:
            return driven.reason == "done"

        try:
            await asyncio.wait_for(
                StreamClient(url, lambda msg: None, notes.append).keep(
                    lambda: Caller(next(rounds)),
                    name="e",
                    on_link=lambda name, state, detail: links.append(state),
                    backoff=Backoff(base_s=0.01, cap_s=0.05),
                    done=finished,
                ),
                DEADLINE_S,
            )
        finally:
            server.close()
            await server.wait_closed()
        assert links == ["connected", "disconnected", "retrying"] * 2 + ["connected"]
        assert [d.reason for d in ended] == ["asked to", "asked to", None]
        assert len(peers) == 3

    asyncio.run(scenario())


def test_a_client_gives_up_on_a_server_that_is_not_there_after_the_grace() -> None:
    async def scenario() -> None:
        client = StreamClient(f"ws://127.0.0.1:{free_port()}", lambda msg: None, lambda text: None)
        with pytest.raises(ConnectFailure):
            await asyncio.wait_for(
                client.keep(
                    Caller,
                    name="e",
                    on_link=lambda name, state, detail: None,
                    backoff=Backoff(base_s=0.2, cap_s=0.5),
                    retry_first=False,
                ),
                DEADLINE_S,
            )

    asyncio.run(scenario())


def test_arrivals_wait_no_longer_than_the_grace() -> None:
    async def scenario() -> None:
        arrivals = Arrivals()
        assert not await arrivals.until(lambda: False, 0.05)
        assert await arrivals.until(lambda: True, 0)
        later = asyncio.get_running_loop().call_later(0.05, arrivals.changed)
        seen = iter([False, True])
        assert await arrivals.until(lambda: next(seen), DEADLINE_S)
        later.cancel()

    asyncio.run(scenario())
