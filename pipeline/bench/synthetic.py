"""The bench's inputs: synthetic CT-like slices (pipeline.demo_data; not medical images), a run folder with
random weights, and embedding rows as embed writes them. Speed depends on neither pixels nor weights."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ganprov.core.settings import TrainSettings

from ..demo_data import REAL, draw

SUBSETS = (1, 2, 3, 4, 5)
DISTINCT = 40  # distinct synthetic slices; the n files are copies of their encoded bytes


def synthetic_images(root: Path, n: int, source_size: int, distinct: int = DISTINCT, seed: int = 0) -> list[str]:
    """n PNGs in the audit layout root/real/t1..t5 (paths relative to root, sorted), copies of `distinct`
    synthetic slices: decoding costs the same whatever the pixels, and writing copies takes no time."""
    per_subset = -(-distinct // len(SUBSETS))
    encoded = []
    for k in SUBSETS:
        for pixels in draw(k, len(SUBSETS), per_subset, source_size, seed, REAL, None):
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            encoded.append(buffer.getvalue())
    paths = []
    for i in range(n):
        path = f"real/t{SUBSETS[i % len(SUBSETS)]}/{i:06d}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(encoded[i % len(encoded)])
        paths.append(path)
    return sorted(paths)


def synthetic_run(run_dir: Path, image_size: int, seed: int = 0) -> None:
    """A run folder with a random-init checkpoint, as `ganprov train` would leave it."""
    from ganprov.core.run_folder import RunFolder
    from ganprov.features.backbone import build_model
    from ganprov.features.checkpoint import save, untrained_meta

    model, origin = build_model(len(SUBSETS), "none", seed)
    settings = TrainSettings(data="", weights="none", image_size=image_size, seed=seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    save(RunFolder(run_dir).checkpoint, model, untrained_meta(SUBSETS, settings, origin, "audit"))


def synthetic_rows(n: int, seed: int, dim: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n rows as embed writes them: dim-d embeddings (non-negative, like pooled ReLU features) and noise
    residuals (float16, a fixed pattern per subset's generator under unit noise), each in one overlapping
    cluster per subset, and the subset labels. The cluster centres are the same for every seed, the rows are not."""
    from ganprov.features.residual import RESIDUAL_DIM

    centres = np.random.default_rng(2025)
    embedding_centres = centres.normal(0, 1, (len(SUBSETS), dim))
    patterns = centres.normal(0, 1, (len(SUBSETS), RESIDUAL_DIM))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(SUBSETS), n)
    embeddings = np.maximum(embedding_centres[index] * 0.5 + rng.normal(0, 1, (n, dim)), 0).astype(np.float32)
    residuals = (patterns[index] + rng.normal(0, 1, (n, RESIDUAL_DIM))).astype(np.float16)
    return embeddings, residuals, np.asarray(SUBSETS)[index]
