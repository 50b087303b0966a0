"""Augmentation that keeps a slice's identity: what a generator changes (framing, sharpness, contrast), not
what it learned (anatomy). Works on the uint8 tensors images.py produces."""
from __future__ import annotations

import torchvision.transforms.v2 as T


def identity_preserving(size: int) -> T.Compose:
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),  # small shifts and zooms
        T.RandomApply([T.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.5),  # GAN samples are often softer
        T.ColorJitter(brightness=0.2, contrast=0.2),  # generators drift in intensity
    ])
