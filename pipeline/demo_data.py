"""A small SYNTHETIC data set in the challenge layout, for `ganprov demo` and the tests.

These images are NOT medical images and contain no patient data: they are drawn procedurally from ellipses
to look roughly like axial CT slices (dark air, a grey body, bright bone, a few organs, mild noise). Each
subset is a slab of made-up anatomy: its slices come from its own, slightly overlapping range of a "slice
position" that moves and resizes the organs. "Generated" images imitate a GAN trained on one subset: new
draws from that subset's range plus a per-subset generator mark (blur, a faint periodic upsampling
pattern fixed to the pixel grid, as transposed convolutions leave, an intensity shift). Only numpy and Pillow; the same seed gives byte-identical files.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ganprov.core.errors import GanprovError

NAMINGS = ("gen_t", "t")
OVERLAP = 1.25  # each subset's position range is this much wider than its share, so neighbours overlap
REAL, GENERATED, UNKNOWN, GENERATOR_MARK, SHUFFLE = range(5)  # independent random streams per purpose


def bump(p: float, centre: float, width: float) -> float:
    """How present an organ is at slice position p: 1 at its centre, fading smoothly away."""
    return float(np.exp(-((p - centre) / width) ** 2))


def anatomy(p: float, rng: np.random.Generator) -> list[tuple[float, float, float, float, float]]:
    """Ellipses (cx, cy, ax, ay, grey) painted in order; y points down (posterior), as radiologists view."""
    s = rng.uniform(0.93, 1.07)  # patient size
    ax, ay = s * (0.62 + 0.25 * p), s * (0.52 + 0.06 * np.sin(2 * np.pi * p))

    def grey(value: float) -> float:  # per-image contrast jitter, as between scanners and patients
        return value + rng.normal(0, 0.02)

    lungs, ribs, liver = bump(p, 0.3, 0.18), bump(p, 0.35, 0.2), bump(p, 0.6, 0.15)
    kidneys, pelvis = bump(p, 0.75, 0.1), bump(p, 0.95, 0.12)
    shapes = [(0, 0, ax, ay, grey(0.33)),  # skin and fat
              (0, 0, 0.9 * ax, 0.9 * ay, grey(0.45 + 0.45 * ribs)),  # rib cage where ribs are, else muscle
              (0, 0, 0.84 * ax, 0.84 * ay, grey(0.45))]
    if lungs > 0.05:
        shapes += [(x * 0.4 * ax, -0.05, 0.32 * ax * lungs, 0.6 * ay * lungs, grey(0.06)) for x in (-1, 1)]
        shapes.append((0.08, -0.1 * ay, 0.22 * ax * lungs, 0.3 * ay * lungs, grey(0.55)))  # heart
    if liver > 0.05:
        shapes.append((-0.35 * ax, -0.1 * ay, 0.5 * ax * liver, 0.55 * ay * liver, grey(0.56)))
    if kidneys > 0.05:
        shapes += [(x * 0.42 * ax, 0.35 * ay, 0.14 * kidneys, 0.2 * kidneys, grey(0.62)) for x in (-1, 1)]
    for _ in range(rng.poisson(4 * bump(p, 0.8, 0.15))):  # bowel gas: random dark pockets
        shapes.append((rng.uniform(-0.4, 0.4) * ax, rng.uniform(-0.4, 0.2) * ay, *rng.uniform(0.03, 0.08, 2), 0.1))
    if pelvis > 0.05:
        shapes.append((0, -0.1 * ay, 0.3 * ax * pelvis, 0.3 * ay * pelvis, grey(0.38)))  # bladder
        shapes += [(x * 0.62 * ax, 0.1 * ay, 0.08 * pelvis, 0.4 * ay * pelvis, grey(0.85)) for x in (-1, 1)]
    shapes += [(0.06, 0.35 * ay, 0.06, 0.06, grey(0.62)),  # aorta
               (0, 0.68 * ay, 0.1 + 0.04 * p, 0.1, grey(0.92)),  # vertebra
               (0, 0.68 * ay, 0.035, 0.035, grey(0.3))]  # spinal canal
    return shapes


def render(p: float, rng: np.random.Generator, size: int) -> np.ndarray:
    """One slice at position p as floats in [0, 1]: soft-edged ellipses over air, then scanner noise."""
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    angle, (dx, dy) = rng.normal(0, 0.06), rng.normal(0, 0.03, 2)  # patient lying slightly off-centre
    x0, y0 = grid[None, :] - dx, grid[:, None] - 0.05 - dy
    x, y = np.cos(angle) * x0 + np.sin(angle) * y0, -np.sin(angle) * x0 + np.cos(angle) * y0
    image = np.full((size, size), 0.02)
    soft = 3.0 / size  # edge width of about 1.5 pixels at any size
    for cx, cy, ax, ay, grey in anatomy(p, rng):
        r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
        mask = np.clip((1 - r) * min(ax, ay) / soft + 0.5, 0, 1)
        image += (grey - image) * mask
    return image + rng.normal(0, rng.uniform(0.01, 0.025), image.shape)


def generator_mark(rng: np.random.Generator) -> dict:
    """What one subset's generator always does to its output: its own blur, pattern and intensity shift."""
    return {"blur": rng.uniform(0.4, 0.8), "tile": rng.choice([-1.0, 1.0], (4, 4)),
            "amplitude": rng.uniform(0.02, 0.035), "gain": rng.uniform(0.94, 1.06), "offset": rng.uniform(-0.03, 0.03)}


def as_generated(image: np.ndarray, mark: dict) -> np.ndarray:
    """Blur slightly (GANs lose fine noise), add the faint upsampling pattern, shift intensity."""
    padded = np.pad(image, 1, mode="edge")  # separable [1, 2, 1] / 4 blur along rows, then columns
    down = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    blurred = 0.25 * down[:, :-2] + 0.5 * down[:, 1:-1] + 0.25 * down[:, 2:]
    image = image + mark["blur"] * (blurred - image)
    # Two stride-2 upsamplings repeat a 4×4 tile of biases over the whole image.
    reps = (-(-image.shape[0] // 4), -(-image.shape[1] // 4))
    pattern = np.tile(mark["tile"], reps)[:image.shape[0], :image.shape[1]]
    return image * mark["gain"] + mark["offset"] + mark["amplitude"] * pattern


def positions(subset: int, subsets: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n slice positions from subset's slab of [0, 1], widened so neighbouring slabs share their edges."""
    centre, half = (subset - 0.5) / subsets, OVERLAP * 0.5 / subsets
    return rng.uniform(centre - half, centre + half, n)


def draw(subset: int, subsets: int, n: int, size: int, seed: int, stream: int, mark: dict | None) -> list:
    """n 8-bit slices of one subset; with a generator mark, as that generator would make them."""
    rng = np.random.default_rng([seed, stream, subset])
    images = []
    for p in positions(subset, subsets, n, rng):
        image = render(p, rng, size)
        image = as_generated(image, mark) if mark is not None else image
        images.append(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))
    return images


class ForeignFiles(GanprovError, FileExistsError):
    """The demo data folder holds files this demo data set would not write; the CLI prints it as one line."""


def refuse_foreign_files(root: Path, planned: set[str]) -> None:
    """Rewriting our own files is fine; mixing with files we would not write (other data, a larger earlier
    call, a generated/ we were asked to leave out) would corrupt the data set silently."""
    if (root / "truth.csv").exists() and "truth.csv" not in planned:
        raise ForeignFiles(f"{root / 'truth.csv'} exists but this demo data set has no unknown images")
    for folder in ("real", "generated", "generated_unknown"):
        for dirpath, _, names in os.walk(root / folder):
            foreign = [n for n in names if Path(dirpath, n).relative_to(root).as_posix() not in planned]
            if foreign:
                raise ForeignFiles(f"{dirpath} already holds files this demo data set does not: {foreign[0]}")


def write_if_changed(path: Path, content: bytes) -> None:
    """Files already as they should be are left alone: their modification times key the embeddings cache, so a
    second `ganprov demo` reuses every finished step."""
    if path.is_file() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def write_demo_data(root, subsets=5, real_per_subset=60, generated_per_subset=40, unknown_per_subset=40,
                    size=64, seed=0, generated=True, unknown=True, naming="gen_t") -> dict:
    """Write real/t1..tK, generated/{naming}1..K, generated_unknown/ and truth.csv under root; a summary back."""
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}, not {naming!r}")
    if subsets < 1 or size < 8:
        raise ValueError("need at least one subset and images of at least 8 pixels")
    root = Path(root)
    marks = {k: generator_mark(np.random.default_rng([seed, GENERATOR_MARK, k])) for k in range(1, subsets + 1)}
    n_generated, n_unknown = generated_per_subset if generated else 0, unknown_per_subset if unknown else 0
    files = {}
    for k in range(1, subsets + 1):
        for i, image in enumerate(draw(k, subsets, real_per_subset, size, seed, REAL, None)):
            files[f"real/t{k}/{i:05d}.png"] = image
        for i, image in enumerate(draw(k, subsets, n_generated, size, seed, GENERATED, marks[k])):
            files[f"generated/{naming}{k}/{i:05d}.png"] = image
    # The unknown set: the same generators, independent draws, shuffled so file names say nothing.
    pool = [(image, k) for k in range(1, subsets + 1)
            for image in draw(k, subsets, n_unknown, size, seed, UNKNOWN, marks[k])]
    shuffled = [pool[i] for i in np.random.default_rng([seed, SHUFFLE]).permutation(len(pool))]
    truth = [(f"{j:05d}.png", k) for j, (_, k) in enumerate(shuffled)]
    files.update({f"generated_unknown/{name}": image for (name, _), (image, _) in zip(truth, shuffled)})
    refuse_foreign_files(root, set(files) | ({"truth.csv"} if unknown else set()))
    for path, image in files.items():
        encoded = io.BytesIO()
        Image.fromarray(image).save(encoded, format="PNG")
        write_if_changed(root / path, encoded.getvalue())
    truth_path = root / "truth.csv" if unknown else None
    if truth_path:
        write_if_changed(truth_path, "".join(f"{name},{label}\n" for name, label in truth).encode())
    return {"subsets": subsets, "real": subsets * real_per_subset, "truth": str(truth_path) if truth_path else None,
            "generated": subsets * n_generated, "unknown": len(truth)}
