"""Training settings: the paper's defaults, resolved once and saved to RUN/config.toml. No torch here.

The checks below are the one definition of what a numeric option or device may be: the CLI uses them as
argparse `type=` functions for every sub-command, and TrainSettings runs them on its fields, so the Python API
refuses the same values with the same words.
"""
from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass, fields

from . import volumes
from .errors import GanprovError
from .layout import MIN_HELDOUT

# auto: with labelled generated images, train on real and on real+generated and keep the better on held-out
# generated images; without them (audit regime), real.
TRAIN_ON = ("auto", "real", "real+generated")
# The size the content backbone sees: --image-size (full) or half of it, without the finest detail, which a
# generator redraws in its own way. Half was better on two benchmarks and worse on two others, once wrong
# where full size was not (README, "Content at half resolution"), so full, the paper's, stays the default.
CONTENT_RESOLUTION = ("full", "half")
# ResNet-18 runs at any size (measured down to 1 px) but halves it five times: at 16 px (bench's memory stage)
# its last two stages already see one pixel; smaller leaves nothing to learn from. Above 1024 px a batch's
# activations take tens of gigabytes while CT slices (512 px) gain nothing from upsampling.
IMAGE_SIZES = (16, 1024)
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class SettingsError(GanprovError, argparse.ArgumentTypeError):
    """A value out of range. As an ArgumentTypeError, argparse reports it against its option (exit code 2)."""


def whole_number(low: int, high: int | None = None):
    """A check for whole numbers from `low` (to `high`)."""
    def check(value) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if number is None or number < low or (high is not None and number > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise SettingsError(f"must be a whole number {span}, not {value!r}")
        return number
    return check


def number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"must be a number, not {value!r}") from None


def positive_float(value) -> float:
    """Finite and above 0: a learning rate of 0, nan or inf trains nothing."""
    if not (math.isfinite(x := number(value)) and x > 0):
        raise SettingsError(f"must be a finite number above 0, not {value!r}")
    return x


def fraction(value) -> float:
    """Strictly between 0 and 1: a quantile or a significance level."""
    if not 0 < (x := number(value)) < 1:  # nan fails too
        raise SettingsError(f"must be a number strictly between 0 and 1, not {value!r}")
    return x


def device_name(value) -> str:
    if not isinstance(value, str) or not DEVICE.fullmatch(value):
        raise SettingsError(f"must be auto, cpu, cuda, cuda:N or mps, not {value!r}")
    return value


def one_of(choices: tuple[str, ...]):
    """A check for one of a few words."""
    def check(value) -> str:
        if value not in choices:
            raise SettingsError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value
    return check


def window_choice(value) -> str:
    """file, a preset (core/volumes.py) or CENTER,WIDTH: how DICOM and NIfTI images become 8-bit."""
    try:
        volumes.parse_window(value)
    except (TypeError, ValueError, AttributeError) as error:
        raise SettingsError(str(error) if isinstance(error, ValueError) else f"must be a string, not {value!r}") from None
    return value


train_on_choice = one_of(TRAIN_ON)
content_resolution_choice = one_of(CONTENT_RESOLUTION)
positive_int = whole_number(1)
non_negative_int = whole_number(0)
pixel_size = whole_number(*IMAGE_SIZES)
seed_int = whole_number(0, 2 ** 32 - 1)  # what numpy and scikit-learn accept as a seed
axis = whole_number(0, 2)


@dataclass
class TrainSettings:
    data: str
    weights: str = "imagenet"
    train_on: str = "auto"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-4
    image_size: int = 224
    content_resolution: str = "full"
    seed: int = 0
    min_heldout: int = MIN_HELDOUT  # held-out images per subset, at least (core/layout.py)
    device: str = "auto"
    workers: int = min(4, os.cpu_count() or 1)
    amp: bool = True
    augment: bool = False
    strict: bool = False
    window: str = "file"  # DICOM and NIfTI only: core/volumes.py
    slice_axis: int = 2  # NIfTI volumes are sliced along this axis

    @property
    def input_size(self) -> int:
        """The network's input size: image_size, or half of it (never below the smallest allowed)."""
        return self.image_size if self.content_resolution == "full" else max(IMAGE_SIZES[0], self.image_size // 2)

    @property
    def reading(self) -> volumes.Reading:
        return volumes.Reading(self.window, self.slice_axis)

    def __post_init__(self):
        for name, check in CHECKS.items():
            try:
                setattr(self, name, check(getattr(self, name)))
            except SettingsError as error:
                raise SettingsError(f"{name} {error}") from None

    @classmethod
    def from_config(cls, values: dict) -> TrainSettings:
        # Runs from before `min_heldout` held out a plain fifth: 0 splits their images as they were split.
        values = {"min_heldout": 0} | values
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


CHECKS = {"train_on": train_on_choice, "epochs": positive_int, "batch_size": positive_int, "lr": positive_float,
          "image_size": pixel_size, "content_resolution": content_resolution_choice, "seed": seed_int,
          "min_heldout": non_negative_int, "device": device_name, "workers": non_negative_int,
          "window": window_choice, "slice_axis": axis}
