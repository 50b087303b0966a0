"""The resumable embeddings file (features/store.py) against what a killed run leaves: half-flushed batches,
and file locks its decoding workers still hold."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from ganprov.core import residual_codec
from ganprov.features import store
from ganprov.features.image_list import ImageList
from ganprov.features.residual import RESIDUAL_DIM
from ganprov.features.store import EmbeddingError, add_batch, open_partial

TIMEOUT = 180  # seconds for the lock holder to end: a hang fails, it does not block the suite

# What a kill mid-flush can leave on disk, built deterministically: open_partial's resume must cope with it.
PROVENANCE = {"checkpoint_sha256": "0" * 64, "image_size": 32, "normalisation": "{}"}


def partial_lists():
    paths = tuple(f"real/t1/{i:03d}.png" for i in range(12))
    return [ImageList("real", paths, (1,) * 12, np.zeros(12, bool), ("1:1",) * 12)]


def write_batch(partial: Path, start: int, failed: int | None = None) -> None:
    """Resume the partial file and write files start..start+3 the way write_embeddings does, then close it."""
    lists = partial_lists()
    handle = open_partial(partial, lists, PROVENANCE, batch_size=4)
    paths = lists[0].paths
    rows = [r for r in range(start, start + 4) if r != failed]
    add_batch(handle, "real", {"embeddings": np.full((len(rows), 512), start, np.float32),
                               "paths": [paths[r] for r in rows], "labels": np.ones(len(rows), np.int32),
                               "heldout": np.zeros(len(rows), bool),
                               **residual_codec.encode(np.full((len(rows), RESIDUAL_DIM), start))},
              [] if failed is None else [(paths[failed], "BadImage: broken")])
    handle.close()


def test_resume_clears_string_references_a_kill_mid_flush_left_past_the_counted_rows(tmp_path):
    # A kill between writing the paths chunk and its string heap leaves references, past the saved extent, to
    # heap objects that never reached the file; HDF5 frees the old value of every string it overwrites, so
    # writing those rows again failed with "bad heap index" before the resume cleared them.
    partial = tmp_path / "e.h5.partial"
    write_batch(partial, 0)
    saved = partial.read_bytes()  # one batch on disk
    write_batch(partial, 4)
    with h5py.File(partial, "r") as handle:
        _, chunk = handle["real/paths"].id.read_direct_chunk((0,))  # two batches' string references
    partial.write_bytes(saved)
    with h5py.File(partial, "r+") as handle:
        handle["real/paths"].id.write_direct_chunk((0,), chunk)
        assert handle["real/paths"].shape == (4,) and chunk[4 * 16:8 * 16].strip(b"\0")
    write_batch(partial, 4)
    write_batch(partial, 8)
    with h5py.File(partial, "r") as handle:
        assert [p.decode() for p in handle["real/paths"][:]] == list(partial_lists()[0].paths)
        assert handle["real/embeddings"][:, 0].tolist() == [0] * 4 + [4] * 4 + [8] * 4


def test_resume_cuts_skipped_files_back_to_the_counted_ones(tmp_path):
    # Skipped files are counted only by files_done - rows; a kill after their append, before the counters
    # reached the file, must not list them twice once the batch is redone.
    partial = tmp_path / "e.h5.partial"
    write_batch(partial, 0, failed=2)
    with h5py.File(partial, "r+") as handle:  # the next batch's skipped file got out, its counters did not
        for name, value in (("skipped_paths", "real/t1/005.png"), ("skipped_reasons", "BadImage: broken")):
            dataset = handle["real"][name]
            dataset.resize(2, axis=0)
            dataset[1] = value
    write_batch(partial, 4, failed=5)
    with h5py.File(partial, "r") as handle:
        assert [p.decode() for p in handle["real/skipped_paths"][:]] == ["real/t1/002.png", "real/t1/005.png"]
        assert handle["real/skipped_reasons"].shape == (2,) and handle["real/paths"].shape == (6,)


LOCKED = pytest.mark.skipif(os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE",
                            reason="HDF5 file locking is off")


def hold_lock(partial: Path, seconds: float | None = None) -> subprocess.Popen:
    """Another process holding the file's lock, as the decoding workers of a killed embed do: until its stdin
    closes, or for `seconds`."""
    wait = "sys.stdin.read()" if seconds is None else f"time.sleep({seconds})"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, h5py; f = h5py.File(sys.argv[1], 'r'); "
                               f"print('open', flush=True); {wait}", str(partial)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"open\n"
    return holder


@LOCKED
def test_resume_refuses_a_locked_partial_file_instead_of_deleting_it(tmp_path, monkeypatch):
    # A rerun that took the lock error for damage deleted the file and all its batches.
    monkeypatch.setattr(store, "LOCK_WAIT_SECONDS", 0.5)
    partial = tmp_path / "e.h5.partial"
    write_batch(partial, 0)
    holder = hold_lock(partial)
    try:
        with pytest.raises(EmbeddingError, match="in use by another process"):
            write_batch(partial, 4)
    finally:
        holder.stdin.close()
        holder.wait(timeout=TIMEOUT)
    write_batch(partial, 4)
    with h5py.File(partial, "r") as handle:
        assert handle["real/embeddings"][:, 0].tolist() == [0] * 4 + [4] * 4


@LOCKED
def test_a_rerun_typed_while_a_dead_runs_workers_still_hold_the_lock_waits_and_resumes(tmp_path):
    # After kill -9 of embed, its DataLoader workers keep the file's lock for up to ~5 s: the rerun waits.
    partial = tmp_path / "e.h5.partial"
    write_batch(partial, 0)
    holder = hold_lock(partial, seconds=1.5)
    write_batch(partial, 4)
    holder.wait(timeout=TIMEOUT)
    with h5py.File(partial, "r") as handle:
        assert handle["real/embeddings"][:, 0].tolist() == [0] * 4 + [4] * 4


def test_a_finished_file_is_kept_for_the_same_files_only_and_a_damaged_one_is_redone(tmp_path, capsys):
    out, lists = tmp_path / "e.h5", partial_lists()
    with h5py.File(out, "w") as handle:
        store.start_file(handle, lists, PROVENANCE, batch_size=4)
    assert store.existing_matches(out, lists, PROVENANCE)
    with pytest.raises(store.StaleEmbeddings, match="modification times"):  # same names, other stamps
        store.existing_matches(out, [replace(lists[0], stamps=("2:2",) * 12)], PROVENANCE)
    with pytest.raises(store.StaleEmbeddings, match="image_size"):
        store.existing_matches(out, lists, PROVENANCE | {"image_size": 64})
    with pytest.raises(store.StaleEmbeddings, match="held out for validation"):  # another regime or split
        store.existing_matches(out, [replace(lists[0], heldout=np.arange(12) % 5 == 0)], PROVENANCE)
    unknown = ImageList("unknown", ("generated_unknown/a.png",), (0,), np.zeros(1, bool), ("1:1",))
    with pytest.raises(store.StaleEmbeddings, match="groups: real here, real, unknown expected"):
        store.existing_matches(out, lists + [unknown], PROVENANCE)
    with h5py.File(out, "w") as handle:  # a folder gone since: generated_unknown/ deleted
        store.start_file(handle, lists + [unknown], PROVENANCE, batch_size=4)
    with pytest.raises(store.StaleEmbeddings, match="groups: real, unknown here, real expected"):
        store.existing_matches(out, lists, PROVENANCE)
    with h5py.File(out, "r+") as handle:  # written before held-out flags were part of the key: taken at its word
        del handle["real"].attrs["heldout_sha256"]
    assert store.existing_matches(out, [replace(lists[0], heldout=np.arange(12) % 5 == 0), unknown], PROVENANCE)
    out.write_bytes(b"not HDF5")
    assert not store.existing_matches(out, lists, PROVENANCE) and not out.exists()
    assert "damaged" in capsys.readouterr().out
