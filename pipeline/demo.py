"""`ganprov demo`: the whole pipeline on a small synthetic data set, on the CPU, in a few minutes."""
from __future__ import annotations

from pathlib import Path

from ganprov.core.settings import TrainSettings

from .demo_data import write_demo_data
from .run_all import run_all


def demo(run_dir: str = "runs/demo", epochs: int = 3, workers: int | None = None) -> dict:
    """Write synthetic CT-like data beside the run folder and run every step on it with random init."""
    run_dir = Path(run_dir)
    data = run_dir.parent / f"{run_dir.name}-data"
    summary = write_demo_data(data)
    print(f"synthetic demo data (not medical images): {summary['real']} real, {summary['generated']} generated, "
          f"{summary['unknown']} unknown images in {summary['subsets']} subsets → {data}")
    settings = TrainSettings(data=str(data), weights="none", image_size=64, epochs=epochs)
    if workers is not None:
        settings.workers = workers
    result = run_all(settings, run_dir, truth=summary["truth"])
    print(f"\ndemo finished: open {result['report']}")
    return result
