"""Stages 1 and 3, the ceiling and the baseline, in a fresh interpreter started with the environment ganprov
was started with, so they get PyTorch's default OpenMP settings rather than the ones ganprov sets for itself
(see pipeline/cli.py): `python -m ganprov.pipeline.bench baseline`, the job on stdin, the result on stdout."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .spec import BATCH_SIZE
from .stages import rate
from .synthetic import DISTINCT


def baseline_stages(spec: dict, environment: dict) -> dict:
    """Stages 1 and 3 in a fresh interpreter with `environment` (`python -m ganprov.pipeline.bench baseline`)."""
    done = subprocess.run([sys.executable, "-m", "ganprov.pipeline.bench", "baseline"], input=json.dumps(spec),
                          capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"the baseline stages failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def serve_baseline_job() -> None:
    """`python -m ganprov.pipeline.bench baseline`: read the job from stdin, print the results as JSON."""
    import torch

    from ganprov.core.run_folder import RunFolder
    from ganprov.features.checkpoint import load_model
    from ganprov.features.images import load_image
    from ganprov.features.train import pick_device

    spec = json.loads(sys.stdin.read())
    model, _ = load_model(RunFolder(spec["run"]).checkpoint)
    device, data, paths, size = pick_device(spec["device"]), Path(spec["data"]), spec["paths"], spec["image_size"]
    distinct = torch.stack([load_image(data / path, size) for path in paths[:DISTINCT]])
    full = distinct[(np.arange(BATCH_SIZE) % len(distinct)).tolist()]  # one batch, reused: memory stays flat
    batches = [full] * (len(paths) // BATCH_SIZE) + ([full[:len(paths) % BATCH_SIZE]] if len(paths) % BATCH_SIZE else [])
    result = {"backbone_only": backbone_only(model, batches, device)}
    del batches
    result["paper_loop"] = paper_loop(model, data, paths, size, device, BATCH_SIZE)
    result["torch_threads"] = torch.get_num_threads()
    result["cpu_per_image"] = cpu_per_image(model, data, paths, size, device, full)
    print(json.dumps(result))


def cpu_per_image(model, data: Path, paths: list[str], size: int, device, batch, n: int = 256) -> dict:
    """CPU seconds per image, on one thread, of what embed does per image outside the network (decode,
    resize, noise residual: its dataset's item) and of the forward pass (on the CPU only). No loop on this
    machine can beat cores ÷ their sum."""
    import torch

    from ganprov.features.backbone import for_inference
    from ganprov.features.images import ImageFiles

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = ImageFiles(data, paths[:n], [0] * n, size, residuals=True)
        started = time.process_time()
        for row in range(len(dataset)):
            dataset[row]
        result = {"decode": (time.process_time() - started) / len(dataset), "forward": 0.0}
        if device.type == "cpu":
            network = for_inference(model)
            with torch.inference_mode():
                network.features(batch)  # warm-up
                started = time.process_time()
                for _ in range(2):
                    network.features(batch)
            result["forward"] = (time.process_time() - started) / (2 * len(batch))
    finally:
        torch.set_num_threads(threads)
    return result


def synchronise(device) -> None:
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)


def backbone_only(model, batches: list, device, warmup: int = 2) -> dict:
    """ResNet-18 features of uint8 batches already in memory (embed's model, batch norm folded as embed
    folds it, and dtype; features back on the CPU as float32, as embed needs them): the ceiling for any loop
    that must also read the images."""
    import torch

    from ganprov.features.backbone import for_inference

    model = for_inference(model).to(device)

    def step(batch):  # what embed does per batch, less reading the images and writing the file
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            features = model.features(batch.to(device, non_blocking=True))
        return features.float().cpu()

    with torch.inference_mode():
        for batch in batches[:warmup]:
            step(batch)
        synchronise(device)
        started = time.perf_counter()
        for batch in batches:
            step(batch)
        synchronise(device)
        seconds = time.perf_counter() - started
    return rate(sum(len(batch) for batch in batches), seconds)


class PaperImages:
    """The paper's dataset: open with PIL, convert to RGB, torchvision transforms on float tensors."""

    def __init__(self, root: Path, paths: list[str], image_size: int):
        from torchvision import transforms

        from ganprov.features.backbone import IMAGENET_MEAN, IMAGENET_STD

        self.root, self.paths = root, paths
        self.transform = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor(),
                                             transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, row: int):
        with Image.open(self.root / self.paths[row]) as image:
            return self.transform(image.convert("RGB"))


def paper_loop(model, root: Path, paths: list[str], image_size: int, device, batch_size: int) -> dict:
    """The inference loop as the paper's text describes it: the baseline that embed must beat."""
    import torch

    network = copy.deepcopy(model.backbone).to(device, memory_format=torch.contiguous_format).eval()
    data = torch.utils.data.DataLoader(PaperImages(root, paths, image_size), batch_size=batch_size, num_workers=0)
    with torch.inference_mode():
        network(torch.zeros(batch_size, 3, image_size, image_size, device=device))  # warm-up, as for the others
        synchronise(device)
        started = time.perf_counter()
        features = [network(images.to(device)).cpu().numpy() for images in data]
        synchronise(device)
        seconds = time.perf_counter() - started
    if sum(len(f) for f in features) != len(paths):
        raise RuntimeError(f"the paper loop embedded {sum(len(f) for f in features)} images, expected {len(paths)}")
    return rate(len(paths), seconds)
