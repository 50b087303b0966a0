"""`ganprov bench`: how fast each stage runs on this machine, side by side, on the same synthetic images.

1. backbone only: ResNet-18 features of uint8 batches already in memory, the ceiling for embedding;
2. embed end to end: `ganprov embed` as users run it (decode, resize, forward, HDF5 write), in one process
   and, where there are several CPU cores or GPUs, as one process per core or GPU under torchrun;
3. the paper loop, the baseline: PIL per image, torchvision Resize + ToTensor + Normalize on float,
   DataLoader(num_workers=0), default memory format, features collected in memory;
4. heads: every registered head's fit + predict on N×512 embeddings (25,000 rows by default, like the challenge);
5. memory: peak resident memory of embed on two numbers of images, each in a fresh process. A small set of
   files is listed many times over, which measures how memory grows with N without writing N files.

Stages 1 and 3 run in a fresh interpreter started with the environment ganprov was started with, so they
get PyTorch's default OpenMP settings rather than the ones ganprov sets for itself (see pipeline/cli.py).

The images are synthetic CT-like slices (pipeline.demo_data; not medical images) and the weights random:
speed does not depend on either. Every rate is of this machine at this moment; the load average is printed
beside them because a busy machine gives lower and noisier numbers.

One module per part: spec (what to measure), synthetic (the inputs), baseline (stages 1 and 3), stages (2
and 4), memory (5), machine (where it ran), report (ratios, targets, the table); __main__ serves the fresh
interpreters.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from ganprov.core.atomic import output_file, write_text

from .baseline import baseline_stages
from .machine import cpu_seconds, environment, others_share
from .memory import MemoryProcess, embed_memory
from .report import ratios_and_targets, table
from .spec import BATCH_SIZE, BenchSpec
from .stages import cuda_count, embed_end_to_end, embed_processes, heads_speed
from .synthetic import DISTINCT, synthetic_images, synthetic_run


def bench(out: str | os.PathLike | None = None, quiet: bool = False, **options) -> dict:
    """Measure every stage of BenchSpec(**options); print a table; return the numbers (and write them as
    JSON to `out` when given)."""
    spec = BenchSpec(**options)
    if out is not None:  # checked now, not after minutes of measuring
        out = output_file(out, ".json", "--json")
    load = (cpu_seconds(), time.perf_counter())
    memory_process = MemoryProcess()  # before importing torch here: the two imports run side by side
    say = (lambda *args: None) if quiet else (lambda text: print(text, flush=True))
    try:
        result = run_stages(spec, memory_process, say)
    finally:
        memory_process.close()
    result["load_average_end"] = list(os.getloadavg())
    result["others_cpu_share"] = others_share(*load)
    result["ratios"], result["targets"] = ratios_and_targets(result)
    say("")
    say(table(result))
    if out is not None:
        write_text(out, json.dumps(result, indent=2) + "\n")
        say(f"\nresults → {out}")
    return result


def run_stages(spec: BenchSpec, memory_process: MemoryProcess, say) -> dict:
    """The five stages on fresh synthetic inputs, in a temporary folder; the results so far."""
    from ganprov.features.train import pick_device

    result = {"image_size": spec.image_size, "source_size": spec.source_size, "n": spec.n, "heads_n": spec.heads_n,
              "workers": spec.workers, "heads_predict_n": spec.heads_predict_n, "memory_n": list(spec.memory_n),
              "memory_image_size": spec.memory_image_size,
              "environment": environment(pick_device(spec.device), spec.workers), "stages": {}}
    with tempfile.TemporaryDirectory(prefix="ganprov-bench-") as temporary:
        temporary = Path(temporary)
        data, run_dir = temporary / "data", temporary / "run"
        say(f"writing {spec.n} synthetic {spec.source_size}-px PNGs to {data} ...")
        paths = synthetic_images(data, spec.n, spec.source_size, seed=spec.seed)
        synthetic_run(run_dir, spec.image_size, spec.seed)
        memory_data, memory_run = temporary / "memory-data", temporary / "memory-run"
        files = synthetic_images(memory_data, DISTINCT, spec.memory_source_size, seed=spec.seed)
        synthetic_run(memory_run, spec.memory_image_size, spec.seed)
        memory_process.wait_ready()

        say("1/5 and 3/5: backbone only and the paper loop, in a fresh process ...")
        baseline = baseline_stages({"run": str(run_dir), "data": str(data), "paths": paths,
                                    "image_size": spec.image_size, "device": spec.device}, spec.baseline_environment)
        result["stages"] |= {"backbone_only": baseline["backbone_only"], "paper_loop": baseline["paper_loop"]}
        result["baseline_torch_threads"] = baseline["torch_threads"]
        result["cpu_per_image"] = baseline["cpu_per_image"]
        say("2/5 embed end to end ...")
        result["stages"]["embed"] = embed_end_to_end(data, run_dir, spec.n, spec.device, BATCH_SIZE, spec.workers)
        processes = (cuda_count() or os.cpu_count() or 1) if spec.processes is None else spec.processes
        if processes > 1:
            say(f"2/5 embed end to end, {processes} processes under torchrun ...")
            result["stages"]["embed_torchrun"] = embed_processes(data, run_dir, spec.n, spec.device, processes)
        say(f"4/5 heads: fit on {spec.heads_n:,} rows, predict on {spec.heads_predict_n:,} ...")
        result["heads"] = heads_speed(spec.heads_n, spec.heads_predict_n, spec.seed)
        say(f"5/5 embed peak memory at {spec.memory_n[0]:,} and {spec.memory_n[1]:,} images of "
            f"{spec.memory_image_size} px, each in a fresh process ...")
        result["memory"] = embed_memory(memory_process, memory_data, memory_run, files, spec.memory_n,
                                        spec.memory_image_size, spec.device, BATCH_SIZE, spec.workers)
    return result
