"""Rendering the whole prompt catalog from nothing: how long, how much audio, how many bytes.

.venv/bin/python benchmarks/prompts_build.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DIDEHBAN_PROMPTS_DIR"] = tmp
        from prompts.build import build

        report = build(out_dir=Path(tmp) / "audio" / "fa")
        files = sorted((Path(tmp) / "audio" / "fa").glob("*.wav"))
        seconds = 0.0
        for path in files:
            with wave.open(str(path)) as w:
                seconds += w.getnframes() / w.getframerate()
        size = sum(p.stat().st_size for p in (Path(tmp) / "audio" / "fa").iterdir())
        print(
            f"prompts {len(files)}, failed {len(report.failed)}, build {report.seconds:.2f} s on "
            f"{os.cpu_count()} cores, audio {seconds / 60:.1f} min (8 kHz), files {size / 2**20:.1f} MiB "
            "(8 kHz .wav and 16 kHz .wav16)"
        )
        again = build(out_dir=Path(tmp) / "audio" / "fa")
        print(
            f"second build: {len(again.skipped)} up to date, {len(again.rendered)} rendered, "
            f"{again.seconds:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
