#!/usr/bin/env python3
"""Test-time adaptation, measured (issue 11): batch-norm statistics re-estimated on a scenario's unknown set
(AdaBN) before embedding it, against the plain embeddings. The heads are fitted as usual on the run's real
embeddings; the unknown set is embedded again with the adapted network. Reads scenario runs left by
scenarios.py (RUN = WORK/NAME-audit/runs/SCENARIO, its images in WORK/NAME-audit/data/SCENARIO).

  python benchmarks/adabn.py WORK/*-audit/runs/*
"""
import copy
import csv
import sys
from pathlib import Path

import numpy as np
import torch

from ganprov.features.checkpoint import load_model
from ganprov.features.images import ImageFiles, collate
from ganprov.models.embeddings import EmbeddingsFile, stacked
from ganprov.models.fingerprint import FingerprintHead
from ganprov.models.logreg import LogRegHead


def adapted(model, loader):
    """A copy whose batch norms hold the statistics of the images `loader` gives (cumulative average)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
            module.train()
    with torch.no_grad():
        for images, *_ in loader:
            model.features(images)
    return model.eval()


def main():
    for run in map(Path, sys.argv[1:]):
        data = run.parents[1] / "data" / run.name
        with open(run.parents[1] / "data" / f"{run.name}.truth.csv", newline="") as handle:
            truth = {row[0]: int(row[1]) for row in csv.reader(handle)}
        file = EmbeddingsFile(run / "embeddings.h5")
        unknown, real, heldout = file.read("unknown"), file.training("real"), file.validation()
        model, meta = load_model(run / "checkpoint.pt")
        images = ImageFiles(data, unknown.paths, [0] * len(unknown.paths), int(meta["image_size"]))
        loader = torch.utils.data.DataLoader(images, batch_size=64, collate_fn=collate)
        network = adapted(model, loader)
        with torch.no_grad():
            adapted_embeddings = torch.cat([network.features(x) for x, *_ in loader]).numpy()
        y = np.array([truth[path.split("/", 1)[1]] for path in unknown.paths])
        out = [run.parents[1].name, run.name]
        for name, embeddings in (("plain", unknown.embeddings), ("adabn", adapted_embeddings)):
            head = FingerprintHead().fit(real.with_residuals(), real.labels, X_val=heldout.with_residuals(),
                                         y_val=heldout.labels)
            labels = head.predict(stacked(embeddings, unknown.residuals))
            paper = LogRegHead().fit(real.embeddings, real.labels).predict(embeddings)
            out += [f"{name}: fingerprint {np.mean(labels == y):.3f} wrong {np.mean((labels != 0) & (labels != y)):.3f} "
                    f"undetermined {np.mean(labels == 0):.3f}, logreg {np.mean(paper == y):.3f}"]
        print(*out, sep="  ", flush=True)


if __name__ == "__main__":
    main()
