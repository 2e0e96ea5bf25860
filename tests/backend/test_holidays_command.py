"""`didehban holidays list|set`: an administrator corrects a computed date (issue 8.16)."""

from __future__ import annotations

import shutil

from backend.cli import main
from domain.profiles import PROJECT_ROOT


def test_set_and_remove_write_the_overrides_file_and_list_shows_them(tmp_path, capsys):
    spec = tmp_path / "iran.yaml"
    shutil.copy(PROJECT_ROOT / "config" / "holidays" / "iran.yaml", spec)
    shutil.copy(PROJECT_ROOT / "config" / "holidays" / "overrides.yaml", tmp_path / "overrides.yaml")
    f = ["--file", str(spec)]
    assert main(["holidays", "list", "--year", "1404", *f]) == 0
    listed = capsys.readouterr().out
    assert "2025-07-05  1404/04/14" in listed and "Ashura" in listed and "2025-03-21  1404/01/01" in listed
    # Iran observed Ashura on 2025-07-06: remove the computed day, add the official one (a Jalali date).
    assert main(["holidays", "set", "--remove", "2025-07-05", *f]) == 0
    assert main(["holidays", "set", "1404/04/15", "--name", "Ashura (official)", *f]) == 0
    written = (tmp_path / "overrides.yaml").read_text(encoding="utf-8")
    assert written.startswith("# Public holidays") and "2025-07-06: Ashura (official)" in written
    capsys.readouterr()
    main(["holidays", "list", "--year", "1404", *f])
    listed = capsys.readouterr().out
    assert "2025-07-05" not in listed and "2025-07-06  1404/04/15  Sun  override  Ashura (official)" in listed
    # Neither a date with a name nor a removal: refused, nothing written.
    assert main(["holidays", "set", "2025-07-07", *f]) == 2
    assert main(["holidays", "set", *f]) == 2
    assert (tmp_path / "overrides.yaml").read_text(encoding="utf-8") == written
