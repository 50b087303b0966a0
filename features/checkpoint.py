"""Checkpoints: plain tensors and primitives only, so they load with torch.load(weights_only=True)."""
from __future__ import annotations

import hashlib
import io
from dataclasses import asdict
from pathlib import Path

import torch

from ganprov.core.atomic import atomic_path
from ganprov.core.errors import GanprovError
from ganprov.core.settings import TrainSettings

from .backbone import ProvenanceNet

# What train writes: checkpoint.pt holds CHECKPOINT_KEYS, last.pt all of RESUME_KEYS, and meta META_KEYS.
CHECKPOINT_KEYS = ("model", "meta")
RESUME_KEYS = CHECKPOINT_KEYS + ("optimizer", "scaler", "log")
META_KEYS = ("subsets", "image_size", "weights_origin", "settings", "epoch", "best_acc")


class CheckpointError(GanprovError):
    """A checkpoint that is missing, not ganprov's, or needs more than plain tensors to load."""


def untrained_meta(subsets, settings: TrainSettings, weights_origin: str, regime: str) -> dict:
    """The meta of a network before its first epoch: no validation accuracy yet."""
    return {"subsets": list(subsets), "image_size": settings.input_size, "weights_origin": weights_origin,
            "regime": regime, "settings": asdict(settings), "epoch": 0, "val_acc": -1.0, "best_acc": -1.0}


def save(path: str | Path, model: ProvenanceNet, meta: dict, **extra) -> None:
    with atomic_path(path) as temporary:
        torch.save({"model": model.state_dict(), "meta": meta, **extra}, temporary)


def load_raw(path: str | Path, keys: tuple[str, ...] = CHECKPOINT_KEYS) -> dict:
    """The checkpoint's contents, refused unless they hold `keys` and meta holds META_KEYS: a bare state dict
    or a foreign file stops here, in one sentence, not in a KeyError later."""
    return load_hashed(path, keys)[0]


def load_hashed(path: str | Path, keys: tuple[str, ...] = CHECKPOINT_KEYS) -> tuple[dict, str]:
    """load_raw's contents and the sha256 of the very bytes they were loaded from: one read, and a file
    replaced meanwhile cannot slip between hashing and loading."""
    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint at {path}: run `ganprov train` first")
    data = Path(path).read_bytes()  # tens of MB for ResNet-18
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # refused by the weights-only unpickler, or not a torch file
        raise CheckpointError(f"refusing checkpoint {path}: it does not load as plain tensors ({error})") from None
    meta = state.get("meta") if isinstance(state, dict) else None
    missing = (["meta"] if not isinstance(meta, dict) else
               [k for k in keys if k not in state] + [f"meta.{k}" for k in META_KEYS if k not in meta])
    if missing:
        raise CheckpointError(f"{path} is not a ganprov checkpoint (no {', '.join(missing)}): train again "
                              "with `ganprov train --force`")
    return state, hashlib.sha256(data).hexdigest()


def load_model(path: str | Path) -> tuple[ProvenanceNet, dict]:
    """The trained network (eval mode, CPU) and its metadata, with the file's sha256 as checkpoint_sha256."""
    state, digest = load_hashed(path)
    model = ProvenanceNet(len(state["meta"]["subsets"]))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError) as error:  # other shapes or names: not this network
        raise CheckpointError(f"{path} does not hold a ganprov ResNet-18 for {len(state['meta']['subsets'])} "
                              f"subsets ({str(error).splitlines()[0]})") from None
    return model.to(memory_format=torch.channels_last).eval(), state["meta"] | {"checkpoint_sha256": digest}
