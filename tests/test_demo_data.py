"""The synthetic demo data: layout, determinism, truth.csv, image format, and that subsets are learnable."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganprov.core.layout import discover
from ganprov.pipeline.demo_data import write_demo_data

TINY = dict(subsets=3, real_per_subset=4, generated_per_subset=3, unknown_per_subset=2, size=32)


def tree(root: Path) -> dict[str, bytes]:
    """Every file below root, by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_truth(root: Path) -> list[tuple[str, int]]:
    return [(name, int(label)) for name, label in
            (line.split(",") for line in (root / "truth.csv").read_text().splitlines())]


def pixels(paths, side: int = 16) -> np.ndarray:
    """Images downsampled to side×side and flattened: enough for a nearest-centroid check."""
    return np.stack([np.asarray(Image.open(p).resize((side, side), Image.Resampling.BOX), dtype=np.float32).ravel()
                     for p in paths])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tiny")
    return root, write_demo_data(root, **TINY)


@pytest.mark.parametrize("naming, folder", [("gen_t", "gen_t"), ("t", "t")])
def test_layout_has_the_requested_folders_and_counts(tmp_path, naming, folder):
    summary = write_demo_data(tmp_path, **TINY, naming=naming)
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["t1", "t2", "t3"]
    assert sorted(p.name for p in (tmp_path / "generated").iterdir()) == [f"{folder}{k}" for k in (1, 2, 3)]
    for k in (1, 2, 3):
        assert len(list((tmp_path / "real" / f"t{k}").glob("*.png"))) == 4
        assert len(list((tmp_path / "generated" / f"{folder}{k}").glob("*.png"))) == 3
    unknown = sorted((tmp_path / "generated_unknown").iterdir())
    assert [p.name for p in unknown] == [f"{i:05d}.png" for i in range(6)]  # flat, neutral names
    assert summary == {"subsets": 3, "real": 12, "generated": 9, "unknown": 6, "truth": str(tmp_path / "truth.csv")}
    layout = discover(tmp_path)  # ganprov itself reads it as challenge data
    assert layout.subsets == (1, 2, 3) and layout.regime == "challenge"
    assert len(layout.splits["unknown"]) == 6


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path, tiny):
    root, _ = tiny
    write_demo_data(tmp_path / "again", **TINY)
    write_demo_data(tmp_path / "other", **TINY, seed=1)
    assert tree(tmp_path / "again") == tree(root)
    other = tree(tmp_path / "other")
    assert other.keys() == tree(root).keys()
    assert all(other[path] != content for path, content in tree(root).items() if path.endswith(".png"))


def test_rewriting_the_same_data_is_allowed_but_mixing_with_other_files_is_refused(tmp_path):
    write_demo_data(tmp_path, **TINY)
    stamps = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*") if path.is_file()}
    write_demo_data(tmp_path, **TINY)  # e.g. `make demo` run twice: files left alone, so the cache holds
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*") if path.is_file()} == stamps
    with pytest.raises(FileExistsError):
        write_demo_data(tmp_path, **{**TINY, "real_per_subset": 2})  # would leave two stale images per subset
    with pytest.raises(FileExistsError):
        write_demo_data(tmp_path, **TINY, generated=False)  # would leave a generated/ it was asked not to write


def test_truth_csv_names_every_unknown_file_once_with_a_subset_label(tiny):
    root, summary = tiny
    assert not (root / "truth.csv").read_text().startswith("filename")  # no header
    truth = read_truth(root)
    names = [name for name, _ in truth]
    assert sorted(names) == sorted(p.name for p in (root / "generated_unknown").iterdir())
    assert len(set(names)) == len(names) == summary["unknown"]
    assert {label for _, label in truth} == {1, 2, 3}
    assert sorted(label for _, label in truth) != [label for _, label in truth]  # shuffled


def test_images_are_8bit_greyscale_of_the_requested_size(tiny):
    root, _ = tiny
    for path in root.rglob("*.png"):
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "L", (32, 32))


def test_generated_images_are_new_draws_not_copies_of_real_ones(tiny):
    root, _ = tiny
    files = tree(root)
    real = {content for path, content in files.items() if path.startswith("real/")}
    assert not real & {content for path, content in files.items() if path.startswith("generated")}


def test_optional_parts_can_be_left_out(tmp_path):
    summary = write_demo_data(tmp_path, **TINY, generated=False, unknown=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real"]
    assert summary == {"subsets": 3, "real": 12, "generated": 0, "unknown": 0, "truth": None}
    assert discover(tmp_path).regime == "audit"


def test_unknown_naming_style_is_refused(tmp_path):
    with pytest.raises(ValueError, match="naming"):
        write_demo_data(tmp_path, **TINY, naming="subset_")


def test_a_centroid_classifier_trained_on_real_images_traces_generated_ones(tmp_path):
    subsets = 5
    write_demo_data(tmp_path, subsets=subsets, real_per_subset=24, generated_per_subset=12, unknown_per_subset=12,
                    size=32)
    real = [pixels(sorted((tmp_path / "real" / f"t{k}").glob("*.png"))) for k in range(1, subsets + 1)]
    centroids = np.stack([features.mean(axis=0) for features in real])

    def accuracy(features: np.ndarray, labels: np.ndarray) -> float:
        nearest = np.argmin(((features[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1) + 1
        return float((nearest == labels).mean())

    generated = sorted((tmp_path / "generated").rglob("*.png"))
    labels = np.array([int(p.parent.name.removeprefix("gen_t")) for p in generated])
    assert accuracy(pixels(generated), labels) > 1.5 / subsets
    truth = read_truth(tmp_path)
    unknown = pixels([tmp_path / "generated_unknown" / name for name, _ in truth])
    assert accuracy(unknown, np.array([label for _, label in truth])) > 1.5 / subsets
