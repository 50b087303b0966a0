import csv
import shutil
from urllib.error import URLError

import h5py
import pytest
import torch
from tiny_data import make_data

from ganprov.core.run_folder import RunFolder
from ganprov.features import backbone
from ganprov.features.checkpoint import load_model, load_raw
from ganprov.features.embed import embed
from ganprov.features.train import TrainingError, TrainSettings, train


def settings(data, **changes) -> TrainSettings:
    return TrainSettings(**{"data": str(data), "weights": "none", "epochs": 1, "batch_size": 8, "image_size": 32,
                            "workers": 0, "train_on": "real"} | changes)


def weights_of(path):
    return load_raw(path)["model"]


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_one_epoch_writes_checkpoint_log_and_config(trained_run):
    _, run_dir = trained_run
    run = RunFolder(run_dir)
    model, meta = load_model(run.checkpoint)
    assert meta["subsets"] == [1, 2, 3] and meta["image_size"] == 32 and meta["weights_origin"] == "none"
    assert model.fc.out_features == 3 and not model.training
    with open(run.train_log) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1"] and set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_acc", "seconds"}
    config = run.read_config()["train"]
    assert config["epochs"] == 1 and config["weights"] == "none" and config["regime"] == "challenge"


def test_seeded_runs_are_reproducible_on_cpu(data, tmp_path):
    train(settings(data), tmp_path / "a")
    train(settings(data), tmp_path / "b")
    assert same_weights(weights_of(tmp_path / "a/last.pt"), weights_of(tmp_path / "b/last.pt"))
    train(settings(data, seed=1), tmp_path / "c")
    assert not same_weights(weights_of(tmp_path / "a/last.pt"), weights_of(tmp_path / "c/last.pt"))


def test_resume_ends_like_an_uninterrupted_run(data, tmp_path):
    train(settings(data, epochs=2), tmp_path / "straight")
    train(settings(data, epochs=1), tmp_path / "resumed")  # as if killed after epoch 1
    with pytest.raises(TrainingError, match="--resume"):
        train(settings(data, epochs=2), tmp_path / "resumed")
    train(settings(data, epochs=2), tmp_path / "resumed", resume=True)
    assert same_weights(weights_of(tmp_path / "straight/last.pt"), weights_of(tmp_path / "resumed/last.pt"))
    assert load_raw(tmp_path / "resumed/last.pt")["meta"]["epoch"] == 2


def test_finished_run_is_not_retrained_and_changed_settings_are_refused(data, tmp_path, capsys):
    train(settings(data), tmp_path / "r")
    train(settings(data), tmp_path / "r")
    assert "already trained" in capsys.readouterr().out
    with pytest.raises(TrainingError, match="lr=0.0001"):
        train(settings(data, lr=1e-3), tmp_path / "r")
    for change in ({"window": "lung"}, {"slice_axis": 1}):  # how DICOM and NIfTI become images: fixed too
        with pytest.raises(TrainingError, match=f"{next(iter(change))}="):
            train(settings(data, **change), tmp_path / "r")
    train(settings(data, workers=1), tmp_path / "r")  # without augmentation the workers draw nothing
    train(settings(data, augment=True), tmp_path / "augmented")
    with pytest.raises(TrainingError, match="workers=0"):  # with it, each worker draws its own
        train(settings(data, augment=True, workers=1), tmp_path / "augmented")


def test_train_on_auto_keeps_the_candidate_better_on_held_out_generated_images(data, tmp_path, capsys):
    meta = train(settings(data, train_on="auto", epochs=2), tmp_path / "auto")
    run = RunFolder(tmp_path / "auto")
    candidates = {choice: load_raw(tmp_path / "auto/candidates" / choice / "checkpoint.pt")["meta"]["best_acc"]
                  for choice in ("real", "real+generated")}
    best = max(candidates, key=candidates.get)  # real on a tie
    assert meta["settings"]["train_on"] == best == run.read_config()["train"]["train_on"]
    assert run.read_config()["train"]["train_on_requested"] == "auto"
    assert same_weights(weights_of(run.checkpoint), weights_of(tmp_path / "auto/candidates" / best / "checkpoint.pt"))
    capsys.readouterr()
    train(settings(data, train_on="auto", epochs=2), tmp_path / "auto")  # finished: nothing trained again
    assert "epoch 1/2" not in capsys.readouterr().out


def test_train_on_auto_without_generated_images_is_real(tmp_path):
    audit = make_data(tmp_path / "data", generated=None)
    meta = train(settings(audit, train_on="auto"), tmp_path / "run")
    assert meta["settings"]["train_on"] == "real" and not (tmp_path / "run/candidates").exists()


def test_half_content_resolution_trains_and_embeds_at_half_the_image_size(tmp_path, capsys):
    audit = make_data(tmp_path / "audit", generated=None)
    meta = train(settings(audit, content_resolution="half"), tmp_path / "half")
    assert meta["image_size"] == 16 and meta["settings"]["image_size"] == 32  # what the network saw, what was asked
    assert RunFolder(tmp_path / "half").read_config()["train"]["content_resolution"] == "half"
    embed(audit, tmp_path / "half", batch_size=8, workers=0)  # embeds at the size it trained at
    with h5py.File(RunFolder(tmp_path / "half").embeddings, "r") as handle:
        assert handle.attrs["image_size"] == 16
    assert train(settings(audit), tmp_path / "full")["image_size"] == 32  # the default: full
    train(settings(audit, image_size=16), tmp_path / "asked-16")  # what README measured half resolution as
    assert same_weights(weights_of(tmp_path / "half/last.pt"), weights_of(tmp_path / "asked-16/last.pt"))
    with pytest.raises(TrainingError, match="content_resolution='half'"):
        train(settings(audit), tmp_path / "half")


def test_half_resolution_never_goes_below_the_smallest_input():
    assert TrainSettings(data="", image_size=64, content_resolution="half").input_size == 32
    assert TrainSettings(data="", image_size=17, content_resolution="half").input_size == 16
    assert TrainSettings(data="", image_size=16, content_resolution="half").input_size == 16
    assert TrainSettings(data="", image_size=64).input_size == 64


def test_the_summary_says_how_many_images_were_held_out(tmp_path, capsys):
    audit = make_data(tmp_path / "data", per_subset=10, generated=None)
    train(settings(audit), tmp_path / "half")  # 10 per subset, fewer than 2 × 20: half of each held out
    out = capsys.readouterr().out
    assert "trained 15 images" in out and "on 15 held-out images" in out
    train(settings(audit, min_heldout=0), tmp_path / "fifth")  # a plain fifth: 2 per subset
    out = capsys.readouterr().out
    assert "trained 24 images" in out and "on 6 held-out images" in out


def test_train_on_real_and_generated_needs_generated(tmp_path):
    from tiny_data import make_data
    data = make_data(tmp_path / "d", generated=None)
    with pytest.raises(TrainingError, match="generated"):
        train(settings(data, train_on="real+generated"), tmp_path / "r")
    meta = train(settings(data), tmp_path / "r")  # the audit regime trains on real alone
    assert meta["regime"] == "audit"


def test_imagenet_offline_fails_at_once_naming_the_alternatives(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(backbone.WeightsUnavailable) as error:
        backbone.build_model(3, "imagenet", seed=0)
    assert "--weights none" in str(error.value) and "--weights PATH" in str(error.value)


def test_weights_from_a_local_state_dict_file(tmp_path):
    from torchvision.models import resnet18
    source = resnet18(weights=None)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model, origin = backbone.build_model(4, str(tmp_path / "resnet18.pth"), seed=0)
    assert origin.startswith("file:resnet18.pth:sha256=")
    assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)
    assert model.fc.out_features == 4


def test_a_checkpoint_needing_more_than_tensors_is_refused(tmp_path):
    import collections
    torch.save({"model": collections.Counter(a=1), "meta": object()}, tmp_path / "evil.pt")
    from ganprov.features.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="refusing"):
        load_raw(tmp_path / "evil.pt")


def test_a_run_trained_with_generated_images_is_not_taken_as_trained_once_they_are_gone(tmp_path):
    """The challenge regime trains on every real image; the audit regime would hold some out for validation."""
    data = make_data(tmp_path / "data", per_subset=4)
    train(settings(data), tmp_path / "r")
    shutil.rmtree(data / "generated")
    with pytest.raises(TrainingError, match="trained in the challenge regime .* now in the audit regime"):
        train(settings(data), tmp_path / "r")
    train(settings(data), tmp_path / "r", force=True)
    assert RunFolder(tmp_path / "r").read_config()["train"]["regime"] == "audit"
