import h5py
import numpy as np
import pytest

from ganprov.core.digest import sha256_of
from ganprov.core.layout import discover
from ganprov.core.run_folder import RunFolder
from ganprov.features import store
from ganprov.features.embed import EmbeddingError, embed


def read(path):
    with h5py.File(path, "r") as handle:
        return {name: {key: handle[name][key][:] for key in ("embeddings", "paths", "labels", "heldout", "residuals", "residual_scales")}
                for name in handle}, dict(handle.attrs)


def test_schema_rows_order_labels_and_provenance(trained_run):
    data, run = trained_run
    embed(data, run, batch_size=4, workers=0)
    groups, attrs = read(RunFolder(run).embeddings)
    layout = discover(data)
    assert set(groups) == {"real", "generated", "unknown"}
    for name, split in layout.splits.items():
        group = groups[name]
        assert group["embeddings"].shape == (len(split), 512) and group["embeddings"].dtype == np.float32
        assert [p.decode() for p in group["paths"]] == list(split.paths)
        assert group["labels"].tolist() == list(split.labels)
    assert groups["generated"]["heldout"].sum() == 6 and not groups["real"]["heldout"].any()
    assert attrs["checkpoint_sha256"] == sha256_of(RunFolder(run).checkpoint)
    assert attrs["image_size"] == 32 and attrs["weights_origin"] == "none"
    assert attrs["subsets"].tolist() == [1, 2, 3] and "torch" in attrs["versions"] and attrs["created"]
    assert "0.485" in attrs["normalisation"] and attrs["ganprov_version"]
    with h5py.File(RunFolder(run).embeddings, "r") as handle:
        dataset = handle["real/embeddings"]
        assert dataset.chunks is not None and dataset.maxshape == (None, 512)
        assert handle["real/paths"].dtype.metadata["vlen"] is str


def test_embed_holds_out_the_images_its_checkpoint_held_out(tmp_path):
    from tiny_data import make_data

    from ganprov.features.train import TrainSettings, train

    data = make_data(tmp_path / "data")  # 4 labelled generated images per subset: 1 held out as a fifth, 2 as half
    run = tmp_path / "run"
    train(TrainSettings(data=str(data), weights="none", epochs=1, batch_size=8, image_size=32, workers=0,
                        train_on="real", min_heldout=0), run)
    embed(data, run, batch_size=4, workers=0)
    groups, _ = read(RunFolder(run).embeddings)
    assert groups["generated"]["heldout"].sum() == 3


def test_settings_saved_before_min_heldout_split_as_a_plain_fifth_at_full_resolution():
    from dataclasses import asdict

    from ganprov.core.settings import TrainSettings

    saved = asdict(TrainSettings(data="DATA"))
    assert saved.pop("min_heldout") == 20 and saved.pop("content_resolution") == "full"
    assert TrainSettings.from_config(saved).min_heldout == 0
    assert TrainSettings.from_config(saved).content_resolution == "full"  # what runs before it saw
    assert TrainSettings.from_config(saved | {"min_heldout": 7}).min_heldout == 7


def test_embeddings_match_the_model_features(trained_run):
    import torch

    from ganprov.features.checkpoint import load_model
    from ganprov.features.images import load_image
    data, run = trained_run
    embed(data, run, batch_size=4, workers=0)
    groups, _ = read(RunFolder(run).embeddings)
    model, _ = load_model(RunFolder(run).checkpoint)
    with torch.inference_mode():
        expected = model.features(load_image(data / "real/t2/t2_001.png", 32)[None]).numpy()[0]
    row = [p.decode() for p in groups["real"]["paths"]].index("real/t2/t2_001.png")
    np.testing.assert_allclose(groups["real"]["embeddings"][row], expected, rtol=1e-4, atol=1e-5)


def test_rerun_on_a_finished_file_does_nothing(trained_run, capsys):
    data, run = trained_run
    embed(data, run, batch_size=4, workers=0)
    summary = embed(data, run, batch_size=4, workers=0)
    assert summary["embedded"] == 0 and "nothing to do" in capsys.readouterr().out


APPENDS_PER_BATCH = 6  # embeddings, paths, labels, heldout, residuals, residual_scales


# Die mid-batch, in a later batch, in another split (real holds 12 files: three batches of four).
@pytest.mark.parametrize("fail_at", [2, 8, 20])
def test_interrupted_run_resumes_to_the_same_file(trained_run, tmp_path, monkeypatch, fail_at):
    import shutil
    data, run = trained_run
    embed(data, run, batch_size=4, workers=0, force=True)
    expected, _ = read(RunFolder(run).embeddings)

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "embeddings.h5").unlink()
    real_append, calls = store.append, []

    def append_then_die(*args):
        calls.append(1)
        if len(calls) == fail_at:
            raise KeyboardInterrupt
        real_append(*args)

    monkeypatch.setattr(store, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        embed(data, copy, batch_size=4, workers=0)
    assert not (copy / "embeddings.h5").exists() and (copy / "embeddings.h5.partial").exists()
    monkeypatch.setattr(store, "append", real_append)
    summary = embed(data, copy, batch_size=4, workers=0)
    finished_batches = (fail_at - 1) // APPENDS_PER_BATCH
    assert summary["embedded"] == sum(len(g["paths"]) for g in expected.values()) - 4 * finished_batches
    resumed, _ = read(copy / "embeddings.h5")
    for name in expected:
        for key in expected[name]:
            np.testing.assert_array_equal(resumed[name][key], expected[name][key])


def test_file_from_another_checkpoint_is_refused(trained_run, tmp_path):
    import shutil

    import torch
    data, run = trained_run
    embed(data, run, batch_size=4, workers=0)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = torch.load(copy / "checkpoint.pt", weights_only=True)
    state["model"]["fc.bias"] += 1
    torch.save(state, copy / "checkpoint.pt")
    with pytest.raises(EmbeddingError, match="checkpoint_sha256"):
        embed(data, copy, batch_size=4, workers=0)
