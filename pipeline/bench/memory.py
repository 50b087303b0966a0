"""Stage 5: peak resident memory of embed on two numbers of images, each in a fresh process. A small set of
files is listed many times over, which measures how memory grows with N without writing N files."""
from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


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


def memory_child(spec: dict) -> dict:
    """In a fresh process: embed spec['n'] images (the same files listed over and over) as `ganprov embed`
    does, and report peak resident memory: this process's, and its largest decoding worker's."""
    from ganprov.core.run_folder import RunFolder
    from ganprov.features.checkpoint import load_model
    from ganprov.features.embed import embed_paths, provenance
    from ganprov.features.image_list import ImageList
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
        summary = embed_paths(model, spec["image_size"], root, [images], out, provenance(meta),
                              batch_size=spec["batch_size"], workers=spec["workers"],
                              device=pick_device(spec["device"]), strict=True)
    seconds = time.perf_counter() - started
    out.unlink()
    return {"n": n, "peak_rss_mib": rss_mib("VmHWM"), "rss_before_mib": before,
            "workers_peak_rss_mib": maxrss_mib(resource.RUSAGE_CHILDREN), "embedded": summary["embedded"],
            "seconds": seconds}


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
