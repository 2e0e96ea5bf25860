"""The IVR node's settings (ivr.settings), read without pydantic (issue 13): the same names, env
files and defaults as before, and a value of the wrong type refused at start-up naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.settings import (
    AGI_ENV_FILE,
    PROJECT_ROOT,
    InvalidSetting,
    IvrSettings,
    NodeNotConfigured,
    agi_settings,
    get_settings,
)


@pytest.fixture(autouse=True)
def no_ivr_environment(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith("DIDEHBAN_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DIDEHBAN_ENV_FILE", raising=False)  # agi_settings() sets it: undone after
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_defaults_and_types():
    s = IvrSettings.from_env(None)
    assert s.fastagi_port == 4573 and s.backend_timeout_seconds == 3.0 and s.node_prefix == ""
    assert s.spool_dir == PROJECT_ROOT / "var" / "spool" and s.pbx_recording_path() == str(s.recordings_dir)


def test_the_environment_wins_over_the_file_and_names_match_in_any_case(monkeypatch, tmp_path):
    env_file = tmp_path / "ivr.env"
    env_file.write_text(
        "# node settings\n"
        "export DIDEHBAN_FASTAGI_PORT=4600\n"
        'didehban_spool_dir="/srv/spool"\n'
        "DIDEHBAN_BACKEND_URL=http://10.0.0.5:8000  # the backend\n"
        "DIDEHBAN_NODE_PREFIX=22\n"
    )
    monkeypatch.setenv("DIDEHBAN_NODE_PREFIX", "23")
    monkeypatch.setenv("Didehban_Delivery_Timeout_Seconds", "2.5")
    s = IvrSettings.from_env(str(env_file))
    assert s.fastagi_port == 4600 and s.spool_dir == Path("/srv/spool")
    assert s.backend_url == "http://10.0.0.5:8000" and s.node_prefix == "23"
    assert s.delivery_timeout_seconds == 2.5
    assert s.model_copy(update={"ivr_token": "rotated"}).ivr_token == "rotated" and s.ivr_token == ""


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DIDEHBAN_FASTAGI_PORT", "45x3", "DIDEHBAN_FASTAGI_PORT: '45x3' is not a whole number"),
        ("DIDEHBAN_DELIVERY_BATCH_SIZE", "2.5", "DIDEHBAN_DELIVERY_BATCH_SIZE: '2.5' is not a whole number"),
        (
            "DIDEHBAN_BACKEND_TIMEOUT_SECONDS",
            "soon",
            "DIDEHBAN_BACKEND_TIMEOUT_SECONDS: 'soon' is not a number",
        ),
        ("DIDEHBAN_NODE_PREFIX", "05", "DIDEHBAN_NODE_PREFIX: a tracking-code prefix is two digits"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSetting, match=message) as refused:
        IvrSettings.from_env(None)
    # The `didehban` command and the AGI script print a NodeNotConfigured as one line, not a traceback.
    assert isinstance(refused.value, NodeNotConfigured)


def test_both_sides_refuse_a_bad_prefix_with_the_same_message(monkeypatch):
    from pydantic import ValidationError

    from backend.core.config import Settings

    message = "a tracking-code prefix is two digits, not starting with 0: '05'"
    with pytest.raises(ValidationError, match=message):
        Settings(node_prefix="05")
    with pytest.raises(ValidationError, match=message.replace("05", "1")):
        Settings(backend_prefix="1")
    with pytest.raises(ValidationError, match=message):
        Settings(node_prefixes="21,05")
    monkeypatch.setenv("DIDEHBAN_NODE_PREFIX", "05")
    with pytest.raises(InvalidSetting, match=message):
        IvrSettings.from_env(None)


def test_an_agi_process_reads_one_settings_file_everywhere(monkeypatch, tmp_path):
    """The prompts' paths read get_settings: in an AGI process it reads the AGI file too, never
    a `.env` in Asterisk's working directory."""
    (tmp_path / ".env").write_text("DIDEHBAN_SOUNDS_DIR_ON_PBX=/stray\n")
    agi_file = tmp_path / "ivr.env"
    agi_file.write_text("DIDEHBAN_SOUNDS_DIR_ON_PBX=/srv/sounds\nDIDEHBAN_NODE_PREFIX=21\n")
    monkeypatch.setenv("DIDEHBAN_ENV_FILE", str(agi_file))
    assert agi_settings().node_prefix == "21"
    assert get_settings().sounds_dir_on_pbx == "/srv/sounds"


@pytest.mark.skipif(Path(AGI_ENV_FILE).exists(), reason="this machine has an AGI settings file")
def test_without_a_named_file_an_agi_process_never_reads_the_working_directory(tmp_path):
    """Fault: the script's settings came from the AGI file, but the prompts' paths (get_settings)
    from a `.env` in Asterisk's working directory."""
    from prompts.paths import prompt_file

    (tmp_path / ".env").write_text("DIDEHBAN_SOUNDS_DIR_ON_PBX=/stray\nDIDEHBAN_NODE_PREFIX=99\n")
    settings = agi_settings()
    assert settings.node_prefix == "" and get_settings().sounds_dir_on_pbx == ""
    assert not prompt_file("welcome-1482").startswith("/stray")
