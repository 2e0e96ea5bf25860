"""The prompt catalog: every prompt id the IVR plays, with its Persian text."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")

# Prompts that are sounds, not speech: made with sox, shown as text by the terminal phone.
TONES = {"beep": "(بوق)"}


def _generated() -> dict[str, str]:
    """Prompts derived from the service profiles and the case life cycle, so they never drift."""
    from domain.case_state import STAGE_FA
    from domain.profiles import profiles_in
    from ivr.settings import get_settings

    entries: dict[str, str] = {}
    for profile in profiles_in(str(get_settings().services_dir)).values():
        for spec, _parent in profile.all_units():
            entries[f"unit-{spec.code}"] = spec.name_fa
        for kind, name in profile.kinds.items():
            entries[f"kind-{kind}"] = name
    for status, text in STAGE_FA.items():
        entries[f"stage-{status.value}"] = text
    return entries


@lru_cache
def load_catalog() -> dict[str, str]:
    texts = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    return {**texts, **_generated(), **TONES}
