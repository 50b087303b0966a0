"""What one bench measures: the sizes of its inputs and stages, with their defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ganprov.core.errors import GanprovError
from ganprov.core.settings import TrainSettings

from .synthetic import SUBSETS

BATCH_SIZE = TrainSettings(data="").batch_size  # 64: `ganprov embed`'s default
WORKERS = TrainSettings(data="").workers  # `ganprov embed`'s default number of decoding workers
DEFAULT_N = {64: 2048, 224: 512}  # about 5-15 s per image stage on a quiet 2-core CPU
MEMORY_N = (2000, 20000)
MEMORY_IMAGE_SIZE = 16  # the memory stage embeds 22,000 images: tiny ones, so it measures growth with N quickly
MEMORY_SOURCE_SIZE = 64


def default_n(image_size: int) -> int:
    """Images per image stage: scaled with the cost of a forward pass (∝ pixels), at least four batches."""
    if image_size in DEFAULT_N:
        return DEFAULT_N[image_size]
    return int(np.clip(2048 * (64 / image_size) ** 2, 4 * BATCH_SIZE, 4096))


@dataclass
class BenchSpec:
    """One bench: images of `image_size` px decoded from `source_size`-px PNGs, `n` per image stage; heads fit
    on `heads_n` rows and predict `heads_predict_n`; embed's memory at the two `memory_n`. A None is filled in
    with its default when the spec is made."""
    image_size: int = 64
    n: int | None = None  # default_n(image_size)
    device: str = "auto"
    heads_n: int = 25000
    heads_predict_n: int | None = None  # heads_n
    workers: int = WORKERS
    source_size: int = 256
    memory_n: tuple[int, int] = MEMORY_N
    memory_image_size: int = MEMORY_IMAGE_SIZE
    memory_source_size: int = MEMORY_SOURCE_SIZE
    seed: int = 0
    processes: int | None = None  # for the torchrun stage: one per GPU, else one per CPU core; 1 skips it
    baseline_environment: dict | None = None  # what stages 1 and 3 run in: this process's environment

    def __post_init__(self):
        self.n = default_n(self.image_size) if self.n is None else self.n
        if self.n < 1 or self.heads_n < len(SUBSETS) or len(self.memory_n) != 2:
            raise GanprovError(f"need n >= 1, heads_n >= {len(SUBSETS)} and two memory sizes")
        self.heads_predict_n = self.heads_n if self.heads_predict_n is None else self.heads_predict_n
        self.memory_n = tuple(self.memory_n)
        if self.baseline_environment is None:
            self.baseline_environment = dict(os.environ)
