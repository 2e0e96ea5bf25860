"""The process-per-call script's copy of the profiles' call fields (agi_scripts.call_profiles):
used while the YAML files are unchanged, made again when one changes, appears or goes, and never
trusted when damaged."""

from __future__ import annotations

import os
import shutil

import pytest

import agi_scripts.call_profiles as cache
from agi_scripts.call_profiles import CACHE_NAME, call_profiles
from domain.call_profiles import read_call_profiles
from domain.profiles import PROJECT_ROOT


@pytest.fixture
def services(tmp_path):
    folder = tmp_path / "services"
    shutil.copytree(PROJECT_ROOT / "config" / "services", folder)
    return folder


@pytest.fixture
def reads(monkeypatch):
    """How many times the YAML files were read."""
    count = []

    def counted(directory):
        count.append(directory)
        return read_call_profiles(directory)

    monkeypatch.setattr(cache, "read_call_profiles", counted)
    return count


def test_the_copy_is_used_while_the_files_are_unchanged(services, tmp_path, reads):
    spool = tmp_path / "spool"
    spool.mkdir()
    first = call_profiles(services, spool)
    assert first == read_call_profiles(services) and len(reads) == 1
    assert (spool / CACHE_NAME).stat().st_mode & 0o777 == 0o600
    assert call_profiles(services, spool) == first and len(reads) == 1


def test_an_edited_added_or_removed_profile_is_read_again(services, tmp_path, reads):
    spool = tmp_path / "spool"
    spool.mkdir()
    call_profiles(services, spool)
    path = services / "1482.yaml"
    path.write_text(path.read_text().replace('start: "08:00"', 'start: "09:00"'))
    assert str(call_profiles(services, spool)["1482"].operator_hours.start) == "09:00:00" and len(reads) == 2
    (services / "111.yaml").unlink()
    assert set(call_profiles(services, spool)) == {"1482"} and len(reads) == 3
    shutil.copy(PROJECT_ROOT / "config" / "services" / "111.yaml", services / "111.yaml")
    assert set(call_profiles(services, spool)) == {"1482", "111"} and len(reads) == 4


@pytest.mark.parametrize("damage", ["", "{", '{"key": 1}', '{"key": null, "profiles": []}', "[]"])
def test_a_damaged_copy_is_made_again(services, tmp_path, reads, damage):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / CACHE_NAME).write_text(damage)
    assert set(call_profiles(services, spool)) == {"1482", "111"} and len(reads) == 1
    assert call_profiles(services, spool) and len(reads) == 1


def test_a_copy_that_lies_about_a_profile_is_refused(services, tmp_path, reads):
    spool = tmp_path / "spool"
    spool.mkdir()
    call_profiles(services, spool)
    text = (spool / CACHE_NAME).read_text()
    (spool / CACHE_NAME).write_text(text.replace('"saturday"', '"caturday"', 1))
    assert call_profiles(services, spool)["1482"].operator_hours.days[0] == "saturday" and len(reads) == 2


def test_no_folder_to_write_in_still_answers(services, tmp_path, reads):
    profiles = call_profiles(services, tmp_path / "missing")
    assert set(profiles) == {"1482", "111"}
    assert not (tmp_path / "missing").exists()


def test_no_profiles_folder_is_no_profiles(tmp_path):
    os.mkdir(tmp_path / "spool")
    assert call_profiles(tmp_path / "none", tmp_path / "spool") == {}
