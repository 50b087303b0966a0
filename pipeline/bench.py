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
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from ganprov.core.errors import GanprovError
from ganprov.core.settings import TrainSettings

from .demo_data import REAL, draw

BATCH_SIZE = TrainSettings(data="").batch_size  # 64: `ganprov embed`'s default
WORKERS = TrainSettings(data="").workers  # `ganprov embed`'s default number of decoding workers
SUBSETS = (1, 2, 3, 4, 5)
DISTINCT = 40  # distinct synthetic slices; the n files are copies of their encoded bytes
DEFAULT_N = {64: 2048, 224: 512}  # about 5-15 s per image stage on a quiet 2-core CPU
MEMORY_N = (2000, 20000)
MEMORY_IMAGE_SIZE = 16  # the memory stage embeds 22,000 images: tiny ones, so it measures growth with N quickly
MEMORY_SOURCE_SIZE = 64
TARGETS = {  # ratio or time: (">=" or "<=", bound); the targets for a 2-core CPU at 64 and 224 px
    "embed / backbone-only": (">=", 0.95),
    "embed / paper loop": (">=", 1.3),
    "embed, torchrun / backbone-only": (">=", 0.95),
    "embed, torchrun / paper loop": (">=", 1.3),
    "heads fit+predict (s)": ("<=", 5.0),
    "memory 2nd / 1st": ("<=", 1.2),
}


def default_n(image_size: int) -> int:
    """Images per image stage: scaled with the cost of a forward pass (∝ pixels), at least four batches."""
    if image_size in DEFAULT_N:
        return DEFAULT_N[image_size]
    return int(np.clip(2048 * (64 / image_size) ** 2, 4 * BATCH_SIZE, 4096))


# ---------------------------------------------------------------------------------------------- set-up

def synthetic_images(root: Path, n: int, source_size: int, distinct: int = DISTINCT, seed: int = 0) -> list[str]:
    """n PNGs in the audit layout root/real/t1..t5 (paths relative to root, sorted), copies of `distinct`
    synthetic slices: decoding costs the same whatever the pixels, and writing copies takes no time."""
    per_subset = -(-distinct // len(SUBSETS))
    encoded = []
    for k in SUBSETS:
        for pixels in draw(k, len(SUBSETS), per_subset, source_size, seed, REAL, None):
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            encoded.append(buffer.getvalue())
    paths = []
    for i in range(n):
        path = f"real/t{SUBSETS[i % len(SUBSETS)]}/{i:06d}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(encoded[i % len(encoded)])
        paths.append(path)
    return sorted(paths)


def synthetic_run(run_dir: Path, image_size: int, seed: int = 0) -> None:
    """A run folder with a random-init checkpoint, as `ganprov train` would leave it."""
    from ganprov.features.backbone import build_model
    from ganprov.features.checkpoint import save
    from ganprov.core.run_folder import RunFolder

    model, origin = build_model(len(SUBSETS), "none", seed)
    settings = TrainSettings(data="", weights="none", image_size=image_size, seed=seed)
    meta = {"subsets": list(SUBSETS), "image_size": image_size, "weights_origin": origin, "regime": "audit",
            "settings": asdict(settings), "epoch": 0, "val_acc": -1.0, "best_acc": -1.0}
    run_dir.mkdir(parents=True, exist_ok=True)
    save(RunFolder(run_dir).checkpoint, model, meta)


def synchronise(device) -> None:
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)


def rate(images: int, seconds: float) -> dict:
    return {"images": images, "seconds": seconds, "images_per_s": images / max(seconds, 1e-9)}


def cpu_seconds() -> tuple[float, float | None]:
    """(CPU seconds used by this process and its reaped children, CPU seconds all CPUs were busy since boot
    or None where /proc/stat is missing); the difference over a run is what other processes used."""
    own = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime"))
    try:
        ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return own, None
    user, nice, system, idle, iowait, irq, softirq, steal = ticks  # steal: taken by other virtual machines
    return own, (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def others_share(start: tuple, started: float) -> float | None:
    """The fraction of all CPUs that other processes (or other virtual machines) used since `start`."""
    own, busy = cpu_seconds()
    if busy is None or start[1] is None:
        return None
    others = (busy - start[1]) - (own - start[0])
    return max(others, 0.0) / ((time.perf_counter() - started) * (os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------------- stages

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


def baseline_stages(spec: dict, environment: dict) -> dict:
    """Stages 1 and 3 in a fresh interpreter with `environment` (`python -m ganprov.pipeline.bench baseline`)."""
    done = subprocess.run([sys.executable, "-m", "ganprov.pipeline.bench", "baseline"], input=json.dumps(spec),
                          capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"the baseline stages failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def serve_baseline_job() -> None:
    import torch

    from ganprov.features.checkpoint import load_model
    from ganprov.features.images import load_image
    from ganprov.features.train import pick_device

    spec = json.loads(sys.stdin.read())
    model, _ = load_model(Path(spec["run"]) / "checkpoint.pt")
    device, data, paths, size = pick_device(spec["device"]), Path(spec["data"]), spec["paths"], spec["image_size"]
    distinct = torch.stack([load_image(data / path, size) for path in paths[:DISTINCT]])
    full = distinct[(np.arange(BATCH_SIZE) % len(distinct)).tolist()]  # one batch, reused: memory stays flat
    batches = [full] * (len(paths) // BATCH_SIZE) + ([full[:len(paths) % BATCH_SIZE]] if len(paths) % BATCH_SIZE else [])
    result = {"backbone_only": backbone_only(model, batches, device)}
    del batches
    result["paper_loop"] = paper_loop(model, data, paths, size, device, BATCH_SIZE)
    result["torch_threads"] = torch.get_num_threads()
    print(json.dumps(result))


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


def synthetic_rows(n: int, seed: int, dim: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n rows as embed writes them: dim-d embeddings (non-negative, like pooled ReLU features) and noise
    residuals (float16, a fixed pattern per subset's generator under unit noise), each in one overlapping
    cluster per subset, and the subset labels. The cluster centres are the same for every seed, the rows are not."""
    from ganprov.features.residual import RESIDUAL_DIM

    centres = np.random.default_rng(2025)
    embedding_centres = centres.normal(0, 1, (len(SUBSETS), dim))
    patterns = centres.normal(0, 1, (len(SUBSETS), RESIDUAL_DIM))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(SUBSETS), n)
    embeddings = np.maximum(embedding_centres[index] * 0.5 + rng.normal(0, 1, (n, dim)), 0).astype(np.float32)
    residuals = (patterns[index] + rng.normal(0, 1, (n, RESIDUAL_DIM))).astype(np.float16)
    return embeddings, residuals, np.asarray(SUBSETS)[index]


def heads_speed(n: int, predict_n: int | None = None, seed: int = 0) -> dict:
    """Each registered head, with its default parameters: fit on n labelled rows, predict on predict_n
    others (n by default). Heads that use residuals get them beside the embeddings, as `ganprov fit` does."""
    from ganprov.models import HEADS, make_head
    from ganprov.models.embeddings import inputs_for

    predict_n = n if predict_n is None else predict_n
    X, residuals, y = synthetic_rows(n, seed)
    X_new, residuals_new, _ = synthetic_rows(predict_n, seed + 1)
    result = {}
    for name in HEADS:
        head = make_head(name)
        fit_on, predict_on = inputs_for(head, X, residuals), inputs_for(head, X_new, residuals_new)
        started = time.perf_counter()
        head.fit(fit_on, y)
        fitted = time.perf_counter()
        head.predict(predict_on)
        done = time.perf_counter()
        result[name] = {"fit_seconds": fitted - started, "predict_seconds": done - fitted,
                        "seconds": done - started, "rows": n, "predict_rows": predict_n,
                        "columns": fit_on.shape[1]}
        del fit_on, predict_on
    return result


def rss_mib(field: str = "VmHWM") -> float:
    """This process's resident memory from /proc/self/status (Linux): VmHWM is the peak, VmRSS the current;
    elsewhere the peak from ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return maxrss_mib(resource.RUSAGE_SELF)


def maxrss_mib(who) -> float:
    """ru_maxrss in MiB (kilobytes on Linux, bytes on macOS); for RUSAGE_CHILDREN, the largest reaped child."""
    value = resource.getrusage(who).ru_maxrss
    return value / 2**20 if sys.platform == "darwin" else value / 1024


def memory_child(spec: dict) -> dict:
    """In a fresh process: embed spec['n'] images (the same files listed over and over) as `ganprov embed`
    does, and report peak resident memory: this process's, and its largest decoding worker's."""
    from ganprov.features.checkpoint import load_model
    from ganprov.features.embed import embed_paths, provenance
    from ganprov.features.image_list import ImageList
    from ganprov.core.run_folder import RunFolder
    from ganprov.features.train import pick_device

    run = RunFolder(spec["run"])
    model, meta = load_model(run.checkpoint)
    files, n = spec["files"], spec["n"]
    paths = tuple(files[i % len(files)] for i in range(n))
    root = Path(spec["root"])
    images = ImageList.stamped("real", root, paths, (1,) * n, np.zeros(n, dtype=bool))
    out = run.path / f"memory-{n}.h5"
    before = rss_mib("VmRSS")
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        summary = embed_paths(model, spec["image_size"], root, [images], out, provenance(run.checkpoint, meta),
                              batch_size=spec["batch_size"], workers=spec["workers"],
                              device=pick_device(spec["device"]), strict=True)
    seconds = time.perf_counter() - started
    out.unlink()
    return {"n": n, "peak_rss_mib": rss_mib("VmHWM"), "rss_before_mib": before,
            "workers_peak_rss_mib": maxrss_mib(resource.RUSAGE_CHILDREN), "embedded": summary["embedded"],
            "seconds": seconds}


def fork_memory_child(spec: dict, n: int) -> dict:
    """memory_child(n) in a forked child of this process, whose peak memory starts from what it inherits."""
    receive, send = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report one line of JSON, leave without running any exit handlers
        code = 0
        try:
            os.close(receive)
            try:
                report = memory_child(spec | {"n": n})
            except BaseException as error:  # report it rather than die silently
                report, code = {"error": f"{type(error).__name__}: {error}"}, 1
            with os.fdopen(send, "w") as pipe:
                pipe.write(json.dumps(report))
        finally:
            os._exit(code)
    os.close(send)
    with os.fdopen(receive) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"error": "the measuring process died"}


class MemoryProcess:
    """The fresh interpreter of the memory stage. It is started first thing, so that its imports (seconds:
    torch and torchvision) overlap the bench's own imports and set-up; it then waits, idle, for its job on
    stdin, so it takes no CPU from the timed stages. Given the job, it forks one child per number of images:
    each starts from a process holding the imports and nothing else, as `ganprov embed` does."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "ganprov.pipeline.bench"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self) -> None:
        """Block until the imports are done, so they cannot compete with a timed stage."""
        if self.process.stdout.readline().strip() != "ready":
            self.fail("could not start")

    def measure(self, spec: dict) -> list[dict]:
        stdout, stderr = self.process.communicate(json.dumps(spec))
        if self.process.returncode != 0 or not stdout.strip():
            self.fail("failed", stderr)
        return json.loads(stdout.strip().splitlines()[-1])

    def fail(self, what: str, stderr: str | None = None):
        if stderr is None:  # it stopped before communicate(): what it said is still in the pipe
            if self.process.poll() is None:
                self.process.kill()
            stderr = self.process.stderr.read()
        self.close()
        raise RuntimeError(f"the memory measurement {what}:\n{stderr[-3000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def serve_memory_job() -> None:
    """`python -m ganprov.pipeline.bench`: import, say ready, read the job from stdin, print the results as JSON."""
    # Imported, not run: GNU OpenMP does not survive a fork once it has started its threads, so no torch
    # computation may happen in this process before the children are forked.
    import ganprov.features.checkpoint  # noqa: F401
    import ganprov.features.embed  # noqa: F401

    print("ready", flush=True)
    spec = json.loads(sys.stdin.read())
    print(json.dumps([fork_memory_child(spec, n) for n in spec["sizes"]]))


def embed_memory(process: MemoryProcess, root: Path, run_dir: Path, files: list[str], sizes, image_size: int,
                 device: str, batch_size: int, workers: int) -> dict:
    """Peak memory of embed at each of `sizes`, measured by the fresh interpreter `process`."""
    spec = {"root": str(root), "run": str(run_dir), "files": files, "sizes": list(sizes), "image_size": image_size,
            "device": device, "batch_size": batch_size, "workers": workers}
    results = process.measure(spec)
    for n, result in zip(sizes, results):
        if "error" in result:
            raise RuntimeError(f"the memory measurement of embed on {n} images failed: {result['error']}")
    return {str(n): result for n, result in zip(sizes, results)}


# ---------------------------------------------------------------------------------------------- report

def environment(device, workers: int) -> dict:
    import torch
    import torchvision

    return {"device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(), "workers": workers,
            "batch_size": BATCH_SIZE, "load_average": list(os.getloadavg()), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "machine": platform.machine(),
            "thread_env": {key: value for key, value in os.environ.items()  # OMP_NUM_THREADS, OMP_WAIT_POLICY, ...
                           if key.startswith(("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_"))}}


def ratios_and_targets(result: dict) -> tuple[dict, dict]:
    stages = result["stages"]
    embed_rate = stages["embed"]["images_per_s"]
    backbone_rate, paper_rate = stages["backbone_only"]["images_per_s"], stages["paper_loop"]["images_per_s"]
    memory = result["memory"]
    first, second = (memory[str(n)] for n in result["memory_n"])
    heads_total = sum(head["seconds"] for head in result["heads"].values())
    ratios = {"embed / backbone-only": embed_rate / backbone_rate,
              "embed / paper loop": embed_rate / paper_rate}
    if "embed_torchrun" in stages:
        ratios["embed, torchrun / backbone-only"] = stages["embed_torchrun"]["images_per_s"] / backbone_rate
        ratios["embed, torchrun / paper loop"] = stages["embed_torchrun"]["images_per_s"] / paper_rate
    ratios |= {"paper loop / backbone-only": paper_rate / backbone_rate,
              "heads fit+predict (s)": heads_total,
              "memory 2nd / 1st": second["peak_rss_mib"] / first["peak_rss_mib"],
              "memory 2nd / 1st (workers)": second["workers_peak_rss_mib"] / max(first["workers_peak_rss_mib"], 1e-9)}
    targets = {}
    for name, (op, bound) in TARGETS.items():
        if name not in ratios:  # one process only: no torchrun stage
            continue
        value = ratios[name]
        met = value >= bound if op == ">=" else value <= bound
        if name == "memory 2nd / 1st" and result["workers"] > 0:  # the workers must not grow either
            met = met and ratios["memory 2nd / 1st (workers)"] <= bound
        targets[name] = {"value": value, "target": f"{op} {bound}", "met": bool(met)}
    return ratios, targets


def table(result: dict) -> str:
    env, stages = result["environment"], result["stages"]
    lines = [f"ganprov bench: {result['image_size']} px from {result['source_size']} px PNGs, {result['n']} images "
             f"per image stage, device {env['device']}",
             f"  {env['cpu_count']} CPUs, torch threads {env['torch_threads']} "
             f"(interop {env['torch_interop_threads']}), "
             f"embed workers {env['workers']}, batch {env['batch_size']}, torch {env['torch']}, "
             f"load average {' '.join(f'{x:.1f}' for x in env['load_average'])} at start, "
             f"{' '.join(f'{x:.1f}' for x in result['load_average_end'])} at end"
             + "".join(f", {key}={value}" for key, value in env["thread_env"].items()),
             f"  stages 1 and 3 in a fresh process with the environment ganprov started in "
             f"(torch threads {result['baseline_torch_threads']})",
             "", f"{'stage':<34}{'images':>8}{'seconds':>10}{'img/s':>10}"]
    names = {"backbone_only": "1 backbone only (ceiling)", "embed": "2 embed end to end",
             "embed_torchrun": f"  embed, torchrun × {stages.get('embed_torchrun', {}).get('processes')}",
             "paper_loop": "3 paper loop (baseline)"}
    for key, label in names.items():
        if key not in stages:
            continue
        stage = stages[key]
        lines.append(f"{label:<34}{stage['images']:>8}{stage['seconds']:>10.2f}{stage['images_per_s']:>10.1f}")
        if key == "embed":
            lines.append(f"  {'+ once per run: load, hash, list':<32}{'':>8}{stage['setup_seconds']:>10.2f}")
    heads = f"4 heads: fit {result['heads_n']:,}, predict {result['heads_predict_n']:,}"
    lines += ["", f"{heads:<34}{'columns':>8}{'fit s':>10}{'predict s':>10}{'total s':>10}"]
    for name, head in result["heads"].items():
        lines.append(f"  {name:<32}{head['columns']:>8}{head['fit_seconds']:>10.2f}{head['predict_seconds']:>10.2f}"
                     f"{head['seconds']:>10.2f}")
    lines.append(f"  {'all heads':<32}{'':>8}{'':>10}{'':>10}{result['ratios']['heads fit+predict (s)']:>10.2f}")
    lines += ["", f"{'5 embed memory (MiB), fresh process':<34}{'images':>8}{'start':>10}{'peak':>10}"
                  f"{'growth':>10}{'worker':>10}{'seconds':>10}"]
    for n in result["memory_n"]:
        m = result["memory"][str(n)]
        lines.append(f"  {str(result['memory_image_size']) + ' px, start = after imports+model':<32}{n:>8}"
                     f"{m['rss_before_mib']:>10.0f}{m['peak_rss_mib']:>10.0f}"
                     f"{m['peak_rss_mib'] - m['rss_before_mib']:>10.0f}"
                     f"{m['workers_peak_rss_mib']:>10.0f}{m['seconds']:>10.1f}")
    lines += ["", "ratios and targets"]
    for name, value in result["ratios"].items():
        target = result["targets"].get(name)
        verdict = f"target {target['target']}: {'met' if target['met'] else 'NOT MET'}" if target else ""
        lines.append(f"  {name:<32}{value:>8.2f}   {verdict}")
    missed = [name for name, target in result["targets"].items() if not target["met"]]
    lines.append("")
    lines.append("all targets met" if not missed else f"targets NOT met: {', '.join(missed)}")
    others = result.get("others_cpu_share")
    if others is not None:
        lines.append(f"other processes used {others:.0%} of the {env['cpu_count']} CPUs during this bench"
                     + (": the machine was shared, so these rates are low and noisy; rerun on a quiet machine"
                        if others > 0.1 else ""))
    return "\n".join(lines)


def bench(image_size: int = 64, n: int | None = None, device: str = "auto", heads_n: int = 25000,
          out: str | os.PathLike | None = None, workers: int = WORKERS, source_size: int = 256,
          heads_predict_n: int | None = None,
          memory_n: tuple[int, int] = MEMORY_N, memory_image_size: int = MEMORY_IMAGE_SIZE,
          memory_source_size: int = MEMORY_SOURCE_SIZE, seed: int = 0, quiet: bool = False,
          processes: int | None = None, baseline_environment: dict | None = None) -> dict:
    """Measure every stage; print a table; return the numbers (and write them as JSON to `out` when given).
    `processes` for the torchrun stage: by default one per GPU, else one per CPU core; 1 skips it."""
    n = default_n(image_size) if n is None else n
    if n < 1 or heads_n < len(SUBSETS) or len(memory_n) != 2:
        raise GanprovError(f"need n >= 1, heads_n >= {len(SUBSETS)} and two memory sizes")
    load = (cpu_seconds(), time.perf_counter())
    memory_process = MemoryProcess()  # before importing torch here: the two imports run side by side
    try:
        return run_stages(memory_process, load, image_size, n, device, heads_n, out, workers, source_size,
                          heads_n if heads_predict_n is None else heads_predict_n, memory_n, memory_image_size,
                          memory_source_size, seed, quiet, processes,
                          dict(os.environ) if baseline_environment is None else baseline_environment)
    finally:
        memory_process.close()


def run_stages(memory_process, load, image_size, n, device, heads_n, out, workers, source_size, heads_predict_n,
               memory_n, memory_image_size, memory_source_size, seed, quiet, processes, baseline_environment) -> dict:
    from ganprov.features.train import pick_device

    torch_device = pick_device(device)
    say = (lambda *args: None) if quiet else (lambda text: print(text, flush=True))
    result = {"image_size": image_size, "source_size": source_size, "n": n, "heads_n": heads_n, "workers": workers,
              "heads_predict_n": heads_predict_n, "memory_n": list(memory_n), "memory_image_size": memory_image_size,
              "environment": environment(torch_device, workers), "stages": {}}
    with tempfile.TemporaryDirectory(prefix="ganprov-bench-") as temporary:
        temporary = Path(temporary)
        data, run_dir = temporary / "data", temporary / "run"
        say(f"writing {n} synthetic {source_size}-px PNGs to {data} ...")
        paths = synthetic_images(data, n, source_size, seed=seed)
        synthetic_run(run_dir, image_size, seed)
        memory_data, memory_run = temporary / "memory-data", temporary / "memory-run"
        files = synthetic_images(memory_data, DISTINCT, memory_source_size, seed=seed)
        synthetic_run(memory_run, memory_image_size, seed)
        memory_process.wait_ready()

        say("1/5 and 3/5: backbone only and the paper loop, in a fresh process ...")
        baseline = baseline_stages({"run": str(run_dir), "data": str(data), "paths": paths, "image_size": image_size,
                                    "device": device}, baseline_environment)
        result["stages"] |= {"backbone_only": baseline["backbone_only"], "paper_loop": baseline["paper_loop"]}
        result["baseline_torch_threads"] = baseline["torch_threads"]
        say("2/5 embed end to end ...")
        result["stages"]["embed"] = embed_end_to_end(data, run_dir, n, device, BATCH_SIZE, workers)
        processes = (cuda_count() or os.cpu_count() or 1) if processes is None else processes
        if processes > 1:
            say(f"2/5 embed end to end, {processes} processes under torchrun ...")
            result["stages"]["embed_torchrun"] = embed_processes(data, run_dir, n, device, processes)
        say(f"4/5 heads: fit on {heads_n:,} rows, predict on {heads_predict_n:,} ...")
        result["heads"] = heads_speed(heads_n, heads_predict_n, seed)
        say(f"5/5 embed peak memory at {memory_n[0]:,} and {memory_n[1]:,} images of {memory_image_size} px, "
            "each in a fresh process ...")
        result["memory"] = embed_memory(memory_process, memory_data, memory_run, files, memory_n, memory_image_size,
                                        device, BATCH_SIZE, workers)
    result["load_average_end"] = list(os.getloadavg())
    result["others_cpu_share"] = others_share(*load)
    result["ratios"], result["targets"] = ratios_and_targets(result)
    say("")
    say(table(result))
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        say(f"\nresults → {out}")
    return result


if __name__ == "__main__":  # the fresh interpreters: the memory stage's (MemoryProcess), the baseline's
    serve_baseline_job() if sys.argv[1:] == ["baseline"] else serve_memory_job()
