"""Fine-tuning, laid out like torchvision's reference classification script: train_one_epoch, evaluate, main.

Every epoch reseeds torch and the sampler from (seed, epoch), so a run resumed from `last.pt` sees the same
batches and augmentations as one that was never interrupted.

Under torchrun (see distributed.py) the model is wrapped in DistributedDataParallel, --batch-size stays the
global batch (each of N processes takes a share of each of the batches one process would draw), batch norm and the loss are taken over the global batch, and rank 0 alone writes. So N
processes train the same network as one, up to floating-point rounding.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganprov.core.atomic import atomic_path, write_csv
from ganprov.core.errors import GanprovError
from ganprov.core.layout import Layout, discover, refuse_run_inside
from ganprov.core.run_folder import RunFolder
from ganprov.core.settings import TrainSettings

from . import checkpoint, distributed
from .augment import identity_preserving
from .backbone import build_model
from .channel import resize_target
from .images import ImageFiles, collate

# Settings that must not change between an interrupted run and its --resume.
FIXED_ON_RESUME = ("data", "weights", "train_on", "batch_size", "lr", "image_size", "content_resolution", "seed",
                   "min_heldout", "augment", "window", "slice_axis")


class TrainingError(GanprovError):
    """A training run that cannot start or resume as asked; the message says what to do."""


def pick_device(name: str) -> torch.device:
    """`name` (checked by settings.device_name), refused at once when this machine lacks it."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise TrainingError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                                "use --device auto or cpu")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise TrainingError(f"--device {name}: MPS is not available here; use --device auto or cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def decoding_workers(workers: int | None, device: str) -> int:
    """`workers`, or by default TrainSettings.workers; none under torchrun on CPUs, where every core already
    runs a ganprov process and workers only compete (embed at 64 px on 2 cores: 277 img/s without, 220 with one)."""
    if workers is not None:
        return workers
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and (device == "cpu" or (device == "auto" and not torch.cuda.is_available())):
        return 0
    return TrainSettings.workers


def training_rows(layout: Layout, settings: TrainSettings) -> tuple[ImageFiles, ImageFiles]:
    """Training images (class indices as labels) and the held-out validation images."""
    def rows(split: str, keep_heldout: bool):
        part = layout.splits[split]
        heldout = layout.heldout(split, settings.seed, settings.min_heldout)
        chosen = np.flatnonzero(heldout == keep_heldout)
        return [part.paths[i] for i in chosen], [layout.subsets.index(part.labels[i]) for i in chosen]

    train_paths, train_labels = rows("real", False)
    if settings.train_on == "real+generated":
        if "generated" not in layout.splits:
            raise TrainingError(f"--train-on real+generated needs {layout.root}/generated, which is absent")
        paths, labels = rows("generated", False)
        train_paths, train_labels = train_paths + paths, train_labels + labels
    val_paths, val_labels = rows(layout.validation_split, True)
    size = settings.input_size
    transform = identity_preserving(size) if settings.augment else None
    target = twin_size(layout)

    def images(paths, labels, transform=None):
        if target is None:
            return ImageFiles(layout.root, paths, labels, size, transform, reading=settings.reading)
        # Each image twice: as it is and resized to the unknown images' size, as embed's twins are.
        return ImageFiles(layout.root, paths * 2, labels * 2, size, transform, reading=settings.reading,
                          through=[None] * len(paths) + [target] * len(paths))
    return images(train_paths, train_labels, transform), images(val_paths, val_labels)


def twin_size(layout: Layout) -> tuple[int, int] | None:
    """The unknown images' usual size where it differs from the real images' (features/channel.py): the backbone
    then also learns the real images resized to it, so its features hold up on the scored images' blur."""
    if "unknown" not in layout.splits:
        return None
    return resize_target(layout.root, layout.splits["unknown"].paths, layout.splits["real"].paths)


def train_loader(dataset: ImageFiles, settings: TrainSettings, device: torch.device, world: distributed.World,
                 epoch: int):
    """This process's share of every global batch of the epoch's permutation (seeded by seed and epoch)."""
    seed = settings.seed * 1000 + epoch
    batches = distributed.GlobalBatches(len(dataset), settings.batch_size, world, seed, drop_last_single=True)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=settings.workers, collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),  # seeds the workers' augmentations
        pin_memory=device.type == "cuda",
    )


def validation_loader(dataset: ImageFiles, settings: TrainSettings, device: torch.device, world: distributed.World):
    """Every world.size-th validation image from this rank on: no image counted twice, none left out."""
    share = torch.utils.data.Subset(dataset, range(world.rank, len(dataset), world.size))
    return torch.utils.data.DataLoader(share, batch_size=settings.batch_size, num_workers=settings.workers,
                                       collate_fn=collate, pin_memory=device.type == "cuda")


def check_failures(failures, dataset, strict: bool, bad: dict) -> None:
    dataset = getattr(dataset, "dataset", dataset)  # a Subset's rows index its dataset
    for row, reason in failures:
        path = dataset.paths[row]
        if strict:
            raise TrainingError(f"cannot read {dataset.root / path}: {reason}")
        bad[path] = reason


def train_one_epoch(model, criterion, optimizer, scaler, data, device, settings, bad, epoch, world):
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels, _, failures in tqdm(data, desc=f"epoch {epoch}/{settings.epochs}", unit="batch", leave=False,
                                            disable=not world.is_main):
        check_failures(failures, data.dataset, settings.strict, bad)
        # Images in the whole global batch: every process must take the step (DDP and batch norm
        # synchronise inside it) unless the batch is empty everywhere.
        (batch,) = world.sum(len(labels))
        if not batch:
            continue
        if not len(labels):  # every image of this share failed: take part with an empty one
            images = torch.zeros(0, 3, settings.input_size, settings.input_size, dtype=torch.uint8)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=scaler.is_enabled()):
            output = model(images)
            # The sum over this share, over the global batch size: DDP's averaging over processes then
            # gives the global batch's mean loss, whatever the shares' sizes.
            loss_sum = criterion(output, labels)
            loss = loss_sum * world.size / batch
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total_loss += loss_sum.item()
        correct += (output.argmax(1) == labels).sum().item()
        seen += len(labels)
    total_loss, correct, seen = world.sum(total_loss, correct, seen)
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.inference_mode()
def evaluate(model, data, device, settings, bad, world) -> float:
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
    correct, seen = world.sum(correct, seen)
    return correct / max(seen, 1)


def parallel(network: nn.Module, device: torch.device, world: distributed.World) -> nn.Module:
    """The network as this process trains it: itself, or under DDP with batch norm over the global batch."""
    if world.size == 1:
        return network
    return nn.parallel.DistributedDataParallel(distributed.synchronise_batch_norm(network, device),
                                               device_ids=[device.index] if device.type == "cuda" else None)


def prepare_resume(run: RunFolder, settings: TrainSettings, regime: str, resume: bool, force: bool) -> dict | None:
    """The state to continue from, None to start afresh; raise when the run folder says otherwise."""
    if force or not run.last.exists():
        return None
    state = checkpoint.load_raw(run.last, checkpoint.RESUME_KEYS)
    done, before = state["meta"]["epoch"], TrainSettings.from_config(state["meta"]["settings"])
    changed = [k for k in FIXED_ON_RESUME if getattr(before, k) != getattr(settings, k)]
    if settings.augment and before.workers != settings.workers:  # each worker draws its own augmentations
        changed.append("workers")
    # The regime decides which images are held out: a backbone trained on every real image (challenge) must not
    # have them held out for validation now that generated/ is gone.
    if state["meta"].get("regime", regime) != regime:
        raise TrainingError(f"{run.path} was trained in the {state['meta']['regime']} regime and {settings.data} is "
                            f"now in the {regime} regime (generated/ {'gone' if regime == 'audit' else 'added'}); "
                            "use another --run, or --force to start over")
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
    run = RunFolder(run_dir)
    settings.data = str(Path(settings.data).resolve())  # a resume from another working folder is the same run
    refuse_run_inside(settings.data, run.path)
    layout = discover(settings.data, settings.slice_axis)
    if settings.train_on == "auto":
        if layout.regime == "audit":
            settings.train_on = "real"
        else:
            return train_both(settings, run, resume, force)
    world = distributed.world()
    if settings.batch_size % world.size:
        raise TrainingError(f"--batch-size {settings.batch_size} is the global batch: it must divide evenly "
                            f"among the {world.size} processes")
    state = prepare_resume(run, settings, layout.regime, resume, force)
    if state is not None and state["meta"]["epoch"] >= settings.epochs:
        if world.is_main:
            print(f"{run.path} is already trained ({state['meta']['epoch']}/{settings.epochs} epochs); --force retrains")
        return state["meta"]
    device = world.device(pick_device(settings.device))
    distributed.start(device)
    return train_epochs(settings, run, layout, state, device, world)


def train_epochs(settings: TrainSettings, run: RunFolder, layout: Layout, state: dict | None, device: torch.device,
                 world: distributed.World) -> dict:
    """The epochs themselves (from `state` when resuming), saving checkpoint.pt, last.pt and the log."""
    train_set, val_set = training_rows(layout, settings)
    if isinstance(train_set.through, list) and world.is_main:
        print("the unknown images are {}×{} pixels, the real ones another size: training on the labelled images "
              "both as they are and resized to that size".format(*train_set.through[-1]))
    network, origin = build_model(len(layout.subsets), settings.weights, settings.seed)
    if state is not None:
        network.load_state_dict(state["model"])
    model = parallel(network.to(device), device, world)
    criterion = nn.CrossEntropyLoss(reduction="sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=settings.amp and device.type == "cuda")
    meta = checkpoint.untrained_meta(layout.subsets, settings, origin, layout.regime)
    log: list[list] = []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        meta.update(epoch=state["meta"]["epoch"], best_acc=state["meta"]["best_acc"], weights_origin=state["meta"]["weights_origin"])
        log = [list(row) for row in state["log"]]
        if world.is_main:
            print(f"resuming {run.path} after epoch {meta['epoch']}")
    if world.is_main:
        run.write_config("train", asdict(settings) | {"weights_origin": meta["weights_origin"], "regime": layout.regime,
                                                      "processes": world.size})
    bad: dict[str, str] = {}
    started = time.perf_counter()
    for epoch in range(meta["epoch"] + 1, settings.epochs + 1):
        tick = time.perf_counter()
        torch.manual_seed(settings.seed * 1000 + epoch)
        train_loss, train_acc = train_one_epoch(model, criterion, optimizer, scaler,
                                                train_loader(train_set, settings, device, world, epoch),
                                                device, settings, bad, epoch, world)
        val_acc = evaluate(network, validation_loader(val_set, settings, device, world), device, settings, bad, world)
        seconds = time.perf_counter() - tick
        log.append([epoch, round(train_loss, 6), round(train_acc, 6), round(val_acc, 6), round(seconds, 2)])
        meta.update(epoch=epoch, val_acc=val_acc)
        if val_acc > meta["best_acc"]:
            meta["best_acc"] = val_acc
            if world.is_main:
                checkpoint.save(run.checkpoint, network, dict(meta))
        if world.is_main:
            checkpoint.save(run.last, network, dict(meta), optimizer=optimizer.state_dict(),
                            scaler=scaler.state_dict(), log=log)
            write_csv(run.train_log, log, ["epoch", "train_loss", "train_acc", "val_acc", "seconds"])
            tqdm.write(f"epoch {epoch}/{settings.epochs}: loss {train_loss:.4f}  train acc {train_acc:.4f}  "
                       f"val acc {val_acc:.4f}  ({seconds:.1f} s)")
        # The others wait for rank 0's files: a process that goes on reading the run folder (ganprov run)
        # must find this epoch's checkpoint.
        world.barrier()
    elapsed = time.perf_counter() - started
    images = len(train_set) * (settings.epochs - (state["meta"]["epoch"] if state else 0))
    if world.is_main:
        print(f"trained {len(train_set)} images × {settings.epochs} epochs on {device} × {world.size} in "
              f"{elapsed:.1f} s ({images / max(elapsed, 1e-9):.0f} img/s); best val acc {meta['best_acc']:.4f} on "
              f"{len(val_set)} held-out images → {run.checkpoint}")
    if bad:
        print(f"skipped {len(bad)} unreadable file(s), e.g. {next(iter(bad))}: {next(iter(bad.values()))}")
    return meta


def train_both(settings: TrainSettings, run: RunFolder, resume: bool, force: bool) -> dict:
    """--train-on auto with labelled generated images: train on real and on real+generated, each in its own
    folder under RUN/candidates/ (resumable like any run), and copy the one with the better held-out generated
    accuracy into RUN (real on a tie: the paper's recipe)."""
    folders = {choice: run.candidate(choice) for choice in ("real", "real+generated")}
    results = {choice: train(replace(settings, train_on=choice), folder.path, resume=resume, force=force)
               for choice, folder in folders.items()}
    best = max(results, key=lambda c: results[c]["best_acc"])  # max keeps the first of equals: real
    world = distributed.world()
    if world.is_main:
        chosen = folders[best]
        for name in ("checkpoint", "last", "train_log"):
            source, target = getattr(chosen, name), getattr(run, name)
            if target.is_file() and filecmp.cmp(source, target, shallow=False):
                continue  # a finished run stays untouched
            with atomic_path(target) as temporary:
                shutil.copyfile(source, temporary)
        run.write_config("train", chosen.read_config()["train"] | {
            "train_on_requested": "auto",
            "candidates_val_acc": json.dumps({c: round(r["best_acc"], 6) for c, r in results.items()})})
        print("--train-on auto: best held-out generated accuracy "
              + ", ".join(f"{c} {r['best_acc']:.4f}" for c, r in results.items()) + f" → {best} kept in {run.path}")
    world.barrier()
    return results[best]

