"""Shared fixtures: tiny data and one tiny trained run."""
from __future__ import annotations

from pathlib import Path

import pytest

from tiny_data import make_data


@pytest.fixture
def data(tmp_path) -> Path:
    return make_data(tmp_path / "data")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One 1-epoch run on tiny data, shared by the tests that only read it."""
    from features.train import TrainSettings, train

    root = make_data(tmp_path_factory.mktemp("shared") / "data")
    run = root.parent / "run"
    train(TrainSettings(data=str(root), weights="none", epochs=1, batch_size=8, image_size=32, workers=0, train_on="real"),
          run)
    return root, run
