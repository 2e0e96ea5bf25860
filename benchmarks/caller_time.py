"""How long a caller listens, from the built prompt audio (the .wav files the PBX plays).

Every path a caller can take on each service, to the moment that matters (the tone for a message,
the status being read, the queue, the goodbye), summed for two callers:
- first-time: hears every prompt to the end before pressing a key;
- fluent: presses ahead, so a prompt that listens for keys is heard for REACTION seconds at most;
  prompts that do not listen (the beep, "connecting you") are heard whole.
Typing time is not counted: only what the IVR makes the caller hear.

    PYTHONPATH=. python benchmarks/caller_time.py            # after `didehban prompts build`
"""

from __future__ import annotations

import argparse
import wave
from dataclasses import dataclass
from pathlib import Path

REACTION = 1.0  # seconds of a prompt a fluent caller hears before pressing the key they know
ID_DIGITS = 10


@dataclass(frozen=True)
class Heard:
    """Prompts played as one question; `listens` if a key stops them (a menu, an error prompt, the
    instructions): one key press stops the whole question."""

    prompts: tuple[str, ...]
    listens: bool = True


def say(*prompts: str, listens: bool = True) -> list[Heard]:
    return [Heard((p,), listens) for p in prompts]


def read_back(first: str) -> list[Heard]:
    """The read-back ("you entered", ten digits, the confirm menu) is one question: one key stops it."""
    digits = [f"digit-{d}" for d in (first * ID_DIGITS)[:ID_DIGITS]]
    return [Heard(("you-entered", *digits, "confirm-menu"))]


def paths(service: str) -> dict[str, list[Heard]]:
    welcome = say(f"welcome-{service}", "main-menu")
    to_nid = [*welcome, *say("kind-menu", "urgency-menu", "enter-national-id")]
    tone = [*say("record-instructions"), *say("beep", listens=False)]
    return {
        "new case, to the tone": [*to_nid, *read_back("1"), *tone],
        "new case, ID mistyped once": [
            *to_nid,
            *say("national-id-invalid"),
            *read_back("1"),
            *tone,
        ],
        "new case, ID re-entered at read-back": [
            *to_nid,
            *read_back("1"),
            *say("enter-national-id"),
            *read_back("1"),
            *tone,
        ],
        "new case, silence at a menu": [
            *welcome,
            *say("no-input", "kind-menu"),
            *to_nid[2:],
            *read_back("1"),
            *tone,
        ],
        "status, to the status": [*welcome, *say("enter-tracking-code")],
        "status, code mistyped once": [*welcome, *say("enter-tracking-code", "tracking-code-invalid")],
        "operator, to the queue": [*welcome, *say("operator-connecting", listens=False)],
        "operator, nobody free, to the tone": [
            *welcome,
            *say("operator-connecting", "no-operator-free", listens=False),
            *say("leave-message-after-beep"),
            *say("beep", listens=False),
        ],
        "three failures, to the goodbye": [
            *welcome,
            *say("no-input", "main-menu", "invalid-key", "main-menu", "invalid-key"),
            *say("too-many-failures-goodbye", listens=False),
        ],
    }


def seconds(audio: Path, prompt: str) -> float:
    with wave.open(str(audio / f"{prompt}.wav")) as w:
        return w.getnframes() / w.getframerate()


def heard(audio: Path, path: list[Heard], *, fluent: bool) -> float:
    total = 0.0
    for item in path:
        length = sum(seconds(audio, prompt) for prompt in item.prompts)
        total += min(length, REACTION) if fluent and item.listens else length
    return total


def table(audio: Path) -> str:
    rows = ["| service | path | first-time (s) | fluent (s) |", "|---|---|---:|---:|"]
    for service in ("1482", "111"):
        for name, path in paths(service).items():
            rows.append(
                f"| {service} | {name} | {heard(audio, path, fluent=False):.1f} "
                f"| {heard(audio, path, fluent=True):.1f} |"
            )
    return "\n".join(rows)


def main() -> None:
    from prompts.paths import audio_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=None, help="built prompts (default: prompts/audio/fa)")
    args = parser.parse_args()
    print(table(args.audio or audio_dir()))


if __name__ == "__main__":
    main()
