"""Residuals stored as int8 with a scale per row (core/residual_codec.py): half the bytes, the same groups, and
files written before it still read."""
import h5py
import numpy as np
import pytest

from ganprov.core.residual_codec import SCALES, StoredResiduals, decode, encode
from ganprov.features import store
from ganprov.features.image_list import ImageList
from ganprov.features.residual import RESIDUAL_DIM
from ganprov.features.store import StaleEmbeddings, add_batch, open_partial
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.generators import generator_groups
from ganprov.pipeline.bench.synthetic import synthetic_rows

PROVENANCE = {"checkpoint_sha256": "0" * 64, "image_size": 32, "normalisation": "{}", "subsets": [1]}


def test_rows_come_back_within_half_a_level_of_their_own_scale_and_nothing_is_clipped():
    rng = np.random.default_rng(0)
    residuals = rng.normal(0, 1, (50, 256)) * rng.uniform(0.01, 100, (50, 1))  # faint rows and bright ones
    residuals[3] = 0
    stored = encode(residuals)
    assert stored["residuals"].dtype == np.int8 and stored[SCALES].dtype == np.float32
    assert np.abs(stored["residuals"]).max(axis=1)[np.arange(50) != 3].min() == 127  # each row uses its range
    back = decode(stored["residuals"], stored[SCALES])
    assert back.dtype == np.float32 and not back[3].any()
    half_level = np.abs(residuals).max(axis=1, keepdims=True) / 254
    assert (np.abs(back - residuals) <= half_level * (1 + 1e-5)).all()


def test_generator_groups_are_the_same_from_stored_residuals():
    _, residuals, generators = synthetic_rows(300, seed=4)
    stored = encode(residuals)
    full = generator_groups(residuals.astype(np.float32))
    assert len(np.unique(full)) == len(np.unique(generators))
    np.testing.assert_array_equal(generator_groups(decode(stored["residuals"], stored[SCALES])), full)


def one_list(n=8):
    return [ImageList("real", tuple(f"real/t1/{i}.png" for i in range(n)), (1,) * n, np.zeros(n, bool), ("1:1",) * n)]


def write(path, residuals):
    lists = one_list(len(residuals))
    handle = open_partial(path, lists, PROVENANCE, batch_size=len(residuals))
    add_batch(handle, "real", {"embeddings": np.zeros((len(residuals), 512), np.float32),
                               "paths": list(lists[0].paths), "labels": np.ones(len(residuals), np.int32),
                               "heldout": np.zeros(len(residuals), bool), **encode(residuals)}, [])
    handle.close()


def test_the_file_holds_4_kb_a_row_and_stage_2_reads_it_back(tmp_path):
    residuals = np.random.default_rng(1).normal(0, 10, (8, RESIDUAL_DIM)).astype(np.float32)
    write(tmp_path / "embeddings.h5", residuals)
    with h5py.File(tmp_path / "embeddings.h5", "r") as handle:
        assert handle["real/residuals"].dtype == np.int8 and handle["real/residuals"].chunks
        assert "residual_scales" in handle["real/residuals"].attrs["decoding"]
    file = EmbeddingsFile(tmp_path / "embeddings.h5")
    read = file.read("real").residuals
    assert read.dtype == np.float16
    np.testing.assert_allclose(read, residuals, atol=np.abs(residuals).max() / 254 + 0.05)
    with file.residuals_on_disk("real") as on_disk:  # decoded as the grouping computes: float32
        assert on_disk[2:5].dtype == np.float32
        np.testing.assert_array_equal(on_disk[2:5].astype(np.float16), read[2:5])
        np.testing.assert_array_equal(on_disk[np.array([1, 6])].astype(np.float16), read[[1, 6]])
    held = file.select(["real"], lambda heldout: np.arange(len(heldout)) % 3 == 0, residuals=True)
    np.testing.assert_array_equal(held.residuals, read[::3])
    assert held.paths == [f"real/t1/{i}.png" for i in (0, 3, 6)]


def test_a_file_of_float16_residuals_from_before_reads_as_it_was_stored(tmp_path):
    residuals = np.random.default_rng(2).normal(0, 10, (8, RESIDUAL_DIM)).astype(np.float16)
    write(tmp_path / "embeddings.h5", residuals)
    with h5py.File(tmp_path / "embeddings.h5", "r+") as handle:  # the schema before: float16, no scales
        del handle["real/residuals"], handle["real/residual_scales"]
        handle["real/residuals"] = residuals
    np.testing.assert_array_equal(EmbeddingsFile(tmp_path / "embeddings.h5").read("real").residuals, residuals)
    with h5py.File(tmp_path / "embeddings.h5", "r") as handle:
        assert StoredResiduals(handle["real"])[::3].dtype == np.float16


def test_a_partial_file_started_with_float16_residuals_is_not_resumed(tmp_path):
    partial = store.partial_path(tmp_path / "embeddings.h5")
    write(partial, np.ones((8, RESIDUAL_DIM)))
    with h5py.File(partial, "r+") as handle:
        del handle["real/residual_scales"]
    with pytest.raises(StaleEmbeddings, match="older ganprov .*float16.*--force"):
        open_partial(partial, one_list(), PROVENANCE, batch_size=8)
