"""Keys from the terminal for a live screen (the fleet board): stdin in cbreak mode without echo,
read through the event loop, so a key typed is handled and never drawn into the screen.

Our own, on termios and the loop's add_reader, rather than a TUI library: rich already draws the
screen and what it lacks is input alone; Textual or prompt_toolkit would bring a second renderer,
and a slower start, for it. ISIG stays on, so Ctrl-C is still SIGINT and ends the command as it
did; the terminal's own settings come back on every way out (the `with` block: a normal end, a
signal, an exception), and while Ctrl-Z has it stopped; `fg` quiets it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

#: Escape sequences of the keys a screen uses (xterm, and the VT forms tmux and screen send).
SEQUENCES = {
    "[A": "up",
    "[B": "down",
    "[C": "right",
    "[D": "left",
    "OA": "up",
    "OB": "down",
    "OC": "right",
    "OD": "left",
    "[5~": "pageup",
    "[6~": "pagedown",
    "[H": "home",
    "[F": "end",
    "OH": "home",
    "OF": "end",
    "[1~": "home",
    "[4~": "end",
    "[7~": "home",
    "[8~": "end",
}
NAMED = {"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace", "\t": "tab", "\x15": "ctrl-u"}
#: Seconds a lone ESC waits for the rest of a sequence before it counts as the Escape key.
ESCAPE_WAIT_S = 0.05


def keys_of(text: str) -> tuple[list[str], str]:
    """The keys in `text` and what is left of it (an escape sequence not complete yet). A key is
    a name from SEQUENCES or NAMED, "escape", or the character typed; other sequences are dropped."""
    keys: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char != "\x1b":
            keys.append(NAMED.get(char, char))
            at += 1
            continue
        rest = text[at + 1 :]
        if not rest:
            return keys, text[at:]
        if rest[0] not in "[O":
            keys.append("escape")
            at += 1
            continue
        end = 1  # a CSI sequence ends with a byte in @..~; an SS3 one (ESC O) after one more byte
        while end < len(rest) and (rest[0] == "[" and not "@" <= rest[end] <= "~"):
            end += 1
        if end >= len(rest):
            return keys, text[at:]
        sequence = rest[: end + 1]
        if sequence in SEQUENCES:
            keys.append(SEQUENCES[sequence])
        at += 2 + end
    return keys, ""


class Keys:
    """`with Keys(stdin) as keys:` quiets the terminal (cbreak, no echo) for the block; inside the
    event loop, `keys.reading(on_key)` feeds each key to `on_key`. Nothing happens (`active` is
    False) when stdin is not a terminal, or not ours (in the background): the screen still draws,
    without keys."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        stream = stream or sys.stdin
        self.fd: int | None = None
        try:
            # In the background (`cmd &`), changing the terminal's modes would stop the process (SIGTTOU).
            if stream.isatty() and os.tcgetpgrp(stream.fileno()) == os.getpgrp():
                self.fd = stream.fileno()
        except (ValueError, OSError):  # closed, no file behind it, or no controlling terminal
            pass
        self._saved: list[Any] | None = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def __enter__(self) -> Keys:
        if self.fd is not None:
            import termios

            try:
                self._saved = termios.tcgetattr(self.fd)
            except termios.error:
                self._saved = None
            self._quiet()
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()
        self._saved = None

    def _quiet(self) -> None:
        """cbreak without echo, while the terminal is ours (not after `bg`: that would stop us)."""
        if self._saved is not None and self.fd is not None:
            import termios
            import tty

            with contextlib.suppress(termios.error, OSError):
                if os.tcgetpgrp(self.fd) == os.getpgrp():
                    tty.setcbreak(self.fd, termios.TCSANOW)

    def _restore(self) -> None:
        if self._saved is not None and self.fd is not None:
            import termios

            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    @contextlib.contextmanager
    def reading(self, on_key: Callable[[str], None]) -> Iterator[None]:
        """Each key typed, to `on_key`, on the running loop's thread, until the block ends."""
        fd = self.fd
        if not self.active or fd is None:
            yield
            return
        loop = asyncio.get_running_loop()
        pending = ""
        timer: asyncio.TimerHandle | None = None

        def deliver(keys: list[str]) -> None:
            for key in keys:
                on_key(key)

        def lone_escape() -> None:
            """Nothing followed: an ESC alone is the Escape key; a sequence never completed is dropped."""
            nonlocal pending
            alone, pending = pending == "\x1b", ""
            if alone:
                deliver(["escape"])

        def readable() -> None:
            nonlocal pending, timer
            try:
                data = os.read(fd, 1024)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the terminal went away (hung up): no more keys, and no reading in a loop
                loop.remove_reader(fd)
                return
            if timer is not None:
                timer.cancel()
                timer = None
            keys, pending = keys_of(pending + data.decode("utf-8", "replace"))
            deliver(keys)
            if pending:
                timer = loop.call_later(ESCAPE_WAIT_S, lone_escape)

        def suspend() -> None:
            """Ctrl-Z: the shell gets the terminal as it was, then the process stops."""
            self._restore()
            os.kill(os.getpid(), signal.SIGSTOP)

        loop.add_reader(fd, readable)
        loop.add_signal_handler(signal.SIGTSTP, suspend)
        loop.add_signal_handler(signal.SIGCONT, self._quiet)  # `fg`: the shell gives it back cooked
        try:
            yield
        finally:
            loop.remove_reader(fd)
            loop.remove_signal_handler(signal.SIGTSTP)
            loop.remove_signal_handler(signal.SIGCONT)
            if timer is not None:
                timer.cancel()
