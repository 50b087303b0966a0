"""--abstain: images from a generator trained on none of the candidate subsets get label 0."""
import csv
import json
import shutil

import numpy as np
import pytest

from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.novelty import NoveltyGate
from ganprov.pipeline.cli import main
from ganprov.pipeline.demo_data import write_demo_data
from ganprov.pipeline.predict import attribute, unknown_filename


def test_a_held_out_generator_is_abstained_on(tmp_path):
    data = tmp_path / "data"
    write_demo_data(data, subsets=5, real_per_subset=30, generated_per_subset=50, unknown_per_subset=30, size=32)
    # Subset 5 is no candidate: its real images and labelled generated ones go; its generator's
    # outputs stay in generated_unknown/, where nothing can explain them.
    shutil.rmtree(data / "real/t5")
    shutil.rmtree(data / "generated/gen_t5")
    run = str(tmp_path / "run")
    common = ["--run", run]
    assert main(["train", "--data", str(data), *common, "--weights", "none", "--image-size", "32", "--epochs", "2",
                 "--batch-size", "16", "--workers", "0"]) == 0
    assert main(["embed", "--data", str(data), *common, "--workers", "0"]) == 0
    assert main(["fit", *common, "--head", "logreg"]) == 0
    assert main(["predict", *common, "--head", "logreg", "--abstain"]) == 0
    with open(data / "truth.csv") as handle:
        truth = dict(csv.reader(handle))
    with open(tmp_path / "run/predictions/logreg.csv") as handle:
        predicted = dict(csv.reader(handle))
    abstained = {name: predicted[name] == "0" for name in truth}
    held_out = np.mean([abstained[n] for n, label in truth.items() if label == "5"])
    candidates = np.mean([abstained[n] for n, label in truth.items() if label != "5"])
    assert held_out >= 0.6, f"only {held_out:.0%} of the held-out generator's images abstained"
    assert candidates <= 0.1, f"{candidates:.0%} of the candidates' images abstained"


def refit_fails(monkeypatch):
    monkeypatch.setattr(NoveltyGate, "fit", lambda *args, **kwargs: pytest.fail("the novelty gate was fitted again"))


def test_the_first_abstain_fits_the_gate_and_later_ones_load_it(run_copy, monkeypatch):
    _, run = run_copy
    fit_on = json.loads((run.heads / "logreg.json").read_text())["info"]["fit_on"]
    assert not run.novelty_gate(fit_on).exists()  # fitting heads leaves it to the first --abstain
    assert main(["predict", "--run", str(run.path), "--head", "logreg", "--abstain"]) == 0
    assert run.novelty_gate(fit_on).is_file()
    file = EmbeddingsFile(run.embeddings)
    unknown = file.read("unknown")
    rows = unknown.with_residuals()[np.argsort([unknown_filename(p) for p in unknown.paths], kind="stable")]
    # The gate predict used to fit on every call, for comparison: the same abstentions at any quantile.
    fresh = NoveltyGate(use_residuals=fit_on != "real").fit(file.training(fit_on).with_residuals(),
                                                            X_val=file.validation().with_residuals())
    refit_fails(monkeypatch)
    plain = attribute(run, "logreg", file).labels
    for quantile in (0.5, 0.99):
        labels = attribute(run, "logreg", file, abstain=quantile).labels
        np.testing.assert_array_equal(labels, np.where(fresh.novel(rows, quantile), 0, plain))
    assert main(["predict", "--run", str(run.path), "--head", "logreg", "--abstain"]) == 0


def test_fitting_heads_fits_no_gate(run_copy, monkeypatch):
    _, run = run_copy
    refit_fails(monkeypatch)
    assert main(["fit", "--run", str(run.path), "--head", "knn"]) == 0


def test_a_deleted_gate_is_fitted_again(run_copy):
    _, run = run_copy
    assert main(["predict", "--run", str(run.path), "--head", "logreg", "--abstain"]) == 0
    shutil.rmtree(run.heads / "novelty")
    assert main(["predict", "--run", str(run.path), "--head", "logreg", "--abstain"]) == 0
    assert (run.heads / "novelty").is_dir()


def test_the_gate_gives_the_same_answer_a_block_at_a_time(monkeypatch):
    from ganprov.models import novelty
    rng = np.random.default_rng(0)
    train, held, scored = (rng.normal(size=(n, 8 + 64)).astype(np.float32) for n in (40, 10, 30))
    whole = NoveltyGate(n_embedding=8).fit(train, X_val=held)
    monkeypatch.setattr(novelty, "BLOCK_ROWS", 7)  # several blocks, a partial last one
    blocks = NoveltyGate(n_embedding=8).fit(train, X_val=held)
    np.testing.assert_allclose(blocks.centre_, whole.centre_, rtol=1e-6)
    sizes, describe = [], NoveltyGate.describe_block
    monkeypatch.setattr(NoveltyGate, "describe_block", lambda self, X: sizes.append(len(X)) or describe(self, X))
    np.testing.assert_allclose(blocks.similarity(scored), whole.similarity(scored), rtol=1e-5)
    assert sizes == [7, 7, 7, 7, 2] * 2  # each gate scores the 30 rows a block at a time
    assert blocks.similarity(scored[:0]).shape == (0,)
