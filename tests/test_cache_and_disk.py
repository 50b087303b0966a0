"""Issue 12: stale caches, full disks, damaged files and subsets that do not match the checkpoint."""
import errno
import os
import shutil

import h5py
import numpy as np
import pytest
from PIL import Image
from tiny_data import make_data

from ganprov.core import disk
from ganprov.core.run_folder import RunFolder
from ganprov.features import store
from ganprov.features.embed import EmbeddingError, StaleEmbeddings, embed
from ganprov.pipeline.cli import main


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """The shared trained run and a private copy of its data, both writable."""
    data, run = trained_run
    data = shutil.copytree(data, tmp_path / "data")
    run = shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("embeddings.h5*", "skipped.csv"))
    return data, RunFolder(run)


def rows(path, group="unknown"):
    with h5py.File(path, "r") as handle:
        return {p.decode(): e for p, e in zip(handle[group]["paths"][:], handle[group]["embeddings"][:])}


def test_other_pixels_under_the_same_name_make_the_file_stale(run_copy):
    data, run = run_copy
    embed(data, run.path, batch_size=4, workers=0)
    name = "generated_unknown/00000.png"
    before = rows(run.embeddings)[name]
    Image.fromarray(np.full((32, 32), 200, np.uint8)).save(data / name)  # same name, other pixels
    with pytest.raises(StaleEmbeddings, match="modification times"):
        embed(data, run.path, batch_size=4, workers=0)
    embed(data, run.path, batch_size=4, workers=0, force=True)
    assert not np.allclose(rows(run.embeddings)[name], before)


def test_a_damaged_embeddings_file_is_one_line_and_embed_redoes_it(run_copy, capsys):
    data, run = run_copy
    embed(data, run.path, batch_size=4, workers=0)
    expected = rows(run.embeddings)
    with open(run.embeddings, "r+b") as handle:
        handle.truncate(os.path.getsize(run.embeddings) // 2)
    capsys.readouterr()
    assert main(["fit", "--run", str(run.path), "--head", "logreg"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganprov: error: ") and "damaged" in err and len(err.splitlines()) == 1
    embed(data, run.path, batch_size=4, workers=0)
    assert "damaged" in capsys.readouterr().out
    redone = rows(run.embeddings)
    assert redone.keys() == expected.keys() and all(np.allclose(redone[k], expected[k]) for k in expected)


def test_data_with_other_subsets_than_the_checkpoint_is_refused(trained_run, tmp_path):
    _, run = trained_run
    other = make_data(tmp_path / "other", subsets=(1, 2, 4))
    copy = RunFolder(shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("embeddings.h5*")))
    with pytest.raises(EmbeddingError, match=r"subsets \[1, 2, 4\].*trained on \[1, 2, 3\]"):
        embed(other, copy.path, batch_size=4, workers=0)
    assert not copy.embeddings.exists()


def test_the_file_records_where_its_images_are_for_the_report(run_copy, tmp_path):
    data, run = run_copy
    embed(data, run.path, batch_size=4, workers=0)
    moved = shutil.move(data, tmp_path / "moved")  # same files: kept, and pointed at their new place
    embed(moved, run.path, batch_size=4, workers=0)
    with h5py.File(run.embeddings, "r") as handle:
        assert handle.attrs["data_root"] == str(moved.resolve())


def test_a_subset_with_no_readable_image_is_an_error_not_a_missing_class(run_copy, capsys):
    data, run = run_copy
    for path in (data / "real" / "t2").iterdir():
        path.write_bytes(b"not an image")
    assert main(["embed", "--data", str(data), "--run", str(run.path), "--workers", "0"]) == 2
    assert "real subset(s) [2]" in capsys.readouterr().err
    assert run.embeddings.exists() and run.skipped.exists()  # the good rows and the reasons stay


def test_too_little_space_is_refused_up_front_in_one_line(run_copy, monkeypatch, capsys):
    data, run = run_copy
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 100_000)
    assert main(["embed", "--data", str(data), "--run", str(run.path), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no space left on device" in err and "MiB free" in err


def test_a_disk_that_fills_mid_write_stops_in_one_line_and_the_rerun_resumes(run_copy, monkeypatch, capsys):
    data, run = run_copy
    reference = run.path.parent / "reference"
    shutil.copytree(run.path, reference)
    embed(data, reference, batch_size=4, workers=0)
    real_append, calls = store.append, []

    def append_until_full(*args):
        calls.append(1)
        if len(calls) == 14:  # in the third batch (six appends a batch)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(*args)

    monkeypatch.setattr(store, "append", append_until_full)
    capsys.readouterr()
    assert main(["embed", "--data", str(data), "--run", str(run.path), "--workers", "0", "--batch-size", "4"]) == 2
    assert "no space left on device" in capsys.readouterr().err
    monkeypatch.setattr(store, "append", real_append)
    summary = embed(data, run.path, batch_size=4, workers=0)  # no --force: two batches were kept
    assert summary["embedded"] == sum(len(rows(reference / "embeddings.h5", g)) for g in ("real", "generated", "unknown")) - 8
    for group in ("real", "generated", "unknown"):
        resumed, expected = rows(run.embeddings, group), rows(reference / "embeddings.h5", group)
        assert list(resumed) == list(expected) and all(np.array_equal(resumed[k], expected[k]) for k in expected)


def test_a_full_disk_under_any_atomic_write_is_one_sentence(tmp_path, monkeypatch):
    """torch.save on a full disk says "unexpected pos"; HDF5 and open() say errno 28: all become OutOfSpace."""
    from ganprov.core.atomic import atomic_path

    monkeypatch.setattr(disk, "free_bytes", lambda folder: 0)
    with pytest.raises(disk.OutOfSpace, match="no space left on device while writing checkpoint.pt"), \
            atomic_path(tmp_path / "checkpoint.pt"):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4096 vs 3712")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 1 << 40)
    with pytest.raises(ValueError), atomic_path(tmp_path / "x.csv"):  # other errors stay what they are
        raise ValueError("not about space")
