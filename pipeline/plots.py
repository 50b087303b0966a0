"""PNG figures for evaluation and the report: confusion matrix, PCA scatter, training curve."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from ganprov.core.atomic import atomic_path  # noqa: E402


def save(figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def confusion_figure(matrix, labels, title: str):
    matrix = np.asarray(matrix)
    figure, axes = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 0.8 + 0.6 * len(labels)))
    axes.imshow(matrix, cmap="Blues")
    names = [str(label) if label else "abstain" for label in labels]
    axes.set_xticks(range(len(labels)), names)
    axes.set_yticks(range(len(labels)), names)
    axes.set_xlabel("predicted subset")
    axes.set_ylabel("true subset")
    axes.set_title(title, fontsize=9)
    for (i, j), value in np.ndenumerate(matrix):
        axes.text(j, i, str(value), ha="center", va="center",
                  color="white" if value > matrix.max() / 2 else "black", fontsize=8)
    return figure


def pca_figure(groups: dict[str, tuple[np.ndarray, np.ndarray]], title="PCA of embeddings"):
    """groups: name → (embeddings, labels); one marker per group, one colour per subset."""
    pca = PCA(n_components=2, random_state=0).fit(np.concatenate([e for e, _ in groups.values()]))
    figure, axes = plt.subplots(figsize=(6, 5))
    markers = {"real": "o", "generated": "x", "unknown": "."}
    labels = sorted({int(x) for _, y in groups.values() for x in y if x})
    colours = {label: plt.cm.tab10(i % 10) for i, label in enumerate(labels)}
    for name, (embeddings, subset) in groups.items():
        points = pca.transform(embeddings)
        axes.scatter(points[:, 0], points[:, 1], s=8, marker=markers.get(name, "."), alpha=0.6,
                     c=[colours.get(int(s), (0.5, 0.5, 0.5, 1)) for s in subset])
    for label, colour in colours.items():
        axes.scatter([], [], color=colour, label=f"subset {label}")
    for name, marker in markers.items():
        if name in groups:
            axes.scatter([], [], color="grey", marker=marker, label=name)
    axes.legend(fontsize=7, loc="best")
    axes.set_title(title, fontsize=9)
    axes.set_xlabel(f"PC1 ({pca.explained_variance_ratio_[0]:.0%})")
    axes.set_ylabel(f"PC2 ({pca.explained_variance_ratio_[1]:.0%})")
    return figure


def training_figure(log_rows: list[dict]):
    epochs = [int(r["epoch"]) for r in log_rows]
    figure, loss_axes = plt.subplots(figsize=(6, 3.2))
    loss_axes.plot(epochs, [float(r["train_loss"]) for r in log_rows], "o-", color="tab:red", label="train loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    loss_axes.set_ylabel("loss")
    acc_axes = loss_axes.twinx()
    acc_axes.plot(epochs, [float(r["train_acc"]) for r in log_rows], "s--", color="tab:blue", label="train acc")
    acc_axes.plot(epochs, [float(r["val_acc"]) for r in log_rows], "s-", color="tab:green", label="val acc")
    acc_axes.set_ylim(0, 1.02)
    acc_axes.set_ylabel("accuracy")
    figure.legend(fontsize=7, loc="lower center", ncol=3)
    return figure


def reliability_figure(table: list[dict], title: str):
    """Accuracy against mean confidence per confidence bin (evaluate's `reliability` rows); the diagonal is
    perfect calibration, and each point's size shows how many images its bin holds."""
    figure, axes = plt.subplots(figsize=(3.6, 3.6))
    axes.plot([0, 1], [0, 1], ":", color="grey")
    total = max(sum(r["n"] for r in table), 1)
    axes.scatter([r["confidence"] for r in table], [r["accuracy"] for r in table],
                 s=[20 + 400 * r["n"] / total for r in table], color="tab:blue", alpha=0.7)
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(title, fontsize=9)
    return figure
