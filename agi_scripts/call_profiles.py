"""The service profiles as the process-per-call script reads them: a JSON copy of their call fields
(domain.call_profiles) in the node's spool folder, used while the YAML files it was made from are
unchanged (same names, sizes, modification times and inodes), made again from them when not.

Importing the YAML library alone cost a fifth of the script's budget of CPU per call (issue 13);
the copy is read with json, which the spool imports anyway."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from domain.call_profiles import CallProfile, InvalidCallProfile, read_call_profiles

CACHE_NAME = "call-profiles.json"


def _sources(services_dir: Path) -> list[list[Any]]:
    """What the copy was made from: every profile file, with what changes when it is edited."""
    found: list[list[Any]] = []
    if not services_dir.is_dir():
        return found  # no profiles: every call is told its number is unknown, as before
    with os.scandir(services_dir) as entries:
        for entry in entries:
            if entry.name.endswith(".yaml"):
                st = entry.stat()
                found.append([entry.name, st.st_size, st.st_mtime_ns, st.st_ino])
    return sorted(found)


def _read_copy(path: Path, key: dict[str, Any]) -> dict[str, CallProfile] | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") != key:
            return None
        return {number: CallProfile.from_json(data) for number, data in saved["profiles"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InvalidCallProfile):
        return None  # missing, half-written by an older version, or damaged: made again


def _write_copy(path: Path, key: dict[str, Any], profiles: dict[str, CallProfile]) -> None:
    """Written aside and renamed into place: calls starting meanwhile read the old copy or the new."""
    text = json.dumps(
        {"key": key, "profiles": {n: p.to_json() for n, p in profiles.items()}}, ensure_ascii=False
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError:
        # A folder this process may not write: the call goes on from the YAML files.
        temporary.unlink(missing_ok=True)


def call_profiles(services_dir: Path, cache_dir: Path) -> dict[str, CallProfile]:
    """The call profiles of `services_dir` by number, from the copy in `cache_dir` when it is current."""
    key = {"services_dir": str(services_dir.resolve()), "files": _sources(services_dir)}
    path = cache_dir / CACHE_NAME
    profiles = _read_copy(path, key)
    if profiles is None:
        profiles = read_call_profiles(services_dir)
        _write_copy(path, key, profiles)
    return profiles
