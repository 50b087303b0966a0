"""Shared fixtures: tiny data, one tiny trained run, and that run embedded with every head fitted."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_data import make_data


@pytest.fixture
def data(tmp_path) -> Path:
    return make_data(tmp_path / "data")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One 1-epoch run on tiny data, shared by the tests that only read it."""
    from ganprov.features.train import TrainSettings, train

    root = make_data(tmp_path_factory.mktemp("shared") / "data")
    run = root.parent / "run"
    train(TrainSettings(data=str(root), weights="none", epochs=1, batch_size=8, image_size=32, workers=0, train_on="real"),
          run)
    return root, run


@pytest.fixture(scope="module")
def fitted_run(trained_run, tmp_path_factory):
    """The shared trained run, copied, embedded, every head fitted and predicting."""
    from ganprov.core.run_folder import RunFolder
    from ganprov.pipeline.cli import main

    data, trained = trained_run
    run = tmp_path_factory.mktemp("stage2") / "run"
    shutil.copytree(trained, run)
    assert main(["embed", "--data", str(data), "--run", str(run), "--batch-size", "8", "--workers", "0"]) == 0
    assert main(["fit", "--run", str(run), "--head", "all"]) == 0
    assert main(["predict", "--run", str(run), "--head", "all"]) == 0
    return data, RunFolder(run)


@pytest.fixture
def run_copy(fitted_run, tmp_path):
    """A private copy for a test that writes to or damages the run folder."""
    from ganprov.core.run_folder import RunFolder

    data, run = fitted_run
    shutil.copytree(run.path, tmp_path / "run")
    return data, RunFolder(tmp_path / "run")
