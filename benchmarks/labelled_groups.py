#!/usr/bin/env python3
"""How well generator groups are found on LABELLED generated folders (no truth file): per benchmark and
channel (as PNG, re-saved as JPEG 75, scaled ×2, ×1.5, ×0.75, ×0.5), for each number of anatomy directions
taken out of the residuals (models/generators.py, `content_components`): the adjusted Rand index of all the
benchmark's folders grouped together, how many single folders come out as one group, and how many pairs of
folders come out as exactly their two generators. Real images are resized as embed's twin resizes them.

  python benchmarks/labelled_groups.py --bench ../shared/bench/mri-slab ../bench-extra/twin-mri-slab-t2 \\
      ../bench-extra/upsample-mri-slab-t2 --bench ../shared/bench/mri-random ../bench-extra/twin-mri-random-t2 \\
      --bench ../bench-extra/inia-slab ../bench-extra/twin-inia-slab-t2 ../bench-extra/upsample-inia-slab-t2
"""
import argparse
import io
import itertools
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from ganprov.features.residual import noise_residual
from ganprov.models.generators import content_directions, generator_groups, unit_residuals

CHANNELS = ("png", "jpeg75", "scale2", "scale1.5", "scale0.75", "scale0.5")
PER_FOLDER = 200


def residual(path: Path, channel: str, real: bool) -> np.ndarray:
    image = Image.open(path).convert("L")
    if channel.startswith("scale"):  # as recompose.py resizes the unknown set, and embed the real images
        factor = float(channel[5:])
        image = image.resize((round(image.width * factor), round(image.height * factor)), Image.BILINEAR)
    elif channel.startswith("jpeg") and not real:  # only the scored images are re-saved
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(channel[4:]))
        image = Image.open(buffer).convert("L")
    return noise_residual(np.asarray(image))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", nargs="+", action="append", required=True, type=Path,
                    help="a benchmark folder (real/, generated/gen_tK/), then any extra generator folders")
    ap.add_argument("--k", nargs="+", type=int, default=[0, 64], help="anatomy directions taken out")
    a = ap.parse_args()
    for root, *extras in a.bench:
        folders = sorted((root / "generated").iterdir()) + extras
        pairs = list(itertools.combinations(range(len(folders)), 2))
        for channel in CHANNELS:
            real = np.stack([residual(p, channel, True) for p in sorted((root / "real").rglob("*.png"))])
            generated, truth = [], []
            for i, folder in enumerate(folders):
                files = sorted(folder.glob("*.png"))[:PER_FOLDER]
                generated += [residual(p, channel, False) for p in files]
                truth += [i] * len(files)
            generated, truth = np.stack(generated), np.array(truth)
            line = []
            for k in a.k:
                units = unit_residuals(generated, content_directions(real, k) if k else None)
                groups = generator_groups(units)
                singles = sum(generator_groups(units[truth == i]).max() == 0 for i in range(len(folders)))
                exact = sum(adjusted_rand_score(truth[np.isin(truth, p)], generator_groups(units[np.isin(truth, p)]))
                            >= 0.95 for p in pairs)
                line.append(f"k {k}: all {groups.max() + 1} groups ARI {adjusted_rand_score(truth, groups):.3f}, "
                            f"single {singles}/{len(folders)}, pairs {exact}/{len(pairs)}")
            print(f"{root.name} {channel} | " + " | ".join(line), flush=True)


if __name__ == "__main__":
    main()
