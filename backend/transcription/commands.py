"""`didehban transcriber` (the worker) and `didehban speech` (models, one file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcriber", help="draft every recording with speech recognition (run one per core, anywhere)"
    )
    p.add_argument("--once", action="store_true", help="transcribe one waiting recording and exit")
    p.add_argument("--all", action="store_true", help="with --once: everything waiting, with a progress bar")
    p.add_argument("--status", action="store_true", help="print the backlog, throughput, failures; exit")
    p.add_argument("--idle", type=float, default=5.0, help="seconds to wait when there is nothing to do")
    p.set_defaults(func=_transcriber)

    p = sub.add_parser("speech", help="speech models and transcribing one file")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = actions.add_parser(
        "install-model", help="check a vosk model (folder or .zip) and make it the language's model"
    )
    install.add_argument("source", type=Path, metavar="ZIP_OR_DIR")
    install.add_argument("--lang", default=None, help="language (default: DIDEHBAN_SPEECH_LANGUAGE, fa)")
    install.add_argument("--name", default=None, help="folder name to keep it under (default: the model's)")
    install.add_argument(
        "--skip-load-check", action="store_true", help="check the folders only, do not load it with vosk"
    )
    actions.add_parser("models", help="the model of each language")
    one = actions.add_parser("transcribe", help="print the draft of one WAV file (16-bit mono PCM)")
    one.add_argument("file", type=Path, metavar="FILE")
    one.add_argument("--lang", default=None, help="language (default: DIDEHBAN_SPEECH_LANGUAGE, fa)")
    one.add_argument("--json", action="store_true", help="words with timings and confidences, as JSON")
    p.set_defaults(func=_speech)


def _schema_problem(database_url: str) -> str | None:
    from alembic.script import ScriptDirectory

    from backend.core.migrate import alembic_config, current_revision

    revision = current_revision(database_url)
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    if revision is None:
        return "the database has no schema yet: run `didehban db upgrade` first"
    if revision != head:
        return f"the database schema is at {revision}, the code needs {head}: run `didehban db upgrade` first"
    return None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "none waiting"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def format_backlog(report, model_line: str) -> str:
    lines = [
        model_line,
        f"waiting: {report.waiting} ({report.waiting_messages} messages), working: {report.working}",
        f"oldest waiting message: {_age(report.oldest_waiting_message_age_seconds)}",
        f"last hour: {report.done_last_hour} recordings, "
        f"{report.audio_seconds_last_hour / 60:.1f} min of audio",
        f"failed: {report.failed}",
    ]
    for item in report.failed_items:
        case = f"case {item.tracking_code}" if item.tracking_code else "no case"
        lines.append(
            f"  recording {item.recording_id} ({item.kind}, {case}), {item.attempts} attempts: {item.error}"
        )
    return "\n".join(lines)


def _model_line(settings) -> str:
    from backend.transcription.speech_models import ModelProblem, model_for

    try:
        model = model_for(settings.speech_language, settings)
    except ModelProblem as exc:
        return str(exc)
    return f"speech model for {model.language}: {model.name} ({model.path})"


def _transcriber(args: argparse.Namespace) -> int:
    import datetime as dt
    import logging
    import signal
    import threading

    from backend.core.config import get_settings
    from backend.core.db import get_sessionmaker
    from backend.transcription.queue import backlog
    from backend.transcription.worker import Transcriber

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    problem = _schema_problem(settings.database_url)
    if problem:
        print(f"didehban transcriber: {problem}", file=sys.stderr)
        return 2
    sessions = get_sessionmaker()
    if args.status:
        with sessions() as session:
            print(format_backlog(backlog(session, dt.datetime.now(dt.UTC)), _model_line(settings)))
        return 0
    worker = Transcriber(sessions, settings)
    if args.once:
        if worker.model() is None:
            return 1  # the worker has said why
        if not args.all:
            worker.run_one()
            return 0
        return _run_all(worker, sessions)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.getLogger("transcriber").info("transcriber %s started (%s)", worker.name, _model_line(settings))
    worker.run_forever(stop, idle_seconds=args.idle)
    return 0


def _run_all(worker, sessions) -> int:
    import datetime as dt

    from tqdm import tqdm

    from backend.transcription.queue import backlog, enqueue_new

    with sessions() as session:
        enqueue_new(session, worker.language)
        total = backlog(session, dt.datetime.now(dt.UTC)).waiting
    done = failed = 0
    # Plain ASCII on stdout: it reads the same in a terminal, a log file and over ssh.
    with tqdm(total=total, unit="rec", ascii=True, file=sys.stdout, dynamic_ncols=True) as bar:
        while True:
            outcome = worker.run_one()
            if outcome is None:
                break
            if outcome.status == "done":
                done += 1
                bar.update(1)
            elif outcome.status == "failed":
                failed += 1
                bar.update(1)
            bar.set_postfix(done=done, failed=failed, refresh=False)
    print(f"transcribed {done}, failed {failed}")
    return 0 if failed == 0 else 1


def _speech(args: argparse.Namespace) -> int:
    from backend.core.config import get_settings
    from backend.transcription.speech_models import ModelProblem, install_model, installed_models, model_for

    settings = get_settings()
    language = getattr(args, "lang", None) or settings.speech_language
    if args.action == "install-model":
        try:
            model = install_model(
                args.source, language, settings, name=args.name, check_load=not args.skip_load_check
            )
        except ModelProblem as exc:
            print(f"didehban speech install-model: {exc}", file=sys.stderr)
            return 2
        print(f"installed {model.name} for {language} at {model.path}")
        return 0
    if args.action == "models":
        models = installed_models(settings)
        if not models:
            print(f"no speech model installed (recordings are in {settings.speech_language})")
        for lang, model in models.items():
            print(f"{lang}: {model.name} ({model.path})")
        return 0
    # transcribe
    from backend.transcription.engine import AudioProblem, transcribe_file

    try:
        model = model_for(language, settings)
        draft = transcribe_file(args.file, model.path, model_name=model.name)
    except (ModelProblem, AudioProblem) as exc:
        print(f"didehban speech transcribe: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(draft.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(draft.text)
    return 0
