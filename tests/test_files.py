"""Files ganprov writes: atomic replacement through unpredictable temporary names."""
import os

import pytest

from features import atomic
from features.atomic import atomic_path, write_text


def test_a_symlink_planted_at_a_temporary_name_is_not_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "submission.csv"
    (tmp_path / ".submission.csv.tmp").symlink_to(victim)  # the fixed name ganprov used to write through
    write_text(target, "new")
    assert target.read_text() == "new" and not target.is_symlink() and victim.read_text() == "precious"
    names = set()
    for _ in range(2):
        with atomic_path(target) as temporary:
            names.add(temporary.name)
    assert len(names) == 2 and all(n.startswith(".submission.csv.") and n.endswith(".tmp") for n in names)
    # Even a guessed name is not followed: it is created exclusively, or the write stops.
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: "guessed")
    (tmp_path / ".submission.csv.guessed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError), atomic_path(target) as temporary:
        temporary.write_text("through the link")
    assert victim.read_text() == "precious"


def test_a_written_file_gets_the_mode_a_plain_open_gives(tmp_path):
    write_text(tmp_path / "report.html", "page")
    (tmp_path / "plain.html").write_text("page")
    assert (tmp_path / "report.html").stat().st_mode == (tmp_path / "plain.html").stat().st_mode
    assert sorted(os.listdir(tmp_path)) == ["plain.html", "report.html"]  # no temporary left behind
