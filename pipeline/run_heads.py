"""Fitting heads on a run's embeddings and loading them back, with provenance pinned in the sidecar.

Beside the heads, RUN/heads/novelty/FIT_ON.joblib holds the novelty gate that `predict --abstain` uses for
heads fit on those rows. It depends on the embeddings and the rows alone, not on the head, so heads fit on the
same rows share it. It keeps every training row (a nearest-neighbour reference: 29 s and 250 MB for 25,000
rows and 25,000 held-out ones), so it is fitted by the first `predict --abstain`, not by every fit, and reused
until the embeddings file changes.
"""
from __future__ import annotations

import inspect
import time

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError

from ganprov.core.run_folder import RunFolder
from ganprov.core.schema import FIT_ON
from ganprov.models import HEADS, HeadError, make_head
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.novelty import NoveltyGate
from ganprov.models.persistence import load_head, read_sidecar, save_head, sidecar_path


def fitted_heads(run: RunFolder) -> list[str]:
    """Names of the heads fitted in this run, registry order first; HeadError when there are none."""
    found = {p.stem for p in run.heads.glob("*.joblib")} if run.heads.is_dir() else set()
    if not found:
        raise HeadError(f"no fitted heads in {run.heads}: run `ganprov fit --run {run.path} --head all` first")
    return [n for n in HEADS if n in found] + sorted(found - set(HEADS))


def fit_on_choices(file: EmbeddingsFile, fit_on: str) -> list[str]:
    """`auto` tries every labelled selection the file holds and keeps the best on validation rows; generated
    images alone only where they cover every subset (a head fitted on them could never name the others)."""
    if fit_on != "auto" and fit_on not in FIT_ON:
        raise HeadError(f"--fit-on must be auto or one of {', '.join(FIT_ON)}, not {fit_on!r}")
    missing = sorted(set(file.subsets) - set(file.labels("generated").tolist())) if "generated" in file.groups else []
    if fit_on == "generated" and missing:
        raise HeadError(f"--fit-on generated: generated/ has no images of subset(s) {missing}, which a head fitted "
                        "on it could never name; use --fit-on both or real")
    if fit_on != "auto":
        return [fit_on]
    if "generated" not in file.groups:
        return ["real"]
    return ["both", "real"] if missing else ["generated", "both", "real"]


def fit_head(run_dir, name: str, fit_on: str = "auto", params: dict | None = None) -> dict:
    """Fit head `name` on RUN/embeddings.h5, choose the training rows, save it; return its sidecar info."""
    run = RunFolder(run_dir)
    file = EmbeddingsFile(run.embeddings)
    # Residuals of held-out generated rows only, for a head that checks its grouping on them (fingerprint);
    # else they stay on disk.
    validation = file.head_validation(make_head(name, **(params or {})).uses_residuals)
    started = time.perf_counter()
    results = {}
    for choice in fit_on_choices(file, fit_on):
        rows = file.training(choice, residuals=False)  # no head learns from these rows' residuals
        head = make_head(name, **(params or {}))
        # Heads that weigh their evidence by how it fares on held-out rows (fingerprint) get them to fit on.
        parameters = inspect.signature(head.fit).parameters
        held_out = {"X_val": validation.inputs_for(head), "y_val": validation.labels} if "X_val" in parameters else {}
        if "generated_val" in parameters:  # held-out generated images: the fingerprint head checks its grouping
            held_out["generated_val"] = file.validation_group == "generated"
        if "content_residuals" in parameters and "real" in file.groups:  # anatomy to take out before grouping
            held_out["content_residuals"] = file.real_residuals()
        try:
            head.fit(rows.inputs_for(head), rows.labels, **held_out)
        except InvalidParameterError as error:  # e.g. k=0 from Python: the CLI's options never get this far
            raise HeadError(str(error)) from None
        predicted = head.predict(validation.inputs_for(head)) if len(validation.labels) else []
        accuracy = float(np.mean(predicted == validation.labels)) if len(validation.labels) else float("nan")
        results[choice] = (accuracy, head, len(rows.labels))
    best = max(results, key=lambda c: results[c][0])  # max keeps the first of equals: the order above
    accuracy, head, n_train = results[best]
    info = {"head": name, "fit_on": best, "fit_on_requested": fit_on, "params_requested": params or {},
            "params": {k: v for k, v in head.get_params().items() if isinstance(v, (int, float, str, bool))},
            "n_train": n_train,
            "validation_accuracy": {c: r[0] for c, r in results.items()}, "validation_group": file.validation_group,
            "provenance": file.provenance, "seconds": round(time.perf_counter() - started, 3)}
    save_head(head, run.head(name), info)
    print(f"fitted {name} on {best} ({n_train} rows) in {info['seconds']:.2f} s; validation accuracy "
          + ", ".join(f"{c} {a:.4f}" for c, (a, _, _) in results.items()) + f" → {run.head(name)}")
    return info


def embeddings_stamp(file: EmbeddingsFile) -> list[int]:
    """Size and modification time: `embed` writing or replacing the file changes them."""
    stat = file.path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def load_gate(run: RunFolder, fit_on: str, file: EmbeddingsFile) -> NoveltyGate:
    """The novelty gate for heads fit on `fit_on`: the saved one when it was fitted on this very embeddings
    file (loaded only after its sha256 checks out), else fitted now and saved."""
    use_residuals = fit_on != "real"  # real images carry no generator's print
    validation = file.validation(use_residuals)
    if not len(validation.labels):
        raise HeadError(f"{file.path} has no held-out rows to calibrate the novelty gate on: --abstain needs them")
    path = run.novelty_gate(fit_on)
    info = {"fit_on": fit_on, "provenance": file.provenance, "embeddings": embeddings_stamp(file)}
    try:
        if read_sidecar(sidecar_path(path))["info"] == info:
            return load_head(path, file.provenance)[0]
    except (OSError, HeadError):  # none yet, or damaged: fit it again
        pass
    gate = NoveltyGate(use_residuals=use_residuals)
    gate.fit(file.training(fit_on, use_residuals).with_residuals(), X_val=validation.with_residuals())
    save_head(gate, path, info)
    return gate


def load_run_head(run: RunFolder, name: str, file: EmbeddingsFile):
    """A fitted head, refused unless its sha256 checks out and it was fit on embeddings like `file`'s."""
    path = run.head(name)
    if not path.is_file():
        raise HeadError(f"no head {name!r} in {run.heads}: run `ganprov fit --run {run.path} --head {name}` first")
    head, sidecar = load_head(path, file.provenance)
    if "fit_on" not in sidecar["info"]:  # predict and evaluate need it
        raise HeadError(f"{path.with_suffix('.json')} does not say what {name!r} was fit on; fit the head again")
    return head, sidecar
