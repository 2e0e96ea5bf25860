"""Where prompt audio lives, as this host and as Asterisk see it."""

from __future__ import annotations

from pathlib import Path

from ivr.settings import get_settings

LANGUAGE = "fa"


def audio_dir() -> Path:
    """Built audio on this host: <prompts_dir>/audio/fa."""
    return get_settings().prompts_dir / "audio" / LANGUAGE


def prompt_file(prompt_id: str) -> str:
    """Absolute path without extension, as Asterisk sees it (it picks the file needing no transcoding
    for the call: .ulaw or .alaw, else .wav or .wav16)."""
    settings = get_settings()
    base = settings.sounds_dir_on_pbx or str(settings.prompts_dir / "audio")
    return f"{base.rstrip('/')}/{LANGUAGE}/{prompt_id}"


def prompt_id_of(path: str) -> str:
    """The prompt id of a played path (the terminal phone shows the text of what Asterisk would play)."""
    return path.rstrip("/").rsplit("/", 1)[-1]
