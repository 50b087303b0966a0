"""Labelled images seen through the unknown images' resize (features/channel.py)."""
import shutil

import h5py
import numpy as np
from PIL import Image
from tiny_data import make_data

from ganprov.core.layout import MIN_HELDOUT
from ganprov.features.embed import embed, layout_lists
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.persistence import load_head
from ganprov.pipeline.run_heads import fit_head

# The shared trained run without the embeddings other test files may have written into it.
FRESH = shutil.ignore_patterns("embeddings.h5*")


def resize_folder(folder, size):
    for path in sorted(folder.glob("*.png")):
        Image.open(path).resize((size, size), Image.Resampling.BILINEAR).save(path)


def test_labelled_lists_get_a_twin_only_when_the_unknown_images_are_another_size(tmp_path):
    same = make_data(tmp_path / "same", size=32)
    assert [i.name for i in layout_lists(same, seed=0, min_heldout=MIN_HELDOUT)[1]] == ["real", "generated", "unknown"]

    smaller = make_data(tmp_path / "smaller", size=32)
    resize_folder(smaller / "generated_unknown", 16)
    lists = {i.name: i for i in layout_lists(smaller, seed=0, min_heldout=MIN_HELDOUT)[1]}
    assert set(lists) == {"real", "generated", "unknown", "real_resized", "generated_resized"}
    for name in ("real", "generated"):
        twin = lists[f"{name}_resized"]
        assert twin.through == (16, 16) and twin.resized_from == (32, 32)
        assert twin.paths == lists[name].paths and twin.labels == lists[name].labels
        assert (twin.heldout == lists[name].heldout).all()
        assert twin.files_sha256 != lists[name].files_sha256  # a cached file of the plain rows is not reused

    audit = make_data(tmp_path / "audit", size=32, generated=None)
    resize_folder(audit / "generated_unknown", 64)
    twins = [i for i in layout_lists(audit, seed=0, min_heldout=MIN_HELDOUT)[1] if i.through is not None]
    assert [(i.name, i.through, i.resized_from) for i in twins] == [("real_resized", (64, 64), (32, 32))]


def test_the_twin_holds_the_embeddings_of_the_images_resized_first_and_heads_learn_from_both(trained_run, tmp_path):
    _, trained = trained_run
    data = make_data(tmp_path / "data", size=32, generated=None)
    resize_folder(data / "generated_unknown", 16)
    run = tmp_path / "run"
    shutil.copytree(trained, run, ignore=FRESH)
    embed(data, run, batch_size=4, workers=0)
    # The same real images, resized to 16 px on disk beforehand, embedded as the plain real group.
    by_hand = tmp_path / "by_hand"
    shutil.copytree(data, by_hand)
    for folder in (by_hand / "real").iterdir():
        resize_folder(folder, 16)
    other_run = tmp_path / "other_run"
    shutil.copytree(trained, other_run, ignore=FRESH)
    embed(by_hand, other_run, batch_size=4, workers=0)

    with h5py.File(run / "embeddings.h5", "r") as twin, h5py.File(other_run / "embeddings.h5", "r") as plain:
        assert twin["real_resized"].attrs["through"].tolist() == [16, 16]
        assert "real_resized" not in plain  # its real images are the unknown images' size already
        for key in ("paths", "labels", "heldout"):
            assert (twin[f"real_resized/{key}"][:] == twin[f"real/{key}"][:]).all()
        np.testing.assert_allclose(twin["real_resized/embeddings"][:], plain["real/embeddings"][:], atol=1e-5)
        np.testing.assert_array_equal(twin["real_resized/residuals"][:], plain["real/residuals"][:])
        assert not np.allclose(twin["real_resized/embeddings"][:], twin["real/embeddings"][:], atol=1e-3)

    file = EmbeddingsFile(run / "embeddings.h5")
    plain_rows = EmbeddingsFile(other_run / "embeddings.h5")
    assert file.through == (16, 16) and plain_rows.through is None
    assert file.resized_from == (32, 32) and plain_rows.resized_from is None
    assert len(file.training("real").labels) == 2 * len(plain_rows.training("real").labels)
    assert len(file.validation().labels) == 2 * len(plain_rows.validation().labels) > 0
    # The anatomy the fingerprint head takes out before grouping is read at the unknown images' size.
    np.testing.assert_array_equal(file.real_residuals(), plain_rows.real_residuals())
    assert len(file.real_residuals(rows=3)) <= 3


def test_the_real_images_anatomy_is_taken_out_of_residuals_at_the_unknown_images_size(trained_run, tmp_path):
    _, trained = trained_run
    for size in (16, 64):
        data = make_data(tmp_path / f"data{size}", size=32, generated=None)
        resize_folder(data / "generated_unknown", size)
        run = tmp_path / f"run{size}"
        shutil.copytree(trained, run, ignore=FRESH)
        embed(data, run, batch_size=4, workers=0)
        file = EmbeddingsFile(run / "embeddings.h5")
        assert file.through == (size, size) and file.resized_from == (32, 32)
        np.testing.assert_array_equal(file.real_residuals().astype(np.float16), file.read("real_resized").residuals)
        fit_head(run, "fingerprint")
        head = load_head(run / "heads" / "fingerprint.joblib", file.provenance)[0]
        assert head.content_directions_.shape[1] == file.real_residuals().shape[1]


def test_score_warns_when_a_batch_is_not_at_a_size_the_heads_learned_from(run_copy, tmp_path, capsys):
    from ganprov.pipeline.cli import main

    data, run = run_copy  # tiny data: every image 32 px
    score = ["score", "--run", str(run.path), "--head", "logreg", "--workers", "0"]
    same = shutil.copytree(data / "generated_unknown", tmp_path / "same")
    assert main(score + ["--images", str(same), "--out", str(tmp_path / "same.csv")]) == 0
    assert "warning" not in capsys.readouterr().out
    smaller = shutil.copytree(data / "generated_unknown", tmp_path / "smaller")
    resize_folder(smaller, 16)
    assert main(score + ["--images", str(smaller), "--out", str(tmp_path / "smaller.csv")]) == 0
    out = capsys.readouterr().out
    assert "mostly 16×16 pixels, but the heads learned from labelled images at 32×32" in out


def test_training_rows_hold_each_labelled_image_also_resized_when_the_unknown_images_are_another_size(tmp_path):
    from ganprov.core.layout import discover
    from ganprov.core.settings import TrainSettings
    from ganprov.features.images import load_image
    from ganprov.features.train import training_rows

    data = make_data(tmp_path / "data", size=32)
    settings = TrainSettings(data=str(data), weights="none", image_size=32, train_on="real")
    plain, plain_val = training_rows(discover(data), settings)
    resize_folder(data / "generated_unknown", 16)
    train_set, val_set = training_rows(discover(data), settings)
    n = len(plain)
    assert len(train_set) == 2 * n and len(val_set) == 2 * len(plain_val) > 0
    assert train_set.paths[n:] == train_set.paths[:n] == plain.paths and train_set.labels[n:] == plain.labels
    first = data / train_set.paths[n]
    resized = tmp_path / "resized.png"
    Image.open(first).resize((16, 16), Image.Resampling.BILINEAR).save(resized)
    assert (train_set[n][0] == load_image(resized, 32)).all()  # the twin: resized to 16 px first
    assert (train_set[0][0] == load_image(first, 32)).all()  # the image as it is
