"""Fine-tuning, laid out like torchvision's reference classification script: train_one_epoch, evaluate, main.

Every epoch reseeds torch and the sampler from (seed, epoch), so a run resumed from `last.pt` sees the same
batches and augmentations as one that was never interrupted.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import checkpoint
from .atomic import write_csv
from .augment import identity_preserving
from .backbone import build_model
from .errors import GanprovError
from .images import ImageFiles, collate
from .layout import Layout, discover
from .run_folder import RunFolder
from .settings import TRAIN_ON, TrainSettings

# Settings that must not change between an interrupted run and its --resume.
FIXED_ON_RESUME = ("data", "weights", "train_on", "batch_size", "lr", "image_size", "seed", "augment")


class TrainingError(GanprovError):
    """A training run that cannot start or resume as asked; the message says what to do."""


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def training_rows(layout: Layout, settings: TrainSettings) -> tuple[ImageFiles, ImageFiles]:
    """Training images (class indices as labels) and the held-out validation images."""
    def rows(split: str, keep_heldout: bool):
        part = layout.splits[split]
        heldout = layout.heldout(split, settings.seed)
        chosen = np.flatnonzero(heldout == keep_heldout)
        return [part.paths[i] for i in chosen], [layout.subsets.index(part.labels[i]) for i in chosen]

    train_paths, train_labels = rows("real", False)
    if settings.train_on == "real+generated":
        if "generated" not in layout.splits:
            raise TrainingError(f"--train-on real+generated needs {layout.root}/generated, which is absent")
        paths, labels = rows("generated", False)
        train_paths, train_labels = train_paths + paths, train_labels + labels
    val_paths, val_labels = rows(layout.validation_split, True)
    size = settings.image_size
    transform = identity_preserving(size) if settings.augment else None
    return (ImageFiles(layout.root, train_paths, train_labels, size, transform),
            ImageFiles(layout.root, val_paths, val_labels, size))


def loader(dataset: ImageFiles, settings: TrainSettings, device: torch.device, shuffle_seed: int | None):
    shuffle = shuffle_seed is not None
    generator = torch.Generator().manual_seed(shuffle_seed) if shuffle else None
    # BatchNorm cannot train on a last batch of one image at small sizes: drop just that one.
    drop_last = shuffle and len(dataset) % settings.batch_size == 1 and len(dataset) > 1
    return torch.utils.data.DataLoader(
        dataset, batch_size=settings.batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last,
        num_workers=settings.workers, collate_fn=collate, pin_memory=device.type == "cuda",
    )


def check_failures(failures, dataset: ImageFiles, strict: bool, bad: dict) -> None:
    for row, reason in failures:
        path = dataset.paths[row]
        if strict:
            raise TrainingError(f"cannot read {dataset.root / path}: {reason}")
        bad[path] = reason


def train_one_epoch(model, criterion, optimizer, scaler, data, device, settings, bad, epoch):
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels, _, failures in tqdm(data, desc=f"epoch {epoch}/{settings.epochs}", unit="batch", leave=False):
        check_failures(failures, data.dataset, settings.strict, bad)
        if not len(labels):
            continue
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=scaler.is_enabled()):
            output = model(images)
            loss = criterion(output, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total_loss += loss.item() * len(labels)
        correct += (output.argmax(1) == labels).sum().item()
        seen += len(labels)
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.inference_mode()
def evaluate(model, data, device, settings, bad) -> float:
    model.eval()
    correct, seen = 0, 0
    for images, labels, _, failures in data:
        check_failures(failures, data.dataset, settings.strict, bad)
        if not len(labels):
            continue
        with torch.autocast(device.type, enabled=settings.amp and device.type == "cuda"):
            output = model(images.to(device, non_blocking=True))
        correct += (output.argmax(1).cpu() == labels).sum().item()
        seen += len(labels)
    return correct / max(seen, 1)


def prepare_resume(run: RunFolder, settings: TrainSettings, resume: bool, force: bool) -> dict | None:
    """The state to continue from, None to start afresh; raise when the run folder says otherwise."""
    if force or not run.last.exists():
        return None
    state = checkpoint.load_raw(run.last)
    done, before = state["meta"]["epoch"], TrainSettings.from_config(state["meta"]["settings"])
    changed = [k for k in FIXED_ON_RESUME if getattr(before, k) != getattr(settings, k)]
    if changed:
        raise TrainingError(
            f"{run.path} was trained with other settings ({', '.join(f'{k}={getattr(before, k)!r}' for k in changed)});"
            " use another --run, or --force to start over"
        )
    if done >= settings.epochs or resume:
        return state
    raise TrainingError(f"{run.path} holds an unfinished training ({done}/{settings.epochs} epochs): "
                        "pass --resume to continue it or --force to start over")


def train(settings: TrainSettings, run_dir: str | os.PathLike, resume: bool = False, force: bool = False) -> dict:
    """Fine-tune on the data folder; write checkpoint.pt (best), last.pt, train_log.csv and config.toml."""
    if settings.train_on not in TRAIN_ON:
        raise TrainingError(f"--train-on must be one of {', '.join(TRAIN_ON)}, not {settings.train_on!r}")
    run = RunFolder(run_dir)
    settings.data = str(Path(settings.data).resolve())  # a resume from another working folder is the same run
    layout = discover(settings.data)
    state = prepare_resume(run, settings, resume, force)
    if state is not None and state["meta"]["epoch"] >= settings.epochs:
        print(f"{run.path} is already trained ({state['meta']['epoch']}/{settings.epochs} epochs); --force retrains")
        return state["meta"]
    device = pick_device(settings.device)
    train_set, val_set = training_rows(layout, settings)
    model, origin = build_model(len(layout.subsets), settings.weights, settings.seed)
    model.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=settings.amp and device.type == "cuda")
    meta = {"subsets": list(layout.subsets), "image_size": settings.image_size, "weights_origin": origin,
            "regime": layout.regime, "settings": asdict(settings), "epoch": 0, "val_acc": -1.0, "best_acc": -1.0}
    log: list[list] = []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        meta.update(epoch=state["meta"]["epoch"], best_acc=state["meta"]["best_acc"], weights_origin=state["meta"]["weights_origin"])
        log = [list(row) for row in state["log"]]
        print(f"resuming {run.path} after epoch {meta['epoch']}")
    run.write_config("train", asdict(settings) | {"weights_origin": meta["weights_origin"], "regime": layout.regime})
    bad: dict[str, str] = {}
    started = time.perf_counter()
    for epoch in range(meta["epoch"] + 1, settings.epochs + 1):
        tick = time.perf_counter()
        torch.manual_seed(settings.seed * 1000 + epoch)
        train_loss, train_acc = train_one_epoch(model, criterion, optimizer, scaler,
                                                loader(train_set, settings, device, settings.seed * 1000 + epoch),
                                                device, settings, bad, epoch)
        val_acc = evaluate(model, loader(val_set, settings, device, None), device, settings, bad)
        seconds = time.perf_counter() - tick
        log.append([epoch, round(train_loss, 6), round(train_acc, 6), round(val_acc, 6), round(seconds, 2)])
        meta.update(epoch=epoch, val_acc=val_acc)
        if val_acc > meta["best_acc"]:
            meta["best_acc"] = val_acc
            checkpoint.save(run.checkpoint, model, dict(meta))
        checkpoint.save(run.last, model, dict(meta), optimizer=optimizer.state_dict(),
                        scaler=scaler.state_dict(), log=log)
        write_csv(run.train_log, log, ["epoch", "train_loss", "train_acc", "val_acc", "seconds"])
        tqdm.write(f"epoch {epoch}/{settings.epochs}: loss {train_loss:.4f}  train acc {train_acc:.4f}  "
                   f"val acc {val_acc:.4f}  ({seconds:.1f} s)")
    elapsed = time.perf_counter() - started
    images = len(train_set) * (settings.epochs - (state["meta"]["epoch"] if state else 0))
    print(f"trained {len(train_set)} images × {settings.epochs} epochs on {device} in {elapsed:.1f} s "
          f"({images / max(elapsed, 1e-9):.0f} img/s); best val acc {meta['best_acc']:.4f} → {run.checkpoint}")
    if bad:
        print(f"skipped {len(bad)} unreadable file(s), e.g. {next(iter(bad))}: {next(iter(bad.values()))}")
    return meta
