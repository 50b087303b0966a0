"""Truth CSVs: header-less `filename,label`, checked against the unknown set with messages naming the bad rows."""
import pytest

from ganprov.core.errors import GanprovError
from ganprov.pipeline.truth import TruthError, read_truth

NAMES = [f"{i:05d}.png" for i in range(8)]
SUBSETS = [1, 2, 3]
GOOD = {name: i % 3 + 1 for i, name in enumerate(NAMES)}


def write(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "truth.csv"
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def lines(mapping):
    return "".join(f"{name},{label}\n" for name, label in mapping.items())


def refused(tmp_path, text) -> str:
    with pytest.raises(TruthError) as caught:
        read_truth(write(tmp_path, text), NAMES, SUBSETS)
    message = str(caught.value)
    assert "\n" not in message  # the CLI prints it as one line
    return message


def test_a_correct_file_is_read(tmp_path):
    assert read_truth(write(tmp_path, lines(GOOD)), NAMES, SUBSETS) == GOOD
    assert issubclass(TruthError, GanprovError)


def test_any_row_order_blank_lines_crlf_and_a_byte_order_mark_are_fine(tmp_path):
    text = "\ufeff" + "\r\n".join(f"{name},{label}" for name, label in reversed(GOOD.items())) + "\r\n\r\n"
    assert read_truth(write(tmp_path, text), NAMES, SUBSETS) == GOOD


def test_missing_file(tmp_path):
    with pytest.raises(TruthError, match="does not exist"):
        read_truth(tmp_path / "nope.csv", NAMES, SUBSETS)


def test_unknown_file_names_are_listed(tmp_path):
    message = refused(tmp_path, lines(GOOD | {"stray.png": 1, "generated_unknown/00001.png": 2}))
    assert "names not in the unknown set: stray.png, generated_unknown/00001.png" in message


def test_missing_names_are_listed_first_five_then_a_count(tmp_path):
    message = refused(tmp_path, lines(dict(list(GOOD.items())[:1])))  # 7 of 8 images without a label
    assert "unknown images without a label: 00001.png, 00002.png, 00003.png, 00004.png, 00005.png (and 2 more)" in message


def test_duplicates_are_listed(tmp_path):
    message = refused(tmp_path, lines(GOOD) + "00003.png,1\n")
    assert "duplicated names: 00003.png" in message


def test_labels_outside_the_subsets_are_listed(tmp_path):
    message = refused(tmp_path, lines(GOOD | {"00002.png": 7, "00004.png": 4}))
    assert "labels outside [0, 1, 2, 3]: 00002.png,7, 00004.png,4" in message


def test_label_0_means_from_no_candidate_subset(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text(lines(GOOD | {"00002.png": 0}))
    assert read_truth(path, list(GOOD), [1, 2, 3])["00002.png"] == 0


def test_several_problems_are_all_named(tmp_path):
    message = refused(tmp_path, lines(dict(list(GOOD.items())[1:]) | {"stray.png": 9}))
    assert "names not in the unknown set: stray.png" in message
    assert "unknown images without a label: 00000.png" in message
    assert "labels outside [0, 1, 2, 3]: stray.png,9" in message


def test_a_header_row_is_refused_with_its_line(tmp_path):
    message = refused(tmp_path, "filename,label\n" + lines(GOOD))
    assert "without a header" in message and "line 1: ['filename', 'label']" in message


@pytest.mark.parametrize("bad, shown", [
    ("00003.png\n", "['00003.png']"),  # one column
    ("00003.png,1,0.9\n", "['00003.png', '1', '0.9']"),  # three columns
    ("00003.png,one\n", "['00003.png', 'one']"),  # not a number
    ("00003.png,-1\n", "['00003.png', '-1']"),
    ("00003.png,²\n", "['00003.png', '²']"),  # a digit to str.isdigit, not to int()
])
def test_malformed_rows_are_refused_with_their_line_numbers(tmp_path, bad, shown):
    rows = lines(GOOD).splitlines(keepends=True)
    text = "".join(rows[:3]) + "\n" + bad + "".join(rows[4:])  # the blank line still counts as a line
    assert f"bad rows: line 5: {shown}" in refused(tmp_path, text)


def test_bytes_that_are_not_utf8_are_refused(tmp_path):
    assert "not a UTF-8 CSV" in refused(tmp_path, lines(GOOD).encode() + b"\xff\xfe,1\n")


def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = write(tmp_path, lines(GOOD))
    real_open = open
    monkeypatch.setattr("builtins.open", lambda file, *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(file))) if str(file) == str(path) else real_open(file, *a, **k))
    with pytest.raises(TruthError, match=f"^{path} cannot be read: Permission denied$"):
        read_truth(path, NAMES, SUBSETS)
