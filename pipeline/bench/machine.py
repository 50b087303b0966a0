"""The machine the bench ran on: its settings and versions, and how busy other processes kept it."""
from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

from .spec import BATCH_SIZE


def environment(device, workers: int) -> dict:
    import torch
    import torchvision

    return {"device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(), "workers": workers,
            "batch_size": BATCH_SIZE, "load_average": list(os.getloadavg()), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "machine": platform.machine(),
            "thread_env": {key: value for key, value in os.environ.items()  # OMP_NUM_THREADS, OMP_WAIT_POLICY, ...
                           if key.startswith(("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_"))}}


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
