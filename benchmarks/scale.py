#!/usr/bin/env python3
"""Stage 2 at scale: every head's `ganprov fit` and `ganprov predict` on a synthetic embeddings file of N rows,
each command in its own process, timed, with its peak resident memory.

The file is written in the run-folder layout `embed` leaves (features/store.py), block by block, so writing
it holds one block: half the rows are labelled real images (2 % held out), half the unknown set; rows as the
bench makes them (pipeline/bench/synthetic.py: 512-d embeddings and 4,096-value noise residuals, one
cluster and one generator pattern per subset; real rows' residuals are noise alone, as real images carry no
generator's print). No image, no network: only the heads are measured.

  python benchmarks/scale.py --rows 1000000 --run ../scale-run [--heads logreg cosine ...]
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from ganprov.core import residual_codec
from ganprov.core.schema import EMBEDDING_DIM
from ganprov.features import store
from ganprov.features.image_list import ImageList
from ganprov.features.residual import RESIDUAL_DIM
from ganprov.models import HEADS
from ganprov.pipeline.bench.synthetic import SUBSETS, synthetic_rows

BLOCK = 65536  # rows generated and appended at a time


def write_file(out: Path, rows: int, residuals: bool) -> None:
    half = rows // 2
    lists = []
    for name, n in (("real", half), ("unknown", rows - half)):
        folder = "generated_unknown" if name == "unknown" else "real/t"
        paths = tuple(f"{folder}{'' if name == 'unknown' else 1}/{i:07d}.png" for i in range(n))
        lists.append(ImageList(name, paths, (1,) * n, np.zeros(n, dtype=bool), ("0:0",) * n))
    prov = {"checkpoint_sha256": "synthetic", "image_size": 64, "normalisation": "{}", "weights_origin": "none",
            "residual": "{}", "subsets": np.asarray(SUBSETS, dtype=np.int64), "ganprov_version": "scale",
            "versions": "{}"}
    partial = store.partial_path(out)
    with h5py.File(partial, "w") as handle:
        store.start_file(handle, lists, prov, batch_size=BLOCK)
        for seed, image_list in enumerate(lists):
            for start in range(0, len(image_list.paths), BLOCK):
                paths = image_list.paths[start:start + BLOCK]
                embeddings, residual_rows, labels = synthetic_rows(len(paths), seed * 1000 + start // BLOCK)
                if image_list.name == "real":  # no print: the fingerprint head takes these out as anatomy
                    residual_rows = np.random.default_rng(seed * 1000 + start // BLOCK).normal(
                        0, 1, residual_rows.shape).astype(np.float16)
                heldout = (np.arange(start, start + len(paths)) % 50 == 0) & (image_list.name == "real")
                batch = {"embeddings": embeddings, "paths": list(paths), "labels": labels, "heldout": heldout,
                         **residual_codec.encode(residual_rows if residuals else np.zeros_like(residual_rows))}
                store.add_batch(handle, image_list.name, batch, [])
                print(f"\r{image_list.name}: {start + len(paths):,} rows", end="", flush=True)
            print()
    partial.replace(out)


def timed(command: list[str]) -> dict:
    """Wall seconds and peak resident memory (MiB) of one command, from GNU time."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stdout + done.stderr)[-1500:]}
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr)[1]
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.split(":"))))
    return {"seconds": seconds, "peak_mib": peak}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--heads", nargs="+", default=list(HEADS))
    ap.add_argument("--zero-residuals", action="store_true", help="write zeros as residuals (a faster file)")
    a = ap.parse_args()
    a.run.mkdir(parents=True, exist_ok=True)
    out = a.run / "embeddings.h5"
    if not out.is_file():
        started = time.perf_counter()
        write_file(out, a.rows, not a.zero_residuals)
        print(f"wrote {out} ({out.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - started:.0f} s")
    embeddings_gib = a.rows * EMBEDDING_DIM * 4 / 2**30
    print(f"{a.rows:,} rows: embeddings {embeddings_gib:.2f} GiB as float32, residuals "
          f"{a.rows * (RESIDUAL_DIM + 4) / 2**30:.2f} GiB as int8 with a scale per row")
    ganprov = [sys.executable, "-m", "ganprov.pipeline"]
    for head in a.heads:
        result = {"head": head, "rows": a.rows}
        for step in ("fit", "predict"):
            result[step] = timed([*ganprov, step, "--run", str(a.run), "--head", head])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
