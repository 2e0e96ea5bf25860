"""Speech models on this machine: one vosk model per language, installed by hand under the data
folder (`didehban speech install-model`) or named in the settings. Nothing is ever downloaded."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from backend.core.config import Settings

MODELS_FOLDER = "speech-models"
REGISTRY = "models.json"


class ModelProblem(ValueError):
    """A folder or archive that is not a vosk model, or no model for a language."""


@dataclass(frozen=True)
class SpeechModel:
    language: str
    name: str
    path: Path


def models_root(settings: Settings) -> Path:
    return Path(settings.data_dir) / MODELS_FOLDER


def _registry(settings: Settings) -> dict[str, dict[str, str]]:
    path = models_root(settings) / REGISTRY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelProblem(f"the speech model list {path} cannot be read: {exc}") from None
    return data if isinstance(data, dict) else {}


def missing_parts(folder: Path) -> list[str]:
    """What a vosk model folder lacks (empty: it has the layout vosk loads): the acoustic model
    (am/final.mdl), the feature configuration (conf/mfcc.conf) and a decoding graph (graph/HCLG.fst,
    or graph/HCLr.fst with graph/Gr.fst for the small lookahead models)."""
    missing = []
    if not (folder / "am" / "final.mdl").is_file():
        missing.append("am/final.mdl")
    if not (folder / "conf" / "mfcc.conf").is_file():
        missing.append("conf/mfcc.conf")
    graph = folder / "graph"
    if not (graph / "HCLG.fst").is_file() and not (
        (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()
    ):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst and graph/Gr.fst)")
    return missing


def model_root(folder: Path) -> Path:
    """The model inside `folder`: the folder itself, or its one subfolder (archives from
    alphacephei.com hold a single folder named after the model)."""
    if not missing_parts(folder):
        return folder
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    if len(subfolders) == 1 and not missing_parts(subfolders[0]):
        return subfolders[0]
    raise ModelProblem(
        f"{folder.name} is not a vosk model: it lacks {', '.join(missing_parts(folder))} "
        "(expected the folders am/, conf/ and graph/ of a vosk model such as vosk-model-small-fa-0.42)"
    )


def _extract(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                target = (into / member.filename).resolve()
                # A member naming a file outside the folder (../ or absolute) is refused outright.
                if not target.is_relative_to(into.resolve()):
                    raise ModelProblem(f"{archive.name} holds a file outside its folder: {member.filename!r}")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise ModelProblem(f"{archive.name} is not a readable zip archive: {exc}") from None


def install_model(
    source: Path, language: str, settings: Settings, *, name: str | None = None, check_load: bool = True
) -> SpeechModel:
    """Copy (or extract) a model under the data folder and make it the language's model; the
    language's previous model folder is removed once the new one is in place."""
    source = Path(source)
    if not source.exists():
        raise ModelProblem(f"{source} does not exist")
    root = models_root(settings)
    (root / language).mkdir(parents=True, exist_ok=True)
    # Work beside the destination so the final move is a rename, never a half-copied model in use.
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=root / language))
    try:
        if source.is_dir():
            name = name or model_root(source).name
            shutil.copytree(model_root(source), staging / "model", symlinks=False)
            found = staging / "model"
        elif zipfile.is_zipfile(source):
            _extract(source, staging / "unpacked")
            found = model_root(staging / "unpacked")
            name = name or (found.name if found != staging / "unpacked" else source.stem)
        else:
            raise ModelProblem(f"{source.name} is neither a model folder nor a zip archive")
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            raise ModelProblem(f"{name!r} cannot name a model folder")
        if check_load:
            from backend.transcription.engine import load_model

            try:
                load_model(found)
            except Exception as exc:  # vosk says only "Failed to create a model"
                raise ModelProblem(f"vosk could not load {name}: {exc}") from None
        destination = root / language / name
        if destination.exists():
            shutil.rmtree(destination)
        found.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    registry = _registry(settings)
    previous = registry.get(language)
    registry[language] = {
        "name": name,
        "path": str(destination),
        "installed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _write_registry(settings, registry)
    if previous and Path(previous["path"]) != destination:
        old = Path(previous["path"])
        if old.parent == root / language:  # only ever a folder this command made
            shutil.rmtree(old, ignore_errors=True)
    return SpeechModel(language, name, destination)


def _write_registry(settings: Settings, registry: dict) -> None:
    path = models_root(settings) / REGISTRY
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(registry, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def configured_model(language: str, settings: Settings) -> SpeechModel | None:
    """The model named for a language (settings first, then the installed list), whether or not
    its folder is usable; None if none is named."""
    if language in settings.speech_models:
        path = Path(settings.speech_models[language])
        return SpeechModel(language, path.name, path)
    entry = _registry(settings).get(language)
    if entry:
        return SpeechModel(language, entry.get("name") or Path(entry["path"]).name, Path(entry["path"]))
    if settings.vosk_model_path and language == settings.speech_language:
        return SpeechModel(language, Path(settings.vosk_model_path).name, Path(settings.vosk_model_path))
    return None


def model_for(language: str, settings: Settings) -> SpeechModel:
    """The language's usable model, or ModelProblem saying why there is none and what to do."""
    try:
        model = configured_model(language, settings)
    except ModelProblem as exc:
        raise ModelProblem(f"no speech model installed for {language}: {exc}") from None
    hint = f"install one with `didehban speech install-model ZIP_OR_DIR --lang {language}`"
    if model is None:
        raise ModelProblem(f"no speech model installed for {language}: {hint}")
    if not model.path.is_dir() or missing_parts(model.path):
        raise ModelProblem(
            f"no speech model installed for {language}: {model.path} is missing or incomplete; {hint}"
        )
    return model


def model_installed(language: str, settings: Settings) -> bool:
    try:
        model_for(language, settings)
    except ModelProblem:
        return False
    return True


def installed_models(settings: Settings) -> dict[str, SpeechModel]:
    languages = set(settings.speech_models) | set(_registry(settings)) | {settings.speech_language}
    found = {}
    for language in sorted(languages):
        model = configured_model(language, settings)
        if model is not None:
            found[language] = model
    return found
