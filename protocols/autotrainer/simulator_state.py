"""A believable auto-trainer device: the command delegate's state machine, pure (no I/O).

The reply bytes come from the same rules as the real package (spec §6.5): key order, camelCase,
errorKind derived from errorCode, 99999 for unknown commands, nonce 0 for unparseable requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fieldctl.protocols.core.message import Message

from . import codec
from .codec import FAILED, NONE_COMMAND, PENDING_WITH_NOTIFICATION, SUCCESS, UNRECOGNIZED, Vocabulary

APPLICATION_MODES = (0, 100, 200, 300, 1000, 1100)
TRAINING_MODES = (0, 100, 200, 300)
SETTINGS = {  # command code -> (status object, field)
    1000: ("behavior", "isLiveAnalysisEnabled"),
    1010: ("behavior", "isPelletDeliveryEnabled"),
    1020: ("behavior", "isPelletCoverEnabled"),
    1030: ("behavior", "isIntertrialPelletShiftEnabled"),
    1040: ("pelletDevice", "isHomeOnExcessiveDriftEnabled"),
    1050: ("behavior", "isTrianglePelletDistanceDetectionEnabled"),
    1060: ("behavior", "isAutoCloseGateOnIntertrialEnabled"),
    1070: ("behavior", "isAutoClampEnabled"),
    1080: ("pelletDevice", "isTunnelSweepEnabled"),
    1090: ("behavior", "isBatchTrialsEnabled"),
}
AUTO_CLAMP, AUTO_CLAMP_CHANGED = 1070, 1611
RPC_SERVICE_REASON = 401


@dataclass
class RequestEffects:
    """What one request causes: the reply, publications now, and publications after a delay, each
    the outgoing Message that reports it, its frames as `raw` (so nothing is decoded to report it)."""

    reply: Message
    publish: list[Message] = field(default_factory=list)
    later: list[Message] = field(default_factory=list)
    request: codec.DeviceRequest | None = None


class DeviceState:
    def __init__(self, vocab: Vocabulary, configuration: dict[str, Any], async_commands: Sequence[int] = ()) -> None:
        self.vocab = vocab
        self.configuration = dict(configuration)
        self.async_commands = set(async_commands)
        self.known_commands = set(vocab.command_code.values())
        self.application_mode = 0
        self.training_mode = 0
        self.stopped = False
        self.active_alarms: list[int] = []
        self.settings = dict.fromkeys(SETTINGS, False)
        self.trial_id = 0
        self.session_id = ""

    # -- publications -----------------------------------------------------------------------

    def event(self, code: int, context: Any = None) -> list[Message]:
        return codec.publication_messages("event", codec.build_event(code, context), self.vocab)

    def emergency_stop(self, reason: str, reason_code: int) -> list[Message]:
        self.stopped = True
        return self.event(101, {"reason": reason, "reasonCode": reason_code, "activeAlarms": list(self.active_alarms)})

    def emergency_resume(self, reason: str, reason_code: int) -> list[Message]:
        self.stopped = False
        return self.event(102, {"reason": reason, "reasonCode": reason_code, "resumedAlarms": []})

    # -- requests ---------------------------------------------------------------------------

    def handle(self, frames: Sequence[bytes]) -> RequestEffects:
        request = codec.parse_request(frames, self.known_commands, self.vocab.limits.max_depth)
        if request is None:
            return RequestEffects(codec.reply_message(self.vocab, 0, NONE_COMMAND, UNRECOGNIZED))
        result, data, error_code, error_message, publish = self._execute(request)
        nonce, command = request.nonce, request.command
        if command in self.async_commands and result == SUCCESS:
            result_messages = codec.command_result_messages(
                self.vocab, nonce, command, result, data, error_code, error_message
            )
            return RequestEffects(
                codec.reply_message(self.vocab, nonce, command, PENDING_WITH_NOTIFICATION),
                later=publish + result_messages,
                request=request,
            )
        return RequestEffects(
            codec.reply_message(self.vocab, nonce, command, result, data, error_code, error_message),
            publish=publish,
            request=request,
        )

    def _execute(self, request: codec.DeviceRequest) -> tuple[int, Any, int, str | None, list[Message]]:
        command, data = request.command, request.data if isinstance(request.data, dict) else {}
        if command in (120, 130):
            return self._set_mode(command, data.get("mode"))
        if command == 200:
            return SUCCESS, None, 0, None, self.emergency_stop("RpcService", RPC_SERVICE_REASON)
        if command == 210:
            if not self.stopped:
                return FAILED, None, 3, "not in emergency stop", []
            return SUCCESS, None, 0, None, self.emergency_resume("RpcService", RPC_SERVICE_REASON)
        if command == 300:
            return SUCCESS, self.configuration, 0, None, []
        if command == 400:
            return SUCCESS, self.status(), 0, None, []
        if command == 500:
            return SUCCESS, [self.animal()], 0, None, []
        if command in SETTINGS:
            return self._set_setting(command, data.get("enabled"))
        return UNRECOGNIZED, None, 0, None, []

    def _set_mode(self, command: int, mode: Any) -> tuple[int, Any, int, str | None, list[Message]]:
        application = command == 120
        current = self.application_mode if application else self.training_mode
        valid = APPLICATION_MODES if application else TRAINING_MODES
        if isinstance(mode, bool) or mode not in valid:
            return FAILED, {"mode": current}, 0, f"invalid mode {mode!r}", []
        publish: list[Message] = []
        if mode != current:
            if application:
                self.application_mode = mode
                publish = self.event(301, {"mode": mode})
            else:
                self.training_mode = mode
                publish = self.event(5001, {"trainingMode": mode})
        return SUCCESS, {"mode": mode}, 0, None, publish

    def _set_setting(self, command: int, enabled: Any) -> tuple[int, Any, int, str | None, list[Message]]:
        current = self.settings[command]
        if not isinstance(enabled, bool):
            return FAILED, {"enabled": current}, 0, "enabled must be true or false", []
        self.settings[command] = enabled
        publish = (
            self.event(AUTO_CLAMP_CHANGED, {"isEnabled": enabled})
            if command == AUTO_CLAMP and enabled != current
            else []
        )
        return SUCCESS, {"enabled": enabled}, 0, None, publish

    # -- status objects (spec §5.6) -----------------------------------------------------------

    def animal(self) -> dict[str, Any]:
        reach = {
            "pelletsPresented": self.trial_id,
            "pelletsConsumed": self.trial_id // 2,
            "reaches": self.trial_id * 3,
            "successfulReaches": self.trial_id // 2,
        }
        return {
            "identifier": "sim-animal-1",
            "name": "sim-mouse",
            "dcsSendX": 0.0,
            "dcsSendY": 0.0,
            "dcsSendZ": 0.0,
            "targetYLimit": None,
            "reachStatusTotal": reach,
            "reachStatusDay": reach,
        }

    def status(self) -> dict[str, Any]:
        behavior = {"baselineMagnetIntensity": 1.0, "reaches": self.animal()["reachStatusDay"]}
        pellet = {
            "dcsSendX": 0.0,
            "dcsSendY": 0.0,
            "dcsSendZ": 0.0,
            "dcsX": 0.0,
            "dcsY": 0.0,
            "dcsZ": 0.0,
            "loadArm": 0.0,
            "barrierArm": 0.0,
            "isBarrierArmActive": False,
        }
        for code, (target, name) in SETTINGS.items():
            (behavior if target == "behavior" else pellet)[name] = self.settings[code]
        return {
            "applicationMode": self.application_mode,
            "trainingMode": self.training_mode,
            "animal": self.animal(),
            "project": {"dayPath": "/data/autotrainer/sim", "trialId": self.trial_id, "sessionId": self.session_id},
            "alarms": [
                {
                    "alarmId": alarm,
                    "isActive": True,
                    "isEnabled": True,
                    "isAutoResumeEnabled": False,
                    "isStopCondition": True,
                }
                for alarm in self.active_alarms
            ],
            "detectors": [],
            "pelletDevice": pellet,
            "tunnelDevice": {"magnetIntensity": 1.0, "isGateOpen": False, "isFanOn": False},
            "behavior": behavior,
        }
