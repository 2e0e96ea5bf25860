"""`didehban transcriber`: takes recordings from the queue one at a time and drafts them.

One worker keeps one core busy; run one per core (on one machine or several, against the same
database). With no model for the language the worker says so once and leaves the queue alone, and
starts on its own once a model is installed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import Settings
from backend.models import Recording
from backend.transcription import queue
from backend.transcription.engine import AudioProblem, Draft, load_model, transcribe_file
from backend.transcription.speech_models import ModelProblem, SpeechModel, model_for

log = logging.getLogger("transcriber")

# (audio file, model, progress callback) -> draft; tests put a fake engine here.
Engine = Callable[[Path, SpeechModel, Callable[[], None]], Draft]


def vosk_engine(path: Path, model: SpeechModel, on_progress: Callable[[], None]) -> Draft:
    return transcribe_file(path, model.path, model_name=model.name, on_progress=on_progress)


class LeaseLost(RuntimeError):
    """Another worker took the file over (this one was too slow to renew its lease)."""


@dataclass
class Outcome:
    recording_id: int
    status: str  # done | waiting (to be retried) | failed | lost
    draft: Draft | None = None
    error: str | None = None


def recording_file(recording: Recording, settings: Settings) -> Path:
    """Recordings are kept relative to the recordings folder (older call logs may be absolute)."""
    path = Path(recording.path)
    return path if path.is_absolute() else Path(settings.recordings_dir) / path


class Transcriber:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        engine: Engine | None = None,
        loader: Callable[[SpeechModel], object] | None = None,
        name: str | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sessions, self.settings, self.clock = sessions, settings, clock
        self.engine = engine or vosk_engine
        self.loader = loader or (lambda model: load_model(model.path))
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.language = settings.speech_language
        self.lease = dt.timedelta(seconds=settings.transcription_lease_seconds)
        self.max_attempts = settings.transcription_max_attempts
        self._said_no_model: str | None = None

    def model(self) -> SpeechModel | None:
        """The language's model, loaded, or None after saying once (per reason) why there is none.
        A model that will not load is the model's fault: no file is claimed (and failed) for it."""
        try:
            model = model_for(self.language, self.settings)
            try:
                self.loader(model)
            except Exception as exc:
                raise ModelProblem(
                    f"the speech model for {self.language} at {model.path} does not load: {exc}"
                ) from None
        except ModelProblem as exc:
            if self._said_no_model != str(exc):
                log.warning("%s; recordings stay waiting until one is installed", exc)
                self._said_no_model = str(exc)
            return None
        if self._said_no_model is not None:
            log.info("speech model for %s: %s; transcribing", self.language, model.name)
            self._said_no_model = None
        return model

    def run_one(self) -> Outcome | None:
        """Claim and transcribe one recording. None if there is no model or nothing to do."""
        model = self.model()
        if model is None:
            return None
        with self.sessions() as session:
            queue.enqueue_new(session, self.language)
            queue.give_up_abandoned(session, self.clock(), self.max_attempts)
            row = queue.claim(session, self.name, self.clock(), self.lease, self.max_attempts)
            if row is None:
                return None
            recording = session.get(Recording, row.recording_id)
            path = recording_file(recording, self.settings)
            row_id, recording_id, kind = row.id, recording.id, recording.kind
        return self._process(row_id, recording_id, kind, path, model)

    def _process(self, row_id: int, recording_id: int, kind: str, path: Path, model: SpeechModel) -> Outcome:
        renew_every = self.lease.total_seconds() / 3
        last_renewal = time.monotonic()

        def keep_lease() -> None:
            nonlocal last_renewal
            if time.monotonic() - last_renewal < renew_every:
                return
            with self.sessions() as session:
                if not queue.renew(session, row_id, self.name, self.clock(), self.lease):
                    raise LeaseLost(f"recording {recording_id} was taken over by another worker")
            last_renewal = time.monotonic()

        try:
            draft = self.engine(path, model, keep_lease)
        except LeaseLost as exc:
            log.warning("%s; leaving it to that worker", exc)
            return Outcome(recording_id, "lost", error=str(exc))
        except AudioProblem as exc:
            return self._failed(row_id, recording_id, str(exc))
        except Exception as exc:  # any engine error is this file's failure, never the worker's end
            log.exception("recording %s: the engine failed", recording_id)
            return self._failed(row_id, recording_id, f"{type(exc).__name__}: {exc}")
        with self.sessions() as session:
            stored = queue.finish(session, row_id, self.name, draft, self.clock())
        if not stored:
            log.warning("recording %s was taken over by another worker: draft dropped", recording_id)
            return Outcome(recording_id, "lost", draft=draft)
        # Never the draft's words in the log: callers say their names and numbers.
        log.info(
            "recording %s (%s, %.1f s of audio) drafted in %.1f s (%.2fx real time, %.2f s audio per CPU s)"
            ", %d words, model %s",
            recording_id,
            kind,
            draft.audio_seconds,
            draft.wall_seconds,
            draft.real_time_factor or 0.0,
            draft.audio_per_cpu_second or 0.0,
            len(draft.words),
            draft.model,
        )
        return Outcome(recording_id, "done", draft=draft)

    def _failed(self, row_id: int, recording_id: int, error: str) -> Outcome:
        with self.sessions() as session:
            status = queue.fail(session, row_id, self.name, error, self.clock(), self.max_attempts)
        if status == "failed":
            log.error("recording %s failed for good (%d tries): %s", recording_id, self.max_attempts, error)
        else:
            log.warning("recording %s not transcribed (%s); will try again", recording_id, error)
        return Outcome(recording_id, status or "lost", error=error)

    def run_forever(self, stop: threading.Event, *, idle_seconds: float = 5.0) -> None:
        while not stop.is_set():
            try:
                outcome = self.run_one()
            except Exception:  # the database went away, say: wait and try again, do not die
                log.exception("transcriber: an error outside any one file; retrying shortly")
                outcome = None
            if outcome is None:
                stop.wait(idle_seconds)
