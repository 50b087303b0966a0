"""ResNet-18 with the paper's head: fc replaced by K outputs, 512-d features after global average pooling.

The network takes uint8 images and normalises them itself, so the normalisation travels with every
checkpoint and cannot be forgotten at scoring time.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models import ResNet18_Weights, resnet18

from ganprov.core.digest import sha256_of
from ganprov.core.errors import GanprovError
from ganprov.core.schema import EMBEDDING_DIM

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailable(GanprovError):
    """The requested initial weights cannot be had; the message names the alternatives."""


class ProvenanceNet(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        self.fc = nn.Linear(EMBEDDING_DIM, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×3×H×W → N×512 penultimate features."""
        x = (images.float() - self.mean) / self.std
        return self.backbone(x.contiguous(memory_format=torch.channels_last))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))


def for_inference(model: ProvenanceNet) -> ProvenanceNet:
    """A copy for embedding: each batch norm folded into the convolution before it, which frozen running
    statistics allow (measured +10 % images/s at 64 px on the CPU; features equal to 1e-5)."""
    model = copy.deepcopy(model).eval()
    blocks = [model.backbone] + [block for layer in (model.backbone.layer1, model.backbone.layer2,
                                                     model.backbone.layer3, model.backbone.layer4) for block in layer]
    for block in blocks:
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
            if hasattr(block, bn):
                setattr(block, conv, fuse_conv_bn_eval(getattr(block, conv), getattr(block, bn)))
                setattr(block, bn, nn.Identity())
        if getattr(block, "downsample", None) is not None:
            block.downsample = fuse_conv_bn_eval(block.downsample[0], block.downsample[1])
    return model


def imagenet_state_dict() -> dict:
    """torchvision's IMAGENET1K_V1 weights, from the torch hub cache or downloaded into it."""
    weights = ResNet18_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (URLError, OSError, RuntimeError) as error:
        raise WeightsUnavailable(
            f"ImageNet weights for ResNet-18 are not cached at {cached} and could not be downloaded "
            f"({type(error).__name__}: {error}). Use --weights none for random initialisation, or "
            f"--weights PATH with a local ResNet-18 state-dict file (e.g. a copy of {Path(weights.url).name})."
        ) from None


def file_state_dict(path: str | os.PathLike) -> dict:
    """A ResNet-18 state dict from a local file; plain tensors only (weights_only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsUnavailable(f"weights file {path} does not exist; use --weights none or imagenet") from None
    except Exception as error:  # unpickling refused or not a torch file
        raise WeightsUnavailable(f"weights file {path} is not a plain state dict: {error}") from None
    for key in ("state_dict", "model"):  # common wrappers around a state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"weights file {path} does not hold a state dict")
    return {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}


def initial_weights(spec: str) -> tuple[dict | None, str]:
    """Resolve --weights (imagenet | none | PATH) to a backbone state dict and a provenance string."""
    if spec == "none":
        return None, "none"
    if spec == "imagenet":
        return imagenet_state_dict(), f"torchvision:{ResNet18_Weights.IMAGENET1K_V1}"
    return file_state_dict(spec), f"file:{Path(spec).name}:sha256={sha256_of(spec)}"


def build_model(num_classes: int, weights: str, seed: int) -> tuple[ProvenanceNet, str]:
    """A fresh network for K subsets, seeded; backbone weights from `weights`. Returns (model, origin)."""
    state, origin = initial_weights(weights)
    torch.manual_seed(seed)
    model = ProvenanceNet(num_classes)
    if state is not None:
        backbone_state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = model.backbone.load_state_dict(backbone_state, strict=False)
        if missing or unexpected:
            raise WeightsUnavailable(
                f"--weights {weights} does not fit ResNet-18: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
    return model.to(memory_format=torch.channels_last), origin
