"""torchrun: two processes with gloo on the CPU train and embed like one process."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from tiny_data import make_data

from ganprov.core.run_folder import RunFolder
from ganprov.features import distributed
from ganprov.features.backbone import build_model
from ganprov.features.checkpoint import load_model
from ganprov.features.embed import layout_lists, provenance, write_embeddings
from ganprov.features.image_list import ImageList
from ganprov.features.store import DATASETS, shard_path

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0", "--train-on", "real"]


def launch(*args: str, processes: int = 1, script: str | None = None, succeed: bool = True
           ) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS` (or a script), under torchrun when processes > 1; asserts success unless
    told not to. One thread each: the results must not depend on it, and two processes share this
    machine's cores."""
    if processes == 1:
        command = [sys.executable] + ([str(REPO / "tests" / script)] if script else ["-m", "ganprov.pipeline"])
    else:  # "--": torchrun would take --run for an abbreviation of its own --run-path
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
        command += [str(REPO / "tests" / script)] if script else ["-m", "ganprov.pipeline", "--"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command + list(args), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 or not succeed, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def read_log(run: Path) -> list[dict]:
    with open(run / "train_log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_shares_are_whole_batches_that_concatenate_to_the_list():
    for n in (0, 1, 7, 64, 65, 200):
        images = ImageList("real", tuple(f"{i}.png" for i in range(n)), tuple(range(n)), np.arange(n) % 2 == 0,
                           tuple(f"{i}:0" for i in range(n)))
        for size in (1, 2, 3, 5):
            shares = [images.share(distributed.World(rank, size), 16) for rank in range(size)]
            assert sum((share.paths for share in shares), ()) == images.paths
            assert sum((share.stamps for share in shares), ()) == images.stamps
            assert np.array_equal(np.concatenate([share.heldout for share in shares]), images.heldout)
            starts = np.cumsum([0] + [len(share.paths) for share in shares[:-1]])
            assert all(start % 16 == 0 for start in starts)


def test_one_process_needs_no_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    world = distributed.world()
    assert (world.rank, world.size, world.is_main) == (0, 1, True)
    assert distributed.start(torch.device("cpu")) == world and not torch.distributed.is_initialized()
    assert world.sum(3, 4.5) == [3, 4.5]


def test_global_batch_gradient_equals_one_process(tmp_path):
    """Sampler shares, batch norm over the global batch, the loss over the global batch size and DDP's
    averaging together give one process's gradient (here: one SGD step of lr 1 on the whole set)."""
    data = make_data(tmp_path / "data", per_subset=6, generated=None, unknown=0)
    launch(str(data), str(tmp_path / "one.pt"), script="distributed_step.py")
    launch(str(data), str(tmp_path / "two.pt"), processes=2, script="distributed_step.py")
    one, two = (torch.load(tmp_path / name, weights_only=True) for name in ("one.pt", "two.pt"))
    assert one.keys() == two.keys()
    initial = build_model(3, "none", 0)[0].state_dict()
    weights = [k for k in one if k.endswith(("weight", "bias"))]
    step_one, step_two = (torch.cat([(initial[k] - state[k]).flatten() for k in weights]) for state in (one, two))
    assert step_one.abs().max() > 1e-2  # the step moved the weights: the comparison below means something
    # Not elementwise: rounding differs between one and two processes (measured 4e-6 relative in the
    # forward pass), enough to flip a ReLU whose input is almost exactly zero, and one flip changes that
    # unit's gradient outright (measured: 1 of 15,360 units here, 1e-3 of the gradient's norm). Batch norm
    # taken per process instead of over the global batch gives 1.27; the loss averaged per process (shares
    # of 8 and 7 images) instead of over the global batch, 0.059.
    assert (step_two - step_one).norm() / step_one.norm() < 1e-2
    for key in one:
        if "running" in key:  # batch-norm statistics of the global batch, not of each share
            assert torch.allclose(one[key], two[key], rtol=1e-4, atol=1e-5), key


def test_torchrun_train_matches_one_process(tmp_path):
    data = make_data(tmp_path / "data", per_subset=10)
    # A tiny learning rate keeps both runs near the same weights, so their losses compare tightly: Adam
    # moves every weight by about ±lr whatever its gradient, and rounding can flip a near-zero gradient.
    options = TRAIN + ["--epochs", "2", "--lr", "1e-6"]
    launch("train", "--data", str(data), "--run", str(tmp_path / "one"), *options)
    result = launch("train", "--data", str(data), "--run", str(tmp_path / "two"), *options, processes=2)
    assert result.stdout.count("trained ") == 1  # rank 0 reports, once
    one, two = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
        assert (a["train_acc"], a["val_acc"]) == (b["train_acc"], b["val_acc"])
    first, second = (load_model(tmp_path / run / "checkpoint.pt")[0].state_dict() for run in ("one", "two"))
    # The weights' movement from the shared start, compared as a whole: elementwise, any two runs of this lr
    # agree within a few lr. Measured 0.0015 relative; batches of 4 instead of 8 in one process: 1.64.
    initial = build_model(len(list((data / "real").iterdir())), "none", 0)[0].state_dict()
    weights = [k for k in first if k.endswith(("weight", "bias"))]
    step_one, step_two = (torch.cat([(state[k] - initial[k]).flatten() for k in weights]) for state in (first, second))
    assert step_one.norm() > 1e-3  # it moved: the comparison below means something
    assert (step_two - step_one).norm() / step_one.norm() < 1e-2
    assert RunFolder(tmp_path / "two").read_config()["train"]["processes"] == 2

    # Interrupted after one epoch in one process, resumed in two: the same log as one process throughout.
    launch("train", "--data", str(data), "--run", str(tmp_path / "resumed"), *TRAIN, "--epochs", "1", "--lr", "1e-6")
    launch("train", "--data", str(data), "--run", str(tmp_path / "resumed"), *options, "--resume", processes=2)
    for a, b in zip(one, read_log(tmp_path / "resumed")):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
        assert (a["train_acc"], a["val_acc"]) == (b["train_acc"], b["val_acc"])
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_batch_must_divide_among_processes(tmp_path):
    data = make_data(tmp_path / "data")
    result = launch("train", "--data", str(data), "--run", str(tmp_path / "run"), "--weights", "none",
                    "--image-size", "32", "--batch-size", "7", "--workers", "0", processes=2, succeed=False)
    assert result.returncode != 0
    assert "--batch-size 7 is the global batch: it must divide evenly among the 2 processes" in result.stderr


def equal_files(a: Path, b: Path) -> None:
    with h5py.File(a, "r") as one, h5py.File(b, "r") as two:
        assert set(one) == set(two)
        assert {k: str(v) for k, v in one.attrs.items() if k != "created"} == \
               {k: str(v) for k, v in two.attrs.items() if k != "created"}
        for group in one:
            assert dict(one[group].attrs) == dict(two[group].attrs)
            for name in DATASETS:
                assert np.array_equal(one[group][name][:], two[group][name][:]), (group, name)


def test_torchrun_embed_equals_one_process_and_resumes_per_shard(trained_run, tmp_path):
    data, trained = trained_run
    runs = {}
    for name in ("one", "two", "resumed"):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "checkpoint.pt").write_bytes((trained / "checkpoint.pt").read_bytes())
    options = ["--data", str(data), "--batch-size", "4", "--workers", "0"]
    launch("embed", "--run", str(runs["one"]), *options)
    result = launch("embed", "--run", str(runs["two"]), *options, processes=2)
    equal_files(runs["one"] / "embeddings.h5", runs["two"] / "embeddings.h5")
    assert not shard_path(runs["two"] / "embeddings.h5", distributed.World(0, 2)).parent.exists()
    assert result.stdout.count("embedded ") == 1 and "2 processes" in result.stdout

    # Rank 1's shard finished before an interruption: the rerun embeds rank 0's share only.
    out = runs["resumed"] / "embeddings.h5"
    model, meta = load_model(runs["resumed"] / "checkpoint.pt")
    root, lists = layout_lists(data, int(meta["settings"]["seed"]), int(meta["settings"]["min_heldout"]))
    rank1 = distributed.World(1, 2)
    write_embeddings(model, root, [images.share(rank1, 4) for images in lists], shard_path(out, rank1),
                     provenance(meta), int(meta["image_size"]), batch_size=4,
                     workers=0, device=torch.device("cpu"), strict=False, progress=False)
    result = launch("embed", "--run", str(runs["resumed"]), *options, processes=2)
    rank0_files = sum(len(images.share(distributed.World(0, 2), 4).paths) for images in lists)
    assert f"embedded {rank0_files} images" in result.stdout
    equal_files(runs["one"] / "embeddings.h5", out)

    again = launch("embed", "--run", str(runs["two"]), *options, processes=2)
    assert "nothing to do" in again.stdout


def test_no_decoding_workers_by_default_under_torchrun_on_cpus(monkeypatch):
    from ganprov.pipeline.cli import DEFAULTS, build_parser, decoding_workers

    parse = build_parser().parse_args
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert decoding_workers(parse(["embed", "--data", "d", "--run", "r", "--device", "cpu"])) == DEFAULTS.workers
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert decoding_workers(parse(["embed", "--data", "d", "--run", "r", "--device", "cpu"])) == 0
    assert decoding_workers(parse(["embed", "--data", "d", "--run", "r", "--device", "cpu", "--workers", "3"])) == 3
    assert decoding_workers(parse(["train", "--data", "d", "--run", "r", "--device", "cuda"])) == DEFAULTS.workers
