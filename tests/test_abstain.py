"""--abstain: images from a generator trained on none of the candidate subsets get label 0."""
import csv
import shutil

import numpy as np

from ganprov.pipeline.cli import main
from ganprov.pipeline.demo_data import write_demo_data


def test_a_held_out_generator_is_abstained_on(tmp_path):
    data = tmp_path / "data"
    write_demo_data(data, subsets=5, real_per_subset=30, generated_per_subset=30, unknown_per_subset=30, size=32)
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
