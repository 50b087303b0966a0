"""Images of more than 8 bits a channel (16-bit PNG or TIFF, 32-bit integer or float) as 8-bit ones, stretched
over their own range: how the network sees them (features/images.py) and the report shows them. No torch."""
from __future__ import annotations

import numpy as np
from PIL import Image

# Stretched to their own range, since CT exports rarely fill 16 bits.
HIGH_DEPTH_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}


def to_8bit(image: Image.Image) -> Image.Image:
    """Greyscale stays one 8-bit channel (cheaper to resize); everything else becomes RGB."""
    if image.mode in HIGH_DEPTH_MODES:
        pixels = np.asarray(image, dtype=np.float32)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode in ("L", "1"):
        return image.convert("L")
    return image.convert("RGB")  # RGB, RGBA, LA, P, PA, CMYK, YCbCr, ...
