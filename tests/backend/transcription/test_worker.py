"""The transcription queue and worker: claims with a lease, retries, poison files, priority, and
several workers never taking one file (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import select

from backend.core.config import get_settings
from backend.core.db import get_sessionmaker
from backend.models import Transcription
from backend.transcription import queue
from backend.transcription.worker import Transcriber
from tests.backend.transcription.conftest import FakeEngine, add_recording, silent_wav


def _worker(engine, **kw) -> Transcriber:
    kw.setdefault("loader", lambda model: None)  # the fake model folder is not a real model
    return Transcriber(get_sessionmaker(), get_settings(), engine=engine, **kw)


def _rows(db) -> dict[int, Transcription]:
    db.expire_all()
    return {t.recording_id: t for t in db.scalars(select(Transcription))}


def test_messages_are_drafted_before_whole_calls(db, fake_model, settings_env):
    call = add_recording(db, kind="call", path="calls/c.wav")
    message = add_recording(db, kind="message", path="m.wav")
    engine = FakeEngine()
    worker = _worker(engine)
    assert worker.run_one().recording_id == message.id  # the newer message first
    assert worker.run_one().recording_id == call.id
    assert worker.run_one() is None
    rows = _rows(db)
    assert rows[message.id].status == rows[call.id].status == "done"
    assert rows[message.id].text == "draft of m.wav"
    assert rows[message.id].words[0] == {"word": "draft", "start": 0.0, "end": 0.4, "conf": 0.9}
    assert rows[message.id].model == "fake-model" and rows[message.id].real_time_factor > 0
    assert rows[message.id].attempts == 1
    assert engine.calls[0] == settings_env / "recordings" / "m.wav"


def test_two_workers_never_transcribe_one_recording(db, fake_model):
    recordings = [add_recording(db, path=f"r{i}.wav") for i in range(12)]
    engine = FakeEngine(seconds=0.02)
    done: list[int] = []
    lock = threading.Lock()

    def work(worker: Transcriber) -> None:
        while (outcome := worker.run_one()) is not None:
            with lock:
                done.append(outcome.recording_id)

    threads = [threading.Thread(target=work, args=(_worker(engine, name=f"w{i}"),)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(done) == sorted(r.id for r in recordings)  # each exactly once
    assert len(engine.calls) == len(recordings)
    rows = _rows(db)
    assert {r.status for r in rows.values()} == {"done"} and {r.attempts for r in rows.values()} == {1}
    assert len({r.worker for r in rows.values()}) > 1  # they did share the work


def test_a_dead_workers_file_is_retried_when_its_lease_runs_out(db, fake_model):
    recording = add_recording(db)
    now = dt.datetime.now(dt.UTC)
    lease = dt.timedelta(minutes=5)
    with get_sessionmaker()() as session:
        # A worker claims the file, then dies: nothing more is written.
        assert queue.enqueue_new(session, "fa") == 1
        assert queue.claim(session, "dead-worker", now, lease, 3) is not None
    engine = FakeEngine()
    alive = _worker(engine, clock=lambda: now + dt.timedelta(minutes=1))
    assert alive.run_one() is None  # the lease still holds: nobody else takes it
    later = _worker(engine, clock=lambda: now + dt.timedelta(minutes=6))
    outcome = later.run_one()
    assert outcome.recording_id == recording.id and outcome.status == "done"
    row = _rows(db)[recording.id]
    assert row.status == "done" and row.attempts == 2 and row.worker == later.name


def test_the_dead_worker_cannot_overwrite_the_retry(db, fake_model):
    add_recording(db)
    now = dt.datetime.now(dt.UTC)
    lease = dt.timedelta(minutes=5)
    with get_sessionmaker()() as session:
        queue.enqueue_new(session, "fa")
        slow = queue.claim(session, "slow", now, lease, 3)
        taken = queue.claim(session, "fast", now + dt.timedelta(minutes=6), lease, 3)
        assert taken is not None and taken.id == slow.id
        # The first worker wakes up: it may neither renew nor store.
        assert not queue.renew(session, slow.id, "slow", now, lease)
        draft = FakeEngine()("x.wav", _M(), lambda: None)
        assert not queue.finish(session, slow.id, "slow", draft, now)


class _M:
    name = "m"


def test_a_poison_file_is_failed_after_three_attempts_and_shown(db, fake_model, settings_env):
    recording = add_recording(db, path="broken.wav")
    (settings_env / "recordings").mkdir(parents=True, exist_ok=True)
    (settings_env / "recordings" / "broken.wav").write_bytes(b"not a wav at all")
    start = dt.datetime.now(dt.UTC)
    clock = {"now": start}
    from backend.transcription.worker import vosk_engine

    worker = _worker(vosk_engine, clock=lambda: clock["now"])
    statuses = []
    for _ in range(5):
        outcome = worker.run_one()
        if outcome is None:
            break
        statuses.append(outcome.status)
        clock["now"] += dt.timedelta(hours=1)  # past the retry pause
    assert statuses == ["waiting", "waiting", "failed"]
    row = _rows(db)[recording.id]
    assert row.status == "failed" and row.attempts == 3 and "not a readable WAV" in row.error
    with get_sessionmaker()() as session:
        report = queue.backlog(session, clock["now"])
    assert report.failed == 1 and report.failed_items[0].recording_id == recording.id


def test_a_file_that_kills_its_workers_is_failed_not_retried_forever(db, fake_model):
    recording = add_recording(db)
    now = dt.datetime.now(dt.UTC)
    lease = dt.timedelta(minutes=5)
    with get_sessionmaker()() as session:
        queue.enqueue_new(session, "fa")
        for attempt in range(3):  # each worker dies mid-file
            assert queue.claim(session, f"w{attempt}", now + attempt * 2 * lease, lease, 3) is not None
    engine = FakeEngine()
    assert _worker(engine, clock=lambda: now + 10 * lease).run_one() is None
    assert engine.calls == []
    row = _rows(db)[recording.id]
    assert row.status == "failed" and "stopped" in row.error


def test_no_model_says_so_once_and_leaves_messages_waiting(db, settings_env, caplog):
    add_recording(db)
    engine = FakeEngine()
    worker = _worker(engine)
    with caplog.at_level(logging.WARNING, logger="transcriber"):
        assert worker.run_one() is None
        assert worker.run_one() is None
    said = [r.getMessage() for r in caplog.records if "no speech model installed for fa" in r.getMessage()]
    assert len(said) == 1 and "didehban speech install-model" in said[0]
    assert engine.calls == []
    with get_sessionmaker()() as session:
        assert queue.backlog(session, dt.datetime.now(dt.UTC)).waiting_messages == 1


def test_a_missing_file_is_retried_then_failed(db, fake_model):
    from backend.transcription.worker import vosk_engine

    recording = add_recording(db, path="gone.wav")
    clock = {"now": dt.datetime.now(dt.UTC)}
    worker = _worker(vosk_engine, clock=lambda: clock["now"])
    assert worker.run_one().status == "waiting"
    assert worker.run_one() is None  # not again before the pause
    row = _rows(db)[recording.id]
    assert "not there" in row.error and row.lease_until > clock["now"]


def test_backlog_counts_and_throughput(db, fake_model, settings_env):
    for i in range(3):
        add_recording(db, path=f"b{i}.wav")
    add_recording(db, kind="call", path="c.wav", case=False)
    silent_wav(settings_env / "recordings" / "x.wav")
    with get_sessionmaker()() as session:
        report = queue.backlog(session, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3))
    assert report.waiting == 4 and report.waiting_messages == 3
    assert report.oldest_waiting_message_age_seconds >= 179
    worker = _worker(FakeEngine())
    worker.run_one()
    with get_sessionmaker()() as session:
        report = queue.backlog(session, dt.datetime.now(dt.UTC))
    assert report.waiting == 3 and report.done_last_hour == 1 and report.audio_seconds_last_hour == 1.0
