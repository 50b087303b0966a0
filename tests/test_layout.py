import numpy as np
import pytest

from features.layout import LayoutError, discover, stratified_holdout
from tiny_data import make_data


@pytest.mark.parametrize("style", ["gen_t", "t"])
def test_both_generated_naming_styles_mean_the_same_subsets(tmp_path, style):
    layout = discover(make_data(tmp_path, generated=style))
    assert layout.subsets == (1, 2, 3)
    assert layout.regime == "challenge"
    generated = layout.splits["generated"]
    assert generated.labels == (1,) * 4 + (2,) * 4 + (3,) * 4
    assert generated.paths[0] == f"generated/{style}1/{style}1_000.png"


def test_k_is_discovered_not_fixed(tmp_path):
    layout = discover(make_data(tmp_path, subsets=(1, 2, 3, 4, 5, 6, 7), per_subset=2))
    assert layout.subsets == tuple(range(1, 8))
    assert len(layout.splits["real"]) == 14


def test_paths_are_relative_sorted_and_unknown_is_labelled_zero(data):
    layout = discover(data)
    real = layout.splits["real"]
    assert list(real.paths) == sorted(real.paths)
    assert all(not p.startswith("/") and p.startswith("real/t") for p in real.paths)
    unknown = layout.splits["unknown"]
    assert unknown.paths[0] == "generated_unknown/00000.png" and set(unknown.labels) == {0}


def test_audit_regime_without_generated_validates_on_real(tmp_path):
    layout = discover(make_data(tmp_path, generated=None, per_subset=5))
    assert layout.regime == "audit" and "generated" not in layout.splits
    held = layout.heldout("real", seed=0)
    assert held.sum() == 3  # one of five per subset
    assert not layout.heldout("unknown", seed=0).any()


def test_challenge_regime_holds_out_a_fifth_of_generated_only(tmp_path):
    layout = discover(make_data(tmp_path, per_subset=10))
    assert not layout.heldout("real", seed=0).any()
    held = layout.heldout("generated", seed=0)
    labels = np.asarray(layout.splits["generated"].labels)
    assert [held[labels == k].sum() for k in (1, 2, 3)] == [2, 2, 2]


def test_holdout_is_seeded():
    labels = np.repeat([1, 2, 3], 20)
    assert (stratified_holdout(labels, 1) == stratified_holdout(labels, 1)).all()
    assert (stratified_holdout(labels, 1) != stratified_holdout(labels, 2)).any()


def test_hidden_files_other_extensions_and_nested_folders(data):
    (data / "real/t1/.DS_Store").write_bytes(b"junk")
    (data / "real/t1/._x.png").write_bytes(b"junk")
    (data / "real/t1/notes.txt").write_text("not an image")
    nested = data / "real/t1/more"
    nested.mkdir()
    (data / "real/t1/t1_000.png").rename(nested / "deep.PNG")
    paths = discover(data).splits["real"].paths
    assert "real/t1/more/deep.PNG" in paths
    assert not any(".DS_Store" in p or "._x" in p or p.endswith(".txt") for p in paths)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "real/t2").rename(d / "real/extra"), "no number"),
    (lambda d: (d / "real/t2").rename(d / "real/subset_1"), "both name subset 1"),
    (lambda d: (d / "generated/gen_t3").rename(d / "generated/gen_t9"), "subsets [9]"),
    (lambda d: [p.unlink() for p in (d / "real/t2").iterdir()], "no images for subset(s) [2]"),
])
def test_layout_problems_are_one_clear_sentence(data, damage, message):
    damage(data)
    with pytest.raises(LayoutError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        discover(data)


def test_missing_data_and_missing_real(tmp_path):
    with pytest.raises(LayoutError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(LayoutError, match="no real/ folder"):
        discover(tmp_path)


def test_subset_zero_is_refused_label_zero_means_undetermined(data):
    (data / "real/t1").rename(data / "real/t0")
    with pytest.raises(LayoutError, match="real/t0 is numbered 0"):
        discover(data)
