"""`ganprov run`: every step from images to report and submission, skipping the ones already done."""
from __future__ import annotations

import importlib.util
import shutil
from dataclasses import replace

from ganprov.core import schema
from ganprov.core.atomic import atomic_path
from ganprov.core.run_folder import RunFolder
from ganprov.core.settings import TrainSettings
from ganprov.models import HEADS, HeadError, make_head
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.persistence import read_sidecar, saved_params

from .agree import agree
from .evaluate import evaluate
from .predict import predict, unknown_count
from .report import write_report
from .run_heads import fit_head

# The head behind RUN/submission.csv, in both regimes (see README, "Results"): single images drift towards
# other subsets' content, by a different amount for every generator (without labelled generated images, and
# with them for a generator unlike the labelled ones), while whole generator groups, attributed only when
# their votes are significant, were wrong on the benchmarks only when the true subset was no candidate.
DEFAULT_HEAD = "fingerprint"


def gradcam_available() -> bool:
    """grad-cam installed; `run` then draws Grad-CAM maps (0.3 s per 16 images at 64 px on a CPU), and without
    it says so rather than fail at the end of a long run."""
    if importlib.util.find_spec("pytorch_grad_cam"):
        return True
    print("report without Grad-CAM: the grad-cam package is missing (pip install grad-cam)")
    return False


def head_is_current(run: RunFolder, name: str, file: EmbeddingsFile, params: dict) -> bool:
    """A head fitted (with --fit-on auto) on exactly these embeddings, with these options and the parameters
    they give today (a new version's defaults refit it), needs no refit."""
    sidecar = run.head(name).with_suffix(".json")
    try:
        saved = read_sidecar(sidecar)
    except (OSError, HeadError):  # missing or damaged: fit again, which writes a new one
        return False
    info = saved["info"]
    return (info.get("fit_on_requested") == "auto" and info.get("provenance") == file.provenance
            and info.get("params_requested") == params and saved["params"] == saved_params(make_head(name, **params)))


def stage1(settings: TrainSettings, run: RunFolder, force: bool) -> None:
    """Train and embed (resumable), every process under torchrun."""
    from ganprov.features.embed import StaleEmbeddings, embed
    from ganprov.features.train import train

    train(settings, run.path, resume=True, force=force)
    embed_options = dict(batch_size=settings.batch_size, workers=settings.workers, device=settings.device,
                         strict=settings.strict)
    try:
        embed(settings.data, run.path, force=force, **embed_options)
    except StaleEmbeddings as error:  # the checkpoint or the images changed since: this run's own file is stale
        print(f"{error}\nembedding again")
        embed(settings.data, run.path, force=True, **embed_options)


def stage2(run: RunFolder, params: dict, force: bool, truth: str | None) -> tuple[str, list[dict]]:
    """Fit every head (unless already fitted on these embeddings), predict and evaluate."""
    file = EmbeddingsFile(run.embeddings)
    chosen = DEFAULT_HEAD
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
        print("nothing to attribute: no readable image in generated_unknown/, so no predictions and no submission"
              + (f"; {truth} not compared" if truth else ""))
        truth = None
        run.submission.unlink(missing_ok=True)  # an earlier run's, of images that are gone
        shutil.rmtree(run.predictions, ignore_errors=True)
    return chosen, evaluate(run.path, truth=truth)


def run_all(settings: TrainSettings, run_dir, truth: str | None = None, force: bool = False,
            head_params: dict | None = None, gradcam: bool = True, second_opinion: bool | None = None) -> dict:
    """Every step from images to report. With `second_opinion` (None: in the audit regime, with images to
    attribute), a second backbone trained with the other --augment setting attributes the same images in
    RUN/second-opinion, and RUN/submission.csv keeps only the attributions both give (pipeline/agree.py)."""
    from ganprov.features.distributed import world

    run = RunFolder(run_dir)
    second = run.second_opinion
    stage1(settings, run, force)
    if second_opinion is None:  # the audit regime, with images to attribute: as embed found them, no new listing
        file = EmbeddingsFile(run.embeddings)
        second_opinion = schema.regime(file.groups) == "audit" and unknown_count(file) > 0
    if second_opinion:
        stage1(replace(settings, augment=not settings.augment), second, force)
    if not world().is_main:  # under torchrun: rank 0 alone fits, predicts and reports
        return {}
    params = {"seed": settings.seed} | (head_params or {})
    if second_opinion:
        print(f"second opinion ({'with' if not settings.augment else 'without'} --augment) → {second.path}")
        write_report(second.path, stage2(second, params, force, truth)[0])
    chosen, results = stage2(run, params, force, truth)
    if second_opinion and run.submission.is_file():
        agree([run.prediction(chosen), second.prediction(chosen)], run.submission, truth=truth)
    write_report(run.path, chosen, gradcam=gradcam and gradcam_available(), second_opinion=second_opinion)
    return {"results": results, "report": str(run.report)}
