"""Tab completion in the console: verbs, profiles, the profile's command and event names,
options, and payload field names the profile declares."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from fieldctl.cli.console.session import LINE_VERBS
from fieldctl.cli.roles.verbs import CONSOLE_VERBS, flags
from fieldctl.profiles import available_profiles

if TYPE_CHECKING:
    from fieldctl.cli.console.session import Session


class ConsoleCompleter(Completer):
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        words = text.split()
        current = "" if not words or text[-1].isspace() else words[-1]
        done = words if not current else words[:-1]
        if '"' in current and "--data" in done:
            field = current.rsplit('"', 1)[-1]
            yield from self._matching(self._payload_fields(done), field, suffix='": ')
            return
        yield from self._matching(self._candidates(done, current), current)

    def _candidates(self, done: list[str], current: str) -> Iterable[str]:
        profile = self.session.profile
        if not done:
            return LINE_VERBS
        verb = done[0]
        if current.startswith("--"):
            return flags(verb, profile.protocol) if verb in CONSOLE_VERBS else ()
        if verb == "use" and len(done) == 1:
            return available_profiles()
        if len(done) == 1 and verb == "command":
            return profile.commands
        if len(done) == 1 and verb == "publish":
            return profile.events
        if len(done) == 1 and verb == "listen":
            return ("on", "off")
        if done[-1] == "--filter":
            return [f"channel={name}" for name in profile.channels] + [f"kind={name}" for name in profile.events]
        return ()

    def _payload_fields(self, done: list[str]) -> Iterable[str]:
        spec = self.session.profile.commands.get(done[1]) if len(done) > 1 and done[0] == "command" else None
        return spec.payload if spec is not None else ()

    @staticmethod
    def _matching(candidates: Iterable[str], prefix: str, suffix: str = "") -> Iterator[Completion]:
        for candidate in sorted(candidates):
            if candidate.startswith(prefix):
                yield Completion(candidate + suffix, start_position=-len(prefix), display=candidate)
