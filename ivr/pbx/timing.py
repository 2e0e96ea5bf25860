"""How long the IVR speaks, from the built prompt audio: sipp waits exactly as long as a caller would."""

from __future__ import annotations

import wave
from functools import cache

from prompts.paths import audio_dir


@cache
def seconds(prompt_id: str) -> float:
    with wave.open(str(audio_dir() / f"{prompt_id}.wav")) as w:
        return w.getnframes() / w.getframerate()


def total(*prompt_ids: str) -> float:
    return sum(seconds(p) for p in prompt_ids)
