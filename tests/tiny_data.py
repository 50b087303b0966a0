"""Tiny data sets made by the tests themselves: a few 32-px images per subset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def subset_image(label: int, index: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A greyscale square whose stripe frequency says which subset it belongs to."""
    y = np.linspace(0, 1, size)[:, None]
    x = np.linspace(0, 1, size)[None, :]
    pattern = 0.5 + 0.4 * np.sin(2 * np.pi * (label + 1) * (x + 0.1 * index) + 3 * y)
    pixels = np.clip(pattern * 255 + rng.normal(0, 10, (size, size)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L")


def make_data(root: Path, subsets=(1, 2, 3), per_subset=4, size=32, generated="gen_t", unknown=6, seed=0) -> Path:
    """real/tK, generated/<generated>K (None: no generated/), generated_unknown/ of `unknown` images."""
    rng = np.random.default_rng(seed)
    for label in subsets:
        for split, folder, n in (("real", f"t{label}", per_subset), ("generated", f"{generated}{label}", per_subset)):
            if split == "generated" and generated is None:
                continue
            target = root / split / folder
            target.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                subset_image(label, i, size, rng).save(target / f"{folder}_{i:03d}.png")
    if unknown:
        target = root / "generated_unknown"
        target.mkdir(parents=True, exist_ok=True)
        for i in range(unknown):
            subset_image(subsets[i % len(subsets)], i, size, rng).save(target / f"{i:05d}.png")
    return root

