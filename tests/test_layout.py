import os
from pathlib import Path

import numpy as np
import pytest
from tiny_data import make_data

from ganprov.core.layout import MIN_HELDOUT, LayoutError, discover, list_images, refuse_run_inside, stratified_holdout
from ganprov.pipeline.cli import main


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
    held = layout.heldout("real", seed=0, at_least=MIN_HELDOUT)
    assert held.sum() == 6  # two of five per subset: half of a small subset
    assert not layout.heldout("unknown", seed=0, at_least=MIN_HELDOUT).any()


def test_challenge_regime_holds_out_generated_only(tmp_path):
    layout = discover(make_data(tmp_path, per_subset=10))
    assert not layout.heldout("real", seed=0, at_least=MIN_HELDOUT).any()
    held = layout.heldout("generated", seed=0, at_least=MIN_HELDOUT)
    labels = np.asarray(layout.splits["generated"].labels)
    assert [held[labels == k].sum() for k in (1, 2, 3)] == [5, 5, 5]


def test_holdout_is_a_fifth_but_at_least_twenty_or_half():
    sizes = {200: 40, 112: 22, 100: 20, 55: 20, 40: 20, 30: 15, 3: 1, 1: 0}
    labels = np.repeat(np.arange(1, len(sizes) + 1), list(sizes))
    held = stratified_holdout(labels, seed=0, at_least=MIN_HELDOUT)
    assert [int(held[labels == k].sum()) for k in range(1, len(sizes) + 1)] == list(sizes.values())
    # a larger share extends the smaller one: the images held out from a fifth stay held out
    assert not (stratified_holdout(labels, 0, at_least=0) & ~held).any()


def test_holdout_is_seeded():
    labels = np.repeat([1, 2, 3], 20)
    assert (stratified_holdout(labels, 1, MIN_HELDOUT) == stratified_holdout(labels, 1, MIN_HELDOUT)).all()
    assert (stratified_holdout(labels, 1, MIN_HELDOUT) != stratified_holdout(labels, 2, MIN_HELDOUT)).any()


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


@pytest.mark.parametrize("inside", ["real/t1/run", "generated_unknown/runs/a", "generated"])
def test_a_run_folder_inside_an_image_folder_is_refused_before_any_work(data, capsys, inside):
    """Its plots would be read back as images of that folder: every later embed would hold them."""
    run = data / inside
    before = sorted(data.rglob("*"))
    for command in (["train", "--train-on", "real", "--weights", "none", "--epochs", "1", "--image-size", "32"],
                    ["embed"]):
        assert main([*command, "--data", str(data), "--run", str(run), "--workers", "0"]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and "inside the image folder" in error and str(run.resolve()) in error
    assert sorted(data.rglob("*")) == before


def test_a_run_folder_beside_the_image_folders_is_fine(data):
    for run in (data / "runs/a", data / "realistic", data.parent / "run"):
        refuse_run_inside(data, run)


def test_subset_zero_is_refused_label_zero_means_undetermined(data):
    (data / "real/t1").rename(data / "real/t0")
    with pytest.raises(LayoutError, match="real/t0 is numbered 0"):
        discover(data)


def test_a_subset_linked_to_another_is_refused_naming_both_paths(data):
    (data / "real/t4").symlink_to(data / "real/t1", target_is_directory=True)
    with pytest.raises(LayoutError, match="real/t1/t1_000.png and .*real/t4/t1_000.png are the same file under "
                                          "subsets 1 and 4"):
        discover(data)


def test_a_generated_file_linked_to_a_real_one_of_another_subset_is_refused(data):
    (data / "generated/gen_t2/copy.png").symlink_to(data / "real/t1/t1_000.png")
    with pytest.raises(LayoutError, match="same file under subsets 1 and 2"):
        discover(data)


def test_symlinks_inside_data_are_followed_and_those_leaving_it_skipped_with_a_warning(data, tmp_path, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "stray.png").write_bytes((data / "real/t1/t1_000.png").read_bytes())
    (data / "real/t1/extra").symlink_to(data / "generated/gen_t1", target_is_directory=True)  # inside DATA
    (data / "real/t1/again.png").symlink_to(data / "real/t1/t1_001.png")  # same subset: its own row
    (data / "real/t1/out").symlink_to(outside, target_is_directory=True)
    (data / "real/t2/out.png").symlink_to(outside / "stray.png")
    (data / "generated/gen_t3/deeper").mkdir()
    (data / "generated/gen_t3/deeper/loop").symlink_to(data / "generated/gen_t3", target_is_directory=True)
    layout = discover(data)
    real = layout.splits["real"].paths
    assert "real/t1/extra/gen_t1_000.png" in real and "real/t1/again.png" in real
    assert not any("out" in p for p in real)
    generated = layout.splits["generated"]
    assert len(generated) == 12 and not any("loop" in p for p in generated.paths)
    err = capsys.readouterr().err
    assert f"ganprov: warning: skipped 1 symlink(s) under {data / 'real/t1'}: {data / 'real/t1/out'} " \
           f"(a symlink to {outside}, outside the data folder and t1/)" in err
    assert f"{data / 'real/t2/out.png'} (a symlink to {outside / 'stray.png'}, outside" in err
    assert f"{data / 'generated/gen_t3/deeper/loop'} (a symlink to {data / 'generated/gen_t3'}, a folder already " \
           "listed)" in err


def test_split_and_subset_folders_may_link_anywhere_as_the_challenge_tools_build_them(data, tmp_path, capsys):
    """recompose.py links real/ and generated/ (or each kept subset) into every data set it makes."""
    (data / "generated").rename(tmp_path / "generated")
    (data / "generated").symlink_to(tmp_path / "generated", target_is_directory=True)
    (data / "real/t3").rename(tmp_path / "t3")
    (data / "real/t3").symlink_to(tmp_path / "t3", target_is_directory=True)
    (tmp_path / "t3/inner.png").symlink_to(tmp_path / "t3/t3_000.png")  # inside its own subset folder: kept
    layout = discover(data)
    assert layout.regime == "challenge" and len(layout.splits["generated"]) == 12
    assert "real/t3/inner.png" in layout.splits["real"].paths and layout.splits["real"].labels.count(3) == 5
    assert "warning" not in capsys.readouterr().err


def test_an_empty_generated_unknown_is_as_if_absent(data):
    for path in (data / "generated_unknown").iterdir():
        path.unlink()
    assert "unknown" not in discover(data).splits


def test_a_folder_of_a_scored_batch_that_cannot_be_listed_is_one_line(tmp_path, monkeypatch):
    """As `score --images` lists a batch: a folder inside it that cannot be read names itself."""
    batch = tmp_path / "batch"
    (batch / "inner").mkdir(parents=True)
    original = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": (_ for _ in ()).throw(PermissionError(
        13, "Permission denied", str(path))) if Path(path) == batch / "inner" else original(path))
    with pytest.raises(LayoutError, match=f"^cannot read {batch / 'inner'}: Permission denied$"):
        list_images(batch, batch)


def test_which_of_two_paths_to_one_folder_is_listed_does_not_depend_on_the_file_systems_order(tmp_path, monkeypatch):
    subset = tmp_path / "t1"
    for pair in "abcd":  # x/link -> ../y: each y reachable by two paths
        (subset / f"{pair}x").mkdir(parents=True)
        (subset / f"{pair}y").mkdir()
        (subset / f"{pair}y" / "img.png").write_bytes(b"")
        (subset / f"{pair}x" / "link").symlink_to(subset / f"{pair}y")
    listed = list_images(subset, tmp_path)
    original = os.scandir

    class Reversed:  # the same entries in the opposite order, as another file system may give them
        def __init__(self, path):
            with original(path) as entries:
                self.entries = iter(list(entries)[::-1])

        def __next__(self):
            return next(self.entries)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(os, "scandir", Reversed)
    assert list_images(subset, tmp_path) == listed
    # Each path its own row, as for a linked file: the link, walked first, and the folder it leads to.
    assert listed == [path for pair in "abcd" for path in (f"t1/{pair}x/link/img.png", f"t1/{pair}y/img.png")]
