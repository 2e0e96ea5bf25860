"""`didehban prompts build`: render the whole catalog, incrementally, on both cores."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from prompts.catalog import TONES, load_catalog
from prompts.paths import LANGUAGE, audio_dir
from prompts.render import TELEPHONE_FORMATS, install_audio, make_tone, render_to

RECORDED_DIR = Path(__file__).with_name("recorded") / LANGUAGE
MANIFEST = ".manifest.json"
# Every file a catalog prompt has: a build from before a format was added makes the missing ones.
SUFFIXES = (".wav", ".wav16", *(suffix for suffix, _ in TELEPHONE_FORMATS))


@dataclass
class BuildReport:
    rendered: list[str] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"prompts: {len(self.rendered)} rendered, {len(self.overridden)} from human recordings, "
            f"{len(self.skipped)} up to date, {len(self.failed)} failed, in {self.seconds:.1f} s"
        )


def _source_key(prompt_id: str, text: str, engine: str, recorded: Path | None) -> str:
    """What the audio is made from; a change re-renders it."""
    if recorded is not None:
        stat = recorded.stat()
        return f"recorded:{stat.st_size}:{stat.st_mtime_ns}"
    return f"{engine}:" + hashlib.sha256(text.encode()).hexdigest()


def build(
    *,
    engine: str = "espeak",
    only: list[str] | None = None,
    out_dir: Path | None = None,
    recorded_dir: Path = RECORDED_DIR,
    workers: int = 4,
) -> BuildReport:
    started = time.monotonic()
    out = out_dir or audio_dir()
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest: dict[str, str] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    catalog = load_catalog()
    unknown = sorted(set(only or []) - set(catalog))
    if unknown:
        raise KeyError(f"no such prompt id: {', '.join(unknown)}")
    report = BuildReport()

    def one(prompt_id: str) -> tuple[str, str, str | None]:
        recorded = recorded_dir / f"{prompt_id}.wav"
        recorded = recorded if recorded.exists() else None
        key = _source_key(prompt_id, catalog[prompt_id], engine, recorded)
        base = out / prompt_id
        if manifest.get(prompt_id) == key and all(Path(f"{base}{suffix}").exists() for suffix in SUFFIXES):
            return prompt_id, "skipped", key
        if recorded is not None:
            install_audio(recorded, base)
            return prompt_id, "overridden", key
        if prompt_id in TONES:
            tone = out / f".tone-{prompt_id}.wav"
            make_tone(tone)
            install_audio(tone, base)
            tone.unlink()
        else:
            render_to(catalog[prompt_id], base, engine=engine)
        return prompt_id, "rendered", key

    ids = only or sorted(catalog)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(one, prompt_id): prompt_id for prompt_id in ids}
        for future, prompt_id in futures.items():
            try:
                _, outcome, key = future.result()
            except Exception as exc:
                report.failed[prompt_id] = str(exc)
                continue
            getattr(report, outcome).append(prompt_id)
            manifest[prompt_id] = key
    manifest_path.write_text(json.dumps(manifest, indent=0, sort_keys=True))
    report.seconds = time.monotonic() - started
    return report
