"""Stage 2 through the command line: embed, fit, predict, evaluate, report, run; and the errors a user meets."""
import csv
import json
import locale
import re
import shutil

import numpy as np
import pytest
from tiny_data import make_data

from ganprov.core.atomic import formula_safe
from ganprov.core.run_folder import RunFolder
from ganprov.features.residual import RESIDUAL_DIM
from ganprov.models import HEADS, make_head
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.persistence import load_head, save_head
from ganprov.pipeline.cli import main

SUBSETS = [1, 2, 3]
PNG = b"\x89PNG\r\n\x1a\n"
SMALL = dict(per_subset=2, unknown=6)  # for whole runs: half the images to train on and embed
TINY = ["--weights", "none", "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "0"]


def unknown_names(data) -> list[str]:
    return sorted(p.name for p in (data / "generated_unknown").iterdir())


def write_truth(data, path):
    """tiny_data draws unknown image i from subset (i % 3) + 1 and names it {i:05d}.png."""
    path.write_text("".join(f"{name},{int(name[:5]) % 3 + 1}\n" for name in unknown_names(data)))
    return path


def read_rows(path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ganprov: error: "), err
    return err


def test_fit_all_writes_every_head_with_its_sidecar(fitted_run):
    _, run = fitted_run
    for name in HEADS:
        sidecar = json.loads((run.heads / f"{name}.json").read_text())
        assert (run.heads / f"{name}.joblib").is_file()
        assert sidecar["info"]["head"] == name and sidecar["info"]["fit_on_requested"] == "auto"
        assert sidecar["info"]["provenance"]["checkpoint_sha256"] == EmbeddingsFile(run.embeddings).provenance["checkpoint_sha256"]


@pytest.mark.parametrize("name", list(HEADS))
def test_submission_csv_has_one_sorted_row_per_unknown_image(fitted_run, name):
    data, run = fitted_run
    rows = read_rows(run.predictions / f"{name}.csv")
    assert [filename for filename, _ in rows] == unknown_names(data)  # no header, sorted, each image once
    # 0: undetermined, from heads that may leave a generator group unattributed
    assert {int(label) for _, label in rows} <= set(SUBSETS) | ({0} if HEADS[name].uses_residuals else set())


@pytest.mark.parametrize("name", list(HEADS))
def test_proba_csv_rows_are_distributions_agreeing_with_the_submission(fitted_run, name):
    _, run = fitted_run
    header, *rows = read_rows(run.predictions / f"{name}.proba.csv")
    grouped = HEADS[name].uses_residuals  # these add each image's generator group
    assert header == ["filename", "p_1", "p_2", "p_3", "label", "confidence"] + (["group"] if grouped else [])
    assert rows and [row[0] for row in rows] == [n for n, _ in read_rows(run.predictions / f"{name}.csv")]
    for row in rows:
        filename, *p, label, confidence = row[:-1] if grouped else row
        p = np.array(p, dtype=float)
        assert p.sum() == pytest.approx(1, abs=1e-4) and (p >= 0).all()
        assert float(confidence) == pytest.approx(p.max())
        assert int(label) in (SUBSETS[int(p.argmax())], 0 if grouped else None)
    labels = [row[4] for row in rows]
    assert labels == [label for _, label in read_rows(run.predictions / f"{name}.csv")]


def test_evaluate_with_truth_prints_the_heads_table_and_writes_figures(fitted_run, tmp_path, capsys):
    data, run = fitted_run
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run.path), "--truth", str(write_truth(data, tmp_path / "truth.csv"))]) == 0
    out = capsys.readouterr().out
    for name in HEADS:
        assert len([line for line in out.splitlines() if re.match(rf"{name}\s+\S+\s+validation\s+6\s", line)]) == 1
        assert len([line for line in out.splitlines() if re.match(rf"{name}\s+\S+\s+unknown\s+6\s", line)]) == 1
        for set_name in ("validation", "unknown"):
            assert (run.evaluation / f"confusion_{name}_{set_name}.png").read_bytes().startswith(PNG)
    results = json.loads((run.evaluation / "metrics.json").read_text())
    assert [(r["head"], r["set"]) for r in results] == [(n, s) for n in HEADS for s in ("validation", "unknown")]
    assert all(r["confusion_labels"][:3] == SUBSETS and 0 <= r["accuracy"] <= 1 for r in results)
    assert (run.evaluation / "pca.png").read_bytes().startswith(PNG)


def test_fit_with_an_unknown_head_name(fitted_run, capsys):
    _, run = fitted_run
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--run", str(run.path), "--head", "bogus"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # argparse: usage, then this line
    assert "invalid choice: 'bogus'" in error and all(name in error for name in HEADS)


def test_a_bad_head_parameter_from_python_is_one_line(run_copy, capsys, monkeypatch):
    """The CLI's options are checked by argparse; a value they let through (here faked) that a head's
    constraints refuse still ends in one line."""
    _, run = run_copy
    monkeypatch.setattr("ganprov.pipeline.cli.head_params", lambda args: {"k": 0})
    assert main(["fit", "--run", str(run.path), "--head", "knn"]) == 2
    assert "The 'k' parameter of KNNHead must be an int in the range [1, inf)" in one_line_error(capsys)


def test_fit_exact_asks_the_knn_head_for_exact_search(run_copy):
    from ganprov.pipeline.run_heads import load_run_head

    _, run = run_copy
    for flags, exact in (([], False), (["--exact"], True)):
        assert main(["fit", "--run", str(run.path), "--head", "knn", *flags]) == 0
        assert load_run_head(run, "knn", EmbeddingsFile(run.embeddings))[0].exact is exact


@pytest.mark.parametrize("head", ["all", "logreg"])
def test_predict_before_fit_says_to_fit(run_copy, capsys, head):
    _, run = run_copy
    shutil.rmtree(run.heads)
    assert main(["predict", "--run", str(run.path), "--head", head]) == 2
    assert "`ganprov fit" in one_line_error(capsys)
    assert main(["evaluate", "--run", str(run.path)]) == 2
    assert "`ganprov fit" in one_line_error(capsys)


def test_a_tampered_head_is_not_unpickled(run_copy, capsys):
    _, run = run_copy
    with open(run.heads / "logreg.joblib", "ab") as handle:
        handle.write(b"\x00 appended")
    assert main(["predict", "--run", str(run.path), "--head", "logreg"]) == 2
    assert "sha256" in one_line_error(capsys)
    assert main(["predict", "--run", str(run.path), "--head", "all"]) == 2  # all includes it
    assert "logreg.joblib" in one_line_error(capsys)


def test_a_head_fit_on_other_embeddings_is_refused(run_copy, capsys):
    _, run = run_copy
    sidecar_path = run.heads / "knn.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["info"]["provenance"]["checkpoint_sha256"] = "0" * 64
    sidecar_path.write_text(json.dumps(sidecar))
    assert main(["evaluate", "--run", str(run.path)]) == 2
    assert "checkpoint_sha256" in one_line_error(capsys)


def test_rows_are_selected_block_by_block_and_residuals_read_only_when_asked(run_copy, monkeypatch):
    """training() and validation() give exactly the rows of the whole groups they select, across several read
    blocks; residuals=False leaves them on disk (no residual dataset is read at all)."""
    import h5py

    import ganprov.models.embeddings as embeddings_module

    _, run = run_copy
    file = EmbeddingsFile(run.embeddings)
    whole = {g: file.read(g) for g in ("real", "generated")}
    monkeypatch.setattr(embeddings_module, "READ_ROWS", 7)  # several blocks, a partial last one
    for fit_on, groups in (("real", ["real"]), ("both", ["real", "generated"])):
        rows = file.training(fit_on)
        expected = [(p, label) for g in groups for p, label, h in
                    zip(whole[g].paths, whole[g].labels, whole[g].heldout) if not h]
        assert list(zip(rows.paths, rows.labels)) == expected and not rows.heldout.any()
        kept = np.concatenate([~whole[g].heldout for g in groups])
        np.testing.assert_array_equal(rows.embeddings, np.concatenate([whole[g].embeddings for g in groups])[kept])
        np.testing.assert_array_equal(rows.residuals, np.concatenate([whole[g].residuals for g in groups])[kept])
    validation = file.validation()
    np.testing.assert_array_equal(validation.embeddings, whole["generated"].embeddings[whole["generated"].heldout])

    opened = []
    original = h5py.Group.__getitem__
    monkeypatch.setattr(h5py.Group, "__getitem__", lambda self, key: opened.append(key) or original(self, key))
    bare = file.training("both", residuals=False)
    assert bare.residuals.shape == (len(rows.labels), 0) and file.validation(residuals=False).residuals.shape[1] == 0
    assert "residuals" not in opened and "embeddings" in opened
    np.testing.assert_array_equal(bare.embeddings, rows.embeddings)


@pytest.mark.parametrize("name", ["logreg", "knn"])
def test_image_by_image_heads_predict_block_by_block_as_on_the_whole_set(run_copy, monkeypatch, name):
    import ganprov.pipeline.predict as predict_module
    from ganprov.models.embeddings import Embeddings
    from ganprov.pipeline.run_heads import load_run_head

    _, run = run_copy
    assert main(["fit", "--run", str(run.path), "--head", name]) == 0
    file = EmbeddingsFile(run.embeddings)
    head, _ = load_run_head(run, name, file)
    read = file.read
    # Rows out of name order, as a file written under torchrun or by an older version may hold them.
    file.read = lambda group, residuals=True: Embeddings(*(column[::-1] for column in vars(read(group, residuals)).values()))
    unknown = file.read("unknown", residuals=False)
    order = np.argsort([predict_module.unknown_filename(p) for p in unknown.paths], kind="stable")
    labels, proba = head.attribute(unknown.embeddings[order])
    monkeypatch.setattr(predict_module, "PREDICT_ROWS", 4)  # several blocks, a partial last one
    assert len(order) > 4 and len(order) % 4
    result = predict_module.attribute(run, name, file)
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_allclose(result.proba[:, [file.subsets.index(c) for c in head.classes_]], proba, rtol=1e-6)


def test_a_head_that_never_saw_a_subset_keeps_the_proba_columns_aligned(run_copy):
    _, run = run_copy
    file = EmbeddingsFile(run.embeddings)
    rows = file.training("both")
    seen = rows.labels != 2
    head = make_head("logreg").fit(rows.embeddings[seen], rows.labels[seen])  # classes_ [1, 3]
    save_head(head, run.heads / "partial.joblib", {"head": "partial", "fit_on": "both", "provenance": file.provenance})
    assert main(["predict", "--run", str(run.path), "--head", "partial"]) == 0
    header, *table = read_rows(run.predictions / "partial.proba.csv")
    assert header == ["filename", "p_1", "p_2", "p_3", "label", "confidence"]
    for _, p1, p2, p3, label, confidence in table:
        assert float(p2) == 0 and float(p1) + float(p3) == pytest.approx(1, abs=1e-4)
        assert label in {"1", "3"} and float(confidence) == pytest.approx(max(float(p1), float(p3)))


def test_run_end_to_end_then_again_with_nothing_left_to_do(tmp_path, capsys):
    data = make_data(tmp_path / "data", **SMALL)
    run = RunFolder(tmp_path / "run")
    command = ["run", "--data", str(data), "--run", str(run.path), *TINY,
               "--truth", str(write_truth(data, tmp_path / "truth.csv"))]
    assert main(command) == 0
    assert run.submission.read_text() == (run.predictions / "fingerprint.csv").read_text()
    assert not run.second_opinion.path.exists()  # the challenge regime: labelled generated images vouch for one backbone
    assert [name for name, _ in read_rows(run.submission)] == unknown_names(data)
    assert run.report.is_file()
    for name in HEADS:
        assert (run.heads / f"{name}.joblib").is_file() and (run.heads / f"{name}.json").is_file()
    assert {r["set"] for r in json.loads((run.evaluation / "metrics.json").read_text())} == {"validation", "unknown"}
    stamps = {path: path.stat().st_mtime_ns for path in (run.checkpoint, run.embeddings, run.heads / "logreg.joblib")}
    capsys.readouterr()

    assert main(command) == 0
    out = capsys.readouterr().out
    assert "already trained" in out and "nothing to do" in out
    assert "fitted " not in out and "epoch 1/1" not in out
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())

    assert main(["report", "--run", str(run.path), "--head", "logreg"]) == 0  # a head that attributes every image
    assert 'alt="reliability diagram unknown"' in run.report.read_text()
    assert run.submission.is_file() and run.report.is_file()


def test_run_in_the_audit_regime_without_generated_images(tmp_path, capsys, monkeypatch):
    from ganprov.pipeline import run_all
    data = make_data(tmp_path / "data", generated=None, **SMALL)
    run = RunFolder(tmp_path / "run")
    agreed, agree = [], run_all.agree  # the tiny data leave every image undetermined: see that agree is called
    monkeypatch.setattr(run_all, "agree", lambda sources, out, **kw: agreed.append((sources, out)) or agree(
        sources, out, **kw))
    assert main(["run", "--data", str(data), "--run", str(run.path), *TINY]) == 0
    assert agreed == [([run.prediction("fingerprint"), run.second_opinion.prediction("fingerprint")], run.submission)]
    printed = capsys.readouterr().out
    assert run.read_config()["train"]["regime"] == "audit"
    rows = read_rows(run.submission)
    assert [name for name, _ in rows] == unknown_names(data) and {int(label) for _, label in rows} <= {0, *SUBSETS}
    results = json.loads((run.evaluation / "metrics.json").read_text())
    assert {r["set"] for r in results} == {"validation"} and {r["fit_on"] for r in results} == {"real"}
    # Held-out real images carry no generator's print: the default head is validated image by image, by the
    # votes of its content head (logreg), not on groups of nothing.
    by_head = {r["head"]: r for r in results}
    assert by_head["fingerprint"]["undetermined"] == 0
    assert by_head["fingerprint"]["accuracy"] == by_head["logreg"]["accuracy"]
    page = run.report.read_text()
    assert "<b>audit</b>" in page and "<h2>Generators in the unknown set</h2>" in page
    verdicts = json.loads((run.predictions / "fingerprint.groups.json").read_text())
    assert sum(v["size"] for v in verdicts) == len(rows)
    for v in verdicts:  # each group's verdict printed, as groups.json holds it
        said = f"subset {v['subset']}" if v["subset"] else "undetermined"
        assert (f"  group {v['group']}: {v['size']} images → {said} (best {v['best']}, support {v['support']:.3f}"
                in printed)
    by_group = {}
    for row in read_rows(run.predictions / "fingerprint.proba.csv")[1:]:
        by_group.setdefault(int(row[-1]), set()).add(int(row[-3]))
    assert all(by_group[v["group"]] == {v["subset"]} for v in verdicts)  # a group's images share its verdict
    head = load_head(run.head("fingerprint"), EmbeddingsFile(run.embeddings).provenance)[0]
    assert head.content_directions_.shape[1] == RESIDUAL_DIM  # the real images' anatomy, taken out to group
    # A second backbone, trained with augmentation, attributes the same images; the submission keeps what both say.
    second = run.second_opinion
    assert second.read_config()["train"]["augment"] and not run.read_config()["train"]["augment"]
    assert second.report.is_file() and second.submission.is_file()
    ours, theirs = dict(read_rows(run.prediction("fingerprint"))), dict(read_rows(second.prediction("fingerprint")))
    assert dict(rows) == {name: label if theirs[name] == label else "0" for name, label in ours.items()}
    assert "<h2>Second opinion</h2>" in page


def test_run_without_a_second_opinion_when_told(tmp_path):
    data = make_data(tmp_path / "data", generated=None, **SMALL)
    run = RunFolder(tmp_path / "run")
    assert main(["run", "--data", str(data), "--run", str(run.path), *TINY, "--no-second-opinion"]) == 0
    assert not run.second_opinion.path.exists()
    assert run.submission.read_text() == run.prediction("fingerprint").read_text()


@pytest.mark.parametrize("name", ["logreg", "fingerprint"])
def test_score_attributes_a_folder_as_predict_attributes_the_unknown_set(run_copy, tmp_path, name):
    """`score` on a copy of generated_unknown/ gives the labels `predict` gave (the fingerprint head groups the
    batch it scores, the same batch here)."""
    data, run = run_copy
    images = shutil.copytree(data / "generated_unknown", tmp_path / "batch")
    out = tmp_path / "scores.csv"
    assert main(["score", "--run", str(run.path), "--head", name, "--images", str(images), "--out", str(out),
                 "--workers", "0"]) == 0
    header, *rows = read_rows(out)
    assert header == ["path", "label", "confidence"]
    predicted = dict(read_rows(run.predictions / f"{name}.csv"))
    assert {path: label for path, label, _ in rows} == predicted
    assert all(0 <= float(confidence) <= 1 for _, _, confidence in rows)


def test_score_with_a_second_opinion_keeps_only_the_labels_both_backbones_give(run_copy, tmp_path, monkeypatch):
    """As `run`'s submission.csv in the audit regime: where RUN/second-opinion has the head, it scores the batch
    too, each backbone writes its own CSV, and --out keeps a label only where both give it."""
    from ganprov.pipeline import score as scoring
    data, run = run_copy
    shutil.copytree(run.path, run.second_opinion.path)  # a second backbone (here the same one) with its heads
    batch = shutil.copytree(data / "generated_unknown", tmp_path / "batch")
    out = tmp_path / "scores.csv"
    command = ["score", "--run", str(run.path), "--head", "logreg", "--images", str(batch), "--out", str(out),
               "--workers", "0"]
    assert main(command) == 0
    first, second = tmp_path / "scores.first.csv", tmp_path / "scores.second-opinion.csv"
    assert (tmp_path / "scores.h5").is_file() and (tmp_path / "scores.second-opinion.h5").is_file()
    predicted = dict(read_rows(run.predictions / "logreg.csv"))
    for path in (out, first, second):  # one backbone twice agrees with itself everywhere
        assert {p: label for p, label, _ in read_rows(path)[1:]} == predicted
    # A second opinion that differs on some images: those get 0, the others keep their label.
    fitted = scoring.fitted_head

    class Contrary:  # the second backbone's head, giving the first two images of each block another subset
        def __init__(self, head):
            self.head = head

        def __getattr__(self, name):
            return getattr(self.head, name)

        def attribute(self, X):
            labels, proba = self.head.attribute(X)
            labels = labels.copy()
            labels[:2] = np.where(labels[:2] == 1, 2, 1)
            return labels, proba

    monkeypatch.setattr(scoring, "fitted_head", lambda r, h, d: Contrary(fitted(r, h, d))
                        if r.path.name == "second-opinion" else fitted(r, h, d))
    assert main(command) == 0
    ours, theirs = ({p: label for p, label, _ in read_rows(path)[1:]} for path in (first, second))
    agreed = {p: (label, float(c)) for p, label, c in read_rows(out)[1:]}
    assert ours == predicted and sum(ours[p] != theirs[p] for p in ours) == 2
    assert {p: label for p, (label, _) in agreed.items()} == {p: ours[p] if ours[p] == theirs[p] else "0" for p in ours}
    confidence = {p: float(c) for p, _, c in read_rows(first)[1:]}
    assert all(c <= confidence[p] + 1e-6 for p, (_, c) in agreed.items())  # the smaller of the two
    # --no-second-opinion: the run's own backbone alone, in --out
    assert main([*command, "--no-second-opinion"]) == 0
    assert {p: label for p, label, _ in read_rows(out)[1:]} == predicted


def test_score_asked_for_a_second_opinion_the_run_does_not_have_says_so(run_copy, tmp_path, capsys):
    data, run = run_copy
    assert main(["score", "--run", str(run.path), "--head", "logreg", "--images", str(data / "generated_unknown"),
                 "--out", str(tmp_path / "s.csv"), "--second-opinion"]) == 2
    assert "second-opinion has no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_score_refuses_heads_fitted_on_another_checkpoint_than_the_one_that_would_embed_the_batch(run_copy, tmp_path,
                                                                                                    capsys):
    import torch

    from ganprov.features.checkpoint import load_raw
    data, run = run_copy
    state = load_raw(run.checkpoint)
    state["meta"]["best_acc"] = -2.0  # trained again since: other bytes, the same loadable checkpoint
    torch.save(state, run.checkpoint)
    out = tmp_path / "s.csv"
    assert main(["score", "--run", str(run.path), "--head", "logreg", "--images", str(data / "generated_unknown"),
                 "--out", str(out), "--workers", "0"]) == 2
    assert "fitted on embeddings of another checkpoint" in capsys.readouterr().err and not out.exists()


def test_score_of_a_new_batch_under_old_file_names_scores_the_new_pixels(run_copy, tmp_path):
    """January's cache must not answer for February: same names, other images."""
    data, run = run_copy
    batch = shutil.copytree(data / "generated_unknown", tmp_path / "batch")
    out, fresh = tmp_path / "scores.csv", tmp_path / "fresh.csv"
    score = ["score", "--run", str(run.path), "--head", "logreg", "--workers", "0"]
    assert main(score + ["--images", str(batch), "--out", str(out)]) == 0
    names = sorted(p.name for p in batch.iterdir())
    for i, name in enumerate(names):  # each file replaced by another one of the batch
        shutil.copyfile(data / "generated_unknown" / names[(i + 1) % len(names)], batch / name)
    assert main(score + ["--images", str(batch), "--out", str(out)]) == 0
    shutil.copytree(batch, tmp_path / "february")
    assert main(score + ["--images", str(tmp_path / "february"), "--out", str(fresh)]) == 0
    assert read_rows(out) == read_rows(fresh)


@pytest.mark.parametrize("out, embeddings, reason", [
    ("run/checkpoint.pt", None, "--out {out} must end in .csv"),
    ("scores.h5", None, "--out {out} must end in .csv"),  # its default embeddings file would be itself
    ("folder.csv", None, "--out {out} is a folder"),
    ("missing/scores.csv", None, "--out {out} is in a folder that does not exist"),
    ("scores.csv", "scores.csv", "--embeddings {embeddings} must end in .h5"),
    ("scores.csv", "missing/scores.h5", "--embeddings {embeddings} is in a folder that does not exist"),
    ("scores.csv", "link.h5", "--embeddings {embeddings} and --out {out} are the same file"),
    ("run/submission.csv", None, "--out {out} is inside the run folder, whose files are the run's own: write "
                                 "scores outside it or under {run}/scores"),
    ("scores.csv", "run/embeddings.h5", "--embeddings {embeddings} is inside the run folder, whose files are the "
                                        "run's own: write scores outside it or under {run}/scores"),
])
def test_score_refuses_an_output_that_would_replace_the_wrong_file(tmp_path, capsys, out, embeddings, reason):
    """Checked before any work: no run, checkpoint or image is needed to be refused."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run/checkpoint.pt").write_bytes(b"weights")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "link.h5").symlink_to(tmp_path / "scores.csv")
    (tmp_path / "images").mkdir()
    out, embeddings = tmp_path / out, embeddings and tmp_path / embeddings
    before = sorted(tmp_path.rglob("*"))
    assert main(["score", "--run", str(tmp_path / "run"), "--head", "logreg", "--images", str(tmp_path / "images"),
                 "--out", str(out)] + (["--embeddings", str(embeddings)] if embeddings else [])) == 2
    assert one_line_error(capsys) == "ganprov: error: " + reason.format(out=out, embeddings=embeddings,
                                                                       run=tmp_path / "run")
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "run/checkpoint.pt").read_bytes() == b"weights"


def test_score_counts_only_the_files_it_scored(run_copy, tmp_path, capsys):
    data, run = run_copy
    images = shutil.copytree(data / "generated_unknown", tmp_path / "batch")
    (images / "broken.png").write_bytes(PNG + b"cut short")
    capsys.readouterr()
    assert main(["score", "--run", str(run.path), "--head", "cosine", "--images", str(images), "--workers", "0"]) == 0
    assert "scored 6 files with cosine (1 unreadable, skipped)" in capsys.readouterr().out
    header, *rows = read_rows(run.path / "scores" / "batch.csv")  # the default --out: RUN/scores/ is made
    assert [path for path, _, _ in rows] == unknown_names(data)


def test_odd_file_names_keep_their_rows_verbatim_for_programs_and_escaped_for_people(trained_run, tmp_path):
    """A carriage return in a name must not split its row, and names that look like formulas are escaped in
    the CSVs people open but kept exactly in the ones the challenge's scorer matches by name."""
    data, trained = trained_run
    data = shutil.copytree(data, tmp_path / "data")
    unknown = data / "generated_unknown"
    for name, source in zip(["=1+1.png", "-x.png", "a\rb.png", "c\nd.png"], sorted(unknown.iterdir())):
        shutil.copyfile(source, unknown / name)
    names = unknown_names(data)
    run = shutil.copytree(trained, tmp_path / "run", ignore=shutil.ignore_patterns("last.pt", "embeddings.h5*"))
    assert main(["embed", "--data", str(data), "--run", str(run), "--batch-size", "8", "--workers", "0"]) == 0
    assert main(["fit", "--run", str(run), "--head", "cosine"]) == 0
    assert main(["predict", "--run", str(run), "--head", "cosine"]) == 0
    assert [name for name, _ in read_rows(run / "predictions/cosine.csv")] == names
    assert [row[0] for row in read_rows(run / "predictions/cosine.proba.csv")[1:]] == names
    assert main(["score", "--run", str(run), "--head", "cosine", "--images", str(unknown), "--out",
                 str(tmp_path / "scores.csv"), "--workers", "0"]) == 0
    assert [row[0] for row in read_rows(tmp_path / "scores.csv")[1:]] == [formula_safe(name) for name in names]
    assert formula_safe("=1+1.png") == "'=1+1.png"


def test_report_on_a_head_never_fitted_names_the_fitted_ones(run_copy, capsys):
    _, run = run_copy
    assert main(["report", "--run", str(run.path), "--head", "nonexistent"]) == 2
    error = one_line_error(capsys)
    assert "'nonexistent'" in error and all(name in error for name in HEADS)
    assert not run.report.exists()


@pytest.fixture
def ascii_locale():
    """A locale whose default text encoding is ASCII, as on a server with LANG=C and no UTF-8 mode."""
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    yield
    locale.setlocale(locale.LC_CTYPE, previous)


def test_report_reads_its_csvs_as_utf8_whatever_the_locale(run_copy, ascii_locale):
    _, run = run_copy
    with open(run.predictions / "logreg.proba.csv", "a", encoding="utf-8") as handle:
        handle.write("tête.png,0.1,0.2,0.7,3,0.700000\n")
    assert main(["report", "--run", str(run.path), "--head", "logreg"]) == 0
    assert run.report.is_file()


def test_generated_images_of_some_subsets_only_are_never_the_heads_only_training_rows(tmp_path, capsys):
    data = make_data(tmp_path / "data", **SMALL)
    shutil.rmtree(data / "generated" / "gen_t3")
    run = RunFolder(tmp_path / "run")
    assert main(["train", "--data", str(data), "--run", str(run.path), *TINY]) == 0
    assert "generated has no images of subset(s) [3]" in capsys.readouterr().err
    assert main(["embed", "--data", str(data), "--run", str(run.path), "--workers", "0"]) == 0
    for head in ("logreg", "fingerprint"):  # fitted on generated images alone, neither could ever name subset 3
        assert main(["fit", "--run", str(run.path), "--head", head]) == 0
        info = json.loads((run.heads / f"{head}.json").read_text())["info"]
        assert info["fit_on"] in ("both", "real") and "generated" not in info["validation_accuracy"]
    capsys.readouterr()
    assert main(["fit", "--run", str(run.path), "--head", "logreg", "--fit-on", "generated"]) == 2
    assert "no images of subset(s) [3]" in capsys.readouterr().err


def test_nothing_held_out_when_each_subset_has_one_generated_image(tmp_path, capsys):
    data = make_data(tmp_path / "data", per_subset=3, unknown=6)
    for folder in (data / "generated").iterdir():
        for image in sorted(folder.iterdir())[1:]:
            image.unlink()
    run = RunFolder(tmp_path / "run")
    assert main(["train", "--data", str(data), "--run", str(run.path), *TINY]) == 0
    assert main(["embed", "--data", str(data), "--run", str(run.path), "--workers", "0"]) == 0
    assert len(EmbeddingsFile(run.embeddings).validation().labels) == 0
    for command in (["fit", "--head", "all"], ["predict", "--head", "all"], ["evaluate"], ["report"]):
        assert main([command[0], "--run", str(run.path), *command[1:]]) == 0, command
    assert json.loads(run.metrics.read_text()) == []  # no validation rows to score, no truth given


def test_a_labelled_folder_with_no_readable_image_is_as_if_absent(tmp_path):
    data = make_data(tmp_path / "data", per_subset=3, unknown=6)
    for image in (data / "generated").rglob("*.png"):
        image.write_bytes(b"not an image")
    run = RunFolder(tmp_path / "run")
    assert main(["train", "--data", str(data), "--run", str(run.path), *TINY]) == 0
    assert main(["embed", "--data", str(data), "--run", str(run.path), "--workers", "0"]) == 0
    assert "generated" not in EmbeddingsFile(run.embeddings).groups
    assert main(["fit", "--run", str(run.path), "--head", "all"]) == 0
    assert {json.loads((run.heads / f"{h}.json").read_text())["info"]["fit_on"] for h in HEADS} == {"real"}
