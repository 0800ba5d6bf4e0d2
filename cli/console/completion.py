"""Tab completion in the console, each offer with what it is beside it (the menu's second
column): verbs and their one-line help, options and theirs, the profile's command and event
names, payload field names the profile declares, connections, profiles and saved targets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from fieldctl.cli.console.session import OWN_VERBS
from fieldctl.cli.framework.vocabulary import FILTER_KEYS, filter_values
from fieldctl.cli.roles.verbs import CONSOLE_VERBS, console_options, summary

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

    def _candidates(self, done: list[str], current: str) -> Mapping[str, str]:
        """Name -> what it is, for the word being typed after `done`."""
        if not done:
            return {
                **{verb: summary(verb) for verb in CONSOLE_VERBS},
                **{verb: text for verb, (_, text) in OWN_VERBS.items()},
            }
        session, verb = self.session, done[0]
        if verb in ("use", "disconnect") and len(done) == 1:
            names = {name: f"{conn.target} connection" for name, conn in session.connections.items()}
            return {**self._sources(), **names} if verb == "use" else names
        if verb == "connect" and len(done) == 2:
            return self._sources()
        if verb == "help" and len(done) == 1:
            return self._candidates([], current)
        if session.current_name is None or verb not in CONSOLE_VERBS:
            return {}
        profile = session.current.profile
        if current.startswith("--"):
            return {flag: text for flag, _, text in console_options(verb, profile.protocol)}
        if len(done) == 1 and verb == "command":
            return {name: spec.help for name, spec in profile.commands.items()}
        if len(done) == 1 and verb == "publish":
            return {name: f"event {value}" for name, value in profile.events.items()}
        if len(done) == 1 and verb == "listen":
            return {"on": "resume the feed", "off": "pause the feed (the subscription stays)"}
        if done[-1] == "--filter":
            key, sep, _ = current.partition("=")
            if not sep:
                return {f"{name}=": "filter key" for name in FILTER_KEYS}
            values = filter_values(profile, key, session.current.client.vocabulary)
            return {f"{key}={name}": text for name, text in values.items()}
        return {}

    def _sources(self) -> dict[str, str]:
        """Profiles and saved targets, what a connection is made to."""
        from fieldctl.profiles import ProfileError, available_profiles
        from fieldctl.profiles.targets import saved_targets

        names = dict.fromkeys(available_profiles(self.session.start_options.files), "profile")
        with contextlib.suppress(ProfileError):  # a broken targets.toml: profiles still complete
            names.update({name: f"target ({target.profile})" for name, target in saved_targets().items()})
        return names

    def _payload_fields(self, done: list[str]) -> Mapping[str, str]:
        if len(done) < 2 or done[0] != "command" or self.session.current_name is None:
            return {}
        spec = self.session.current.profile.commands.get(done[1])
        return dict(spec.payload) if spec is not None else {}

    @staticmethod
    def _matching(candidates: Mapping[str, str], prefix: str, suffix: str = "") -> Iterator[Completion]:
        for candidate in sorted(candidates):
            if candidate.startswith(prefix):
                yield Completion(
                    candidate + suffix,
                    start_position=-len(prefix),
                    display=candidate,
                    display_meta=" ".join(str(candidates[candidate]).split()),
                )
