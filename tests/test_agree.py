"""`ganprov agree`: an image keeps its label only where every run gives the same one."""
from ganprov.pipeline.cli import main
from ganprov.pipeline.truth import read_labels


def write(path, mapping):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name},{label}\n" for name, label in mapping.items()))
    return path


A = {"a.png": 1, "b.png": 2, "c.png": 3, "d.png": 0, "e.png": 2}
B = {"e.png": 2, "d.png": 1, "c.png": 1, "b.png": 2, "a.png": 1}  # another order: matched by name


def test_agreed_labels_are_kept_the_others_become_0(tmp_path, capsys):
    out = tmp_path / "agreed.csv"
    assert main(["agree", str(write(tmp_path / "a.csv", A)), str(write(tmp_path / "b.csv", B)), "--out", str(out)]) == 0
    assert read_labels(out) == {"a.png": 1, "b.png": 2, "c.png": 0, "d.png": 0, "e.png": 2}
    assert out.read_text().splitlines()[0] == "a.png,1"  # sorted by name, no header
    printed = capsys.readouterr().out
    assert "5 images: 3 attributed by every run alike, 2 undetermined" in printed
    assert "3 / 1: 1  (differ → 0)" in printed


def test_a_run_folder_stands_for_its_submission_and_three_sources_must_all_agree(tmp_path):
    run = tmp_path / "run"
    write(run / "submission.csv", A)
    third = dict(A, **{"b.png": 3})
    out = tmp_path / "agreed.csv"
    assert main(["agree", str(run), str(write(tmp_path / "b.csv", B)), str(write(tmp_path / "c.csv", third)),
                 "--out", str(out)]) == 0
    assert read_labels(out) == {"a.png": 1, "b.png": 0, "c.png": 0, "d.png": 0, "e.png": 2}


def test_sources_of_different_images_are_refused_by_name(tmp_path, capsys):
    other = dict(B)
    other["z.png"] = other.pop("e.png")
    out = tmp_path / "agreed.csv"
    assert main(["agree", str(write(tmp_path / "a.csv", A)), str(write(tmp_path / "b.csv", other)),
                 "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "attribute different images" in error and "z.png" in error and "e.png" in error
    assert not out.exists()


def test_one_source_a_missing_file_or_a_bad_row_is_a_clear_error(tmp_path, capsys):
    good = str(write(tmp_path / "a.csv", A))
    out = str(tmp_path / "agreed.csv")
    assert main(["agree", good, "--out", out]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["agree", good, str(tmp_path / "nope.csv"), "--out", out]) == 2
    assert "nope.csv does not exist" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("filename,label\na.png,1\n")
    assert main(["agree", good, str(tmp_path / "bad.csv"), "--out", out]) == 2
    assert "without a header" in capsys.readouterr().err


def test_with_the_truth_each_source_and_the_agreement_are_scored(tmp_path, capsys):
    truth = write(tmp_path / "truth.csv", {"a.png": 1, "b.png": 2, "c.png": 1, "d.png": 2, "e.png": 4})
    out = tmp_path / "agreed.csv"
    assert main(["agree", str(write(tmp_path / "a.csv", A)), str(write(tmp_path / "b.csv", B)), "--out", str(out),
                 "--truth", str(truth)]) == 0
    printed = capsys.readouterr().out
    assert "a.csv: accuracy 0.400, wrong 0.400, undetermined 0.200" in printed  # a, b right; c, e wrong
    assert "b.csv: accuracy 0.600, wrong 0.400, undetermined 0.000" in printed  # a, b, c right; d, e wrong
    assert "agreed (" in printed and "accuracy 0.400, wrong 0.200, undetermined 0.400" in printed
    # subset 4 is given by no run: the truth may still hold it; not the names of another set
    wrong_set = write(tmp_path / "other.csv", {"a.png": 1, "x.png": 2})
    unwritten = tmp_path / "unwritten.csv"
    assert main(["agree", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--out", str(unwritten),
                 "--truth", str(wrong_set)]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert not unwritten.exists()  # refused before anything was written


def test_batches_scored_by_two_runs_are_agreed_by_path(tmp_path, capsys):
    def scored(name, labels):  # as `ganprov score` writes it
        path = tmp_path / name
        path.write_text("path,label,confidence\n" + "".join(f"batch/{n},{label},0.9\n" for n, label in labels.items()))
        return str(path)

    out = tmp_path / "agreed.csv"
    assert main(["agree", scored("a.csv", A), scored("b.csv", B), "--out", str(out)]) == 0
    assert read_labels(out) == {"batch/a.png": 1, "batch/b.png": 2, "batch/c.png": 0, "batch/d.png": 0, "batch/e.png": 2}
    (tmp_path / "bad.csv").write_text("path,label,confidence\nbatch/a.png,one,0.9\n")
    assert main(["agree", scored("a.csv", A), str(tmp_path / "bad.csv"), "--out", str(out)]) == 2
    assert "bad.csv: labels must be whole numbers" in capsys.readouterr().err


def test_with_either_an_undetermined_source_abstains(tmp_path, capsys):
    full = {"a.png": 1, "b.png": 0, "c.png": 3, "d.png": 0, "e.png": 2}  # two agreements, at two resolutions
    half = {"a.png": 1, "b.png": 2, "c.png": 0, "d.png": 0, "e.png": 4}
    out = tmp_path / "either.csv"
    assert main(["agree", str(write(tmp_path / "full.csv", full)), str(write(tmp_path / "half.csv", half)),
                 "--out", str(out), "--either"]) == 0
    assert read_labels(out) == {"a.png": 1, "b.png": 2, "c.png": 3, "d.png": 0, "e.png": 0}
    printed = capsys.readouterr().out
    assert "5 images: 3 attributed with no run giving another subset, 2 undetermined" in printed
    assert "2 / 4: 1  (differ → 0)" in printed and "0 / 2: 1\n" in printed  # an abstention is no difference
    main(["agree", str(tmp_path / "full.csv"), str(tmp_path / "half.csv"), "--out", str(out)])
    assert read_labels(out) == {"a.png": 1, "b.png": 0, "c.png": 0, "d.png": 0, "e.png": 0}  # without: all must give it
