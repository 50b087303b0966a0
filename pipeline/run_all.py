"""`ganprov run`: every step from images to report and submission, skipping the ones already done."""
from __future__ import annotations

import importlib.util
import shutil

from ganprov.core.atomic import atomic_path
from ganprov.core.run_folder import RunFolder
from ganprov.core.settings import TrainSettings
from ganprov.models import HEADS, HeadError
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.persistence import read_sidecar

from .evaluate import evaluate
from .predict import predict, unknown_count
from .report import write_report
from .run_heads import fit_head

# The head behind RUN/submission.csv, in both regimes (see README, "Results"): single images drift towards
# other subsets' content, by a different amount for every generator (without labelled generated images, and
# with them for a generator unlike the labelled ones), while whole generator groups, attributed only when
# their votes are significant, were wrong on the benchmarks only when the true subset was no candidate.
DEFAULT_HEAD = "fingerprint"


def default_head(file: EmbeddingsFile) -> str:
    return DEFAULT_HEAD


def gradcam_available() -> bool:
    """grad-cam installed; `run` then draws Grad-CAM maps (0.3 s per 16 images at 64 px on a CPU), and without
    it says so rather than fail at the end of a long run."""
    if importlib.util.find_spec("pytorch_grad_cam"):
        return True
    print("report without Grad-CAM: the grad-cam package is missing (pip install grad-cam)")
    return False


def head_is_current(run: RunFolder, name: str, file: EmbeddingsFile, params: dict) -> bool:
    """A head fitted (with --fit-on auto) on exactly these embeddings, with these options, needs no refit."""
    sidecar = run.head(name).with_suffix(".json")
    try:
        info = read_sidecar(sidecar)["info"]
    except (OSError, HeadError):  # missing or damaged: fit again, which writes a new one
        return False
    return (info.get("fit_on_requested") == "auto" and info.get("provenance") == file.provenance
            and info.get("params_requested") == params)


def run_all(settings: TrainSettings, run_dir, truth: str | None = None, force: bool = False,
            head_params: dict | None = None, gradcam: bool = True) -> dict:
    from ganprov.features.distributed import world
    from ganprov.features.embed import StaleEmbeddings, embed
    from ganprov.features.train import train

    run = RunFolder(run_dir)
    train(settings, run.path, resume=True, force=force)
    embed_options = dict(batch_size=settings.batch_size, workers=settings.workers, device=settings.device,
                         strict=settings.strict)
    try:
        embed(settings.data, run.path, force=force, **embed_options)
    except StaleEmbeddings as error:  # the checkpoint or the images changed since: this run's own file is stale
        print(f"{error}\nembedding again")
        embed(settings.data, run.path, force=True, **embed_options)
    if not world().is_main:  # under torchrun: rank 0 alone fits, predicts and reports
        return {}
    file = EmbeddingsFile(run.embeddings)
    chosen = default_head(file)
    params = {"seed": settings.seed} | (head_params or {})
    for name in HEADS:
        if force or not head_is_current(run, name, file, params):
            fit_head(run.path, name, params=params)
    if unknown_count(file):
        for name in HEADS:
            predict(run.path, name)
        with atomic_path(run.submission) as temporary:
            shutil.copyfile(run.prediction(chosen), temporary)
        print(f"submission ({chosen}) → {run.submission}")
    else:  # the heads are still fitted and evaluated on the held-out images
        print("nothing to attribute: no readable image in generated_unknown/, so no predictions and no submission")
    results = evaluate(run.path, truth=truth)
    write_report(run.path, chosen, gradcam=gradcam and gradcam_available())
    return {"results": results, "report": str(run.report)}
