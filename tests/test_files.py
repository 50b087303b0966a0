"""Files ganprov writes: atomic replacement through unpredictable temporary names, CSV rows that read back as
written, spreadsheet formulas escaped only where people read, and config.toml that reads back any path."""
import csv
import os

import pytest

from ganprov.core import atomic
from ganprov.core.atomic import atomic_path, write_csv, write_text
from ganprov.core.run_folder import RunFolder


def read_rows(path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


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


ODD_ROWS = [["a\rb.png", 1], ["c\nd.png", 2], ["e\r\nf.png", 3], ['q"uote,comma.png', 4], ["tab\t.png", 5],
            ["plain.png", 0.25]]


@pytest.mark.parametrize("escape_formulas", [True, False])
def test_csv_rows_read_back_exactly_as_written(tmp_path, escape_formulas):
    write_csv(tmp_path / "out.csv", ODD_ROWS, ["filename", "label"], escape_formulas=escape_formulas)
    assert read_rows(tmp_path / "out.csv") == [["filename", "label"]] + [[name, str(v)] for name, v in ODD_ROWS]


def test_formulas_are_escaped_for_people_and_kept_verbatim_for_programs(tmp_path):
    rows = [["=1+1.png", "+x", "-x", "@x", "x=1", "'x", ""], [-1, -2.5, "-3", "a", "b", "c", "d"]]
    write_csv(tmp_path / "people.csv", rows)
    assert read_rows(tmp_path / "people.csv") == [["'=1+1.png", "'+x", "'-x", "'@x", "x=1", "'x", ""],
                                                  ["-1", "-2.5", "'-3", "a", "b", "c", "d"]]  # numbers stay numbers
    write_csv(tmp_path / "submission.csv", rows, escape_formulas=False)
    assert read_rows(tmp_path / "submission.csv") == [[str(cell) for cell in row] for row in rows]


STRANGE = ["/data/😀/ct", 'say "hi"', "C:\\data\\new", "line\nbreak\r\ttab", "".join(map(chr, range(32))) + "\x7f",
           "é \u2028 \U0010ffff", "[section]\nkey = 1"]


def test_config_toml_reads_back_every_string(tmp_path):
    run = RunFolder(tmp_path)
    train = {f"s{i}": s for i, s in enumerate(STRANGE)} | {"paths": STRANGE, "epochs": 3, "lr": 1e-4, "amp": True}
    run.write_config("train", train)
    run.write_config("embed", {"data": STRANGE[0]})  # rewriting one section reads the others back first
    assert run.read_config() == {"train": train, "embed": {"data": STRANGE[0]}}
