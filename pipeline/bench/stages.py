"""Stage 2, embed end to end (in one process and under torchrun), and stage 4, the heads: timed here."""
from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .synthetic import synthetic_rows


def rate(images: int, seconds: float) -> dict:
    return {"images": images, "seconds": seconds, "images_per_s": images / max(seconds, 1e-9)}


def embed_end_to_end(data: Path, run_dir: Path, n: int, device: str, batch_size: int, workers: int) -> dict:
    """`ganprov embed` as users run it: list files, load and hash the checkpoint, start the decoding workers,
    decode, resize, fingerprint, forward, append to HDF5, rename into place. Its progress bar and summary
    line are swallowed. The rate is embed's own (the one it prints): its loop, from starting the DataLoader
    (forking the workers included) to the file renamed into place; loading and hashing the checkpoint and
    listing the files come once per run, whatever the number of images, so they are reported beside it."""
    from ganprov.features.embed import embed

    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        summary = embed(data, run_dir, batch_size=batch_size, workers=workers, device=device, force=True)
    seconds = time.perf_counter() - started
    if summary["embedded"] != n:
        raise RuntimeError(f"embed wrote {summary['embedded']} rows, expected {n} (skipped {summary['skipped']})")
    return rate(n, summary["seconds"]) | {"call_seconds": seconds, "setup_seconds": seconds - summary["seconds"],
                                          "workers": workers, "batch_size": batch_size}


def embed_processes(data: Path, run_dir: Path, n: int, device: str, processes: int) -> dict:
    """`torchrun --nproc-per-node P -m pipeline -- embed` with its defaults: one thread per process and, on
    the CPU, no decoding workers (see decoding_workers in pipeline/cli.py). The rate is the one embed
    prints: rank 0's, from the processes' start of work to the combined file."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "ganprov.pipeline", "--", "embed", "--data", str(data), "--run", str(run_dir), "--device", device,
               "--force"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - started
    found = re.search(r"embedded (\d+) images in ([\d.]+) s", done.stdout)
    if done.returncode != 0 or not found or int(found[1]) != n:
        raise RuntimeError(f"embed under torchrun failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return rate(n, float(found[2])) | {"processes": processes, "call_seconds": seconds}


def cuda_count() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def heads_speed(n: int, predict_n: int | None = None, seed: int = 0) -> dict:
    """Each registered head, with its default parameters: fit on n labelled rows, predict on predict_n
    others (n by default). Heads that use residuals get them beside the embeddings, as `ganprov fit` does."""
    from inspect import signature

    import numpy as np

    from ganprov.models import HEADS, make_head
    from ganprov.models.embeddings import inputs_for

    predict_n = n if predict_n is None else predict_n
    X, residuals, y = synthetic_rows(n, seed)
    X_new, residuals_new, _ = synthetic_rows(predict_n, seed + 1)
    result = {}
    for name in HEADS:
        head = make_head(name)
        fit_on, predict_on = inputs_for(head, X, residuals), inputs_for(head, X_new, residuals_new)
        # As `ganprov fit`: a grouping head also gets 2,000 real images' residuals (no generator's pattern).
        real = {"content_residuals": np.random.default_rng(seed + 2).normal(0, 1, (2000, residuals.shape[1]))
                .astype(np.float16)} if "content_residuals" in signature(head.fit).parameters else {}
        started = time.perf_counter()
        head.fit(fit_on, y, **real)
        fitted = time.perf_counter()
        head.predict(predict_on)
        done = time.perf_counter()
        result[name] = {"fit_seconds": fitted - started, "predict_seconds": done - fitted,
                        "seconds": done - started, "rows": n, "predict_rows": predict_n,
                        "columns": fit_on.shape[1]}
        del fit_on, predict_on
    return result
