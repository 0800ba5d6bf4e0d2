"""The built-in event timeline: one believable training session after another, forever."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

from .simulator_state import DeviceState

Step = tuple[int, Any]  # (ApiEventKind value, context)


def sessions(state: DeviceState, seed: int = 1) -> Iterator[Step]:
    """Tunnel entry, a session of a few trials with counts, exit; updates the device's project state."""
    rng = random.Random(seed)
    consumed = 0
    while True:
        state.session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield 1101, None  # tunnelEnter
        yield 1331, {"sessionId": state.session_id, "isAnalysisDeferred": False}
        trials = rng.randint(2, 4)
        for _ in range(trials):
            state.trial_id += 1
            trial = {"sessionId": state.session_id, "trialId": state.trial_id}
            yield 1301, {**trial, "reason": "Pellet Seen"}
            yield 1503, {**trial, "batchId": None}
            eaten = rng.random() < 0.6
            consumed += eaten
            yield 1311, {**trial, "result": "analysis_succeeded" if eaten else "capture_only"}
            if eaten:
                yield 1802, {"change": 1, "count": consumed}
        yield 1102, None  # tunnelExit
        yield (
            1332,
            {
                "sessionId": state.session_id,
                "captureTrialCount": trials,
                "analysisTrialCount": trials,
                "failedTrialCount": 0,
            },
        )
        yield 6001, {"detectorId": 101, "isActive": rng.random() < 0.5, "isEnabled": True}
