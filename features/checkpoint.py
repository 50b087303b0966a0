"""Checkpoints: plain tensors and primitives only, so they load with torch.load(weights_only=True)."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from .backbone import ProvenanceNet
from .errors import GanprovError


class CheckpointError(GanprovError):
    """A checkpoint that is missing, not ganprov's, or needs more than plain tensors to load."""


def save(path: str | Path, model: ProvenanceNet, meta: dict, **extra) -> None:
    with atomic_path(path) as temporary:
        torch.save({"model": model.state_dict(), "meta": meta, **extra}, temporary)


def load_raw(path: str | Path) -> dict:
    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint at {path}: run `ganprov train` first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # refused by the weights-only unpickler, or not a torch file
        raise CheckpointError(f"refusing checkpoint {path}: it does not load as plain tensors ({error})") from None


def load_model(path: str | Path) -> tuple[ProvenanceNet, dict]:
    """The trained network (eval mode, CPU) and its metadata."""
    state = load_raw(path)
    if not isinstance(state, dict) or "model" not in state or "meta" not in state:
        raise CheckpointError(f"{path} is not a ganprov checkpoint")
    model = ProvenanceNet(len(state["meta"]["subsets"]))
    model.load_state_dict(state["model"])
    return model.to(memory_format=torch.channels_last).eval(), state["meta"]
