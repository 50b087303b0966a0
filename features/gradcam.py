"""Grad-CAM on the fine-tuned backbone: which regions of an image drove its score for a subset (the
`grad-cam` package, on ResNet-18's last residual block), overlaid on the image as the network saw it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganprov.core.errors import GanprovError
from ganprov.core.volumes import Reading

from .checkpoint import load_model
from .images import BadImage, load_image

BATCH = 32


def overlays(checkpoint: str | Path, items: list[tuple[Path, int]],
             reading: Reading = Reading()) -> list[np.ndarray | None]:
    """For each (image path, subset), the image at the network's input size (H×W×3 uint8) with the Grad-CAM
    map of that subset's output over it; None for an image that cannot be read or a subset the network lacks."""
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.image import show_cam_on_image
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        raise GanprovError("Grad-CAM needs the grad-cam package: pip install grad-cam") from None
    model, meta = load_model(checkpoint)
    subsets, size = list(meta["subsets"]), int(meta["image_size"])
    readable = []
    for row, (path, subset) in enumerate(items):
        try:
            if subset in subsets:
                readable.append((row, load_image(path, size, reading), subsets.index(subset)))
        except BadImage:
            pass
    results: list[np.ndarray | None] = [None] * len(items)
    with GradCAM(model=model, target_layers=[model.backbone.layer4[-1]]) as cam:
        for start in range(0, len(readable), BATCH):
            batch = readable[start:start + BATCH]
            images = torch.stack([image for _, image, _ in batch]).float()
            maps = cam(input_tensor=images, targets=[ClassifierOutputTarget(index) for _, _, index in batch])
            for (row, image, _), heat in zip(batch, maps, strict=True):
                rgb = image.permute(1, 2, 0).numpy().astype(np.float32) / 255
                results[row] = show_cam_on_image(rgb, heat, use_rgb=True)
    return results
