"""The command line: `didehban speech ...` and `didehban transcriber --status / --once --all`."""

from __future__ import annotations

import json

import pytest

from backend.cli import main
from tests.backend.transcription.conftest import add_recording, silent_wav


def test_the_commands_are_registered():
    from didehban_cli import available_commands  # the top-level command holds every part

    assert {"transcriber", "speech"} <= available_commands()


def test_up_starts_a_transcriber():
    import inspect

    from backend import supervise

    assert 'Part("transcriber", _cli("transcriber"))' in inspect.getsource(supervise._up)


def test_install_model_from_the_command_line(settings_env, capsys):
    from tests.backend.transcription.test_models import model_folder

    source = model_folder(settings_env / "vosk-model-small-fa-0.42")
    assert main(["speech", "install-model", str(source), "--lang", "fa", "--skip-load-check"]) == 0
    assert "installed vosk-model-small-fa-0.42 for fa" in capsys.readouterr().out
    assert main(["speech", "models"]) == 0
    assert "fa: vosk-model-small-fa-0.42" in capsys.readouterr().out
    assert main(["speech", "install-model", str(settings_env), "--skip-load-check"]) == 2
    assert "is not a vosk model" in capsys.readouterr().err


def test_transcribe_without_a_model_says_how_to_install_one(settings_env, capsys):
    wav = silent_wav(settings_env / "x.wav")
    assert main(["speech", "transcribe", str(wav)]) == 2
    err = capsys.readouterr().err
    assert "no speech model installed for fa" in err and "didehban speech install-model" in err


@pytest.mark.speech
def test_transcribe_one_file_as_text_and_json(settings_env, ko_model, korean_wav, monkeypatch, capsys):
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_SPEECH_MODELS", json.dumps({"ko": str(ko_model)}))
    clear_caches()
    assert main(["speech", "transcribe", str(korean_wav), "--lang", "ko", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"] and out["words"] and out["real_time_factor"] > 0
    assert {"word", "start", "end", "conf"} == set(out["words"][0])
    assert main(["speech", "transcribe", str(korean_wav), "--lang", "ko"]) == 0
    # Plain text: the draft alone (vosk's result may differ slightly from run to run).
    text = capsys.readouterr().out.strip()
    assert text and "\n" not in text and not text.startswith("{")


def test_status_and_a_batch_run_with_a_progress_bar(db, settings_env, monkeypatch, capsys):
    from backend.transcription import worker as worker_module
    from tests.backend.transcription.conftest import FakeEngine

    assert main(["transcriber", "--status"]) == 0
    out = capsys.readouterr().out
    assert "no speech model installed for fa" in out and "waiting: 0" in out
    for i in range(3):
        add_recording(db, path=f"r{i}.wav")
    assert main(["transcriber", "--once", "--all"]) == 1  # no model: says so, does nothing
    from tests.backend.transcription.test_models import model_folder

    model_folder(settings_env / "m")
    assert main(["speech", "install-model", str(settings_env / "m"), "--skip-load-check"]) == 0
    monkeypatch.setattr(worker_module, "vosk_engine", FakeEngine())
    monkeypatch.setattr(worker_module, "load_model", lambda path: None)
    capsys.readouterr()
    assert main(["transcriber", "--status"]) == 0
    out = capsys.readouterr().out
    assert "speech model for fa: m" in out and "waiting: 3 (3 messages)" in out
    assert "oldest waiting message: 0 min" in out
    assert main(["transcriber", "--once", "--all"]) == 0
    out = capsys.readouterr().out
    assert "3/3" in out and "transcribed 3, failed 0" in out
    assert main(["transcriber", "--status"]) == 0
    out = capsys.readouterr().out
    assert "waiting: 0 (0 messages)" in out and "last hour: 3 recordings" in out
