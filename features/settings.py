"""Training settings: the paper's defaults, resolved once and saved to RUN/config.toml. No torch here."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

# auto: with labelled generated images, train on real and on real+generated and keep the better on held-out
# generated images; without them (audit regime), real.
TRAIN_ON = ("auto", "real", "real+generated")


@dataclass
class TrainSettings:
    data: str
    weights: str = "imagenet"
    train_on: str = "auto"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-4
    image_size: int = 224
    seed: int = 0
    device: str = "auto"
    workers: int = min(4, os.cpu_count() or 1)
    amp: bool = True
    augment: bool = False
    strict: bool = False

    @classmethod
    def from_config(cls, values: dict) -> "TrainSettings":
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
