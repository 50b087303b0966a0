"""RUN/report.html: one self-contained page (images inlined) with the evidence an auditor wants to see."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ganprov.core import volumes
from ganprov.core.atomic import write_text
from ganprov.core.run_folder import RunFolder
from ganprov.core.volumes import Reading
from ganprov.models import HeadError
from ganprov.models.embeddings import EmbeddingsFile

from . import plots
from .evaluate import COLUMNS, figure
from .heads import fitted_heads
from .predict import unknown_filename

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}.evidence img{width:72px;height:72px;
image-rendering:pixelated;margin:1px}.evidence td{text-align:left;vertical-align:middle}.small{color:#666;font-size:12px}"""


def img_tag(png: bytes, alt: str, style: str = "") -> str:
    return f'<img alt="{html.escape(alt)}" style="{style}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def thumbnail(path: Path, size: int = 96, reading: Reading = Reading()) -> bytes | None:
    """A small PNG of an image (a DICOM frame or NIfTI slice windowed as in training), or None when it cannot
    be read (moved, deleted, broken)."""
    try:
        file, _ = volumes.split_item(path)
        if volumes.is_dicom(file) or volumes.is_nifti(file):
            image = Image.fromarray(volumes.read(path, reading))
        else:
            with Image.open(path) as opened:
                image = opened.copy()
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()
    except (OSError, ValueError):
        return None


def nearest_real(file: EmbeddingsFile, queries: np.ndarray, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """For each query embedding, the n most cosine-similar real images: (real paths, indices, similarities)."""
    real = file.read("real")
    bank = real.embeddings / np.linalg.norm(real.embeddings, axis=1, keepdims=True).clip(1e-12)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True).clip(1e-12)
    similarity = q @ bank.T
    nearest = np.argsort(-similarity, axis=1)[:, :n]
    return real.paths, nearest, np.take_along_axis(similarity, nearest, axis=1)


def evidence_section(run: RunFolder, file: EmbeddingsFile, head: str, data_root: Path, reading: Reading,
                     samples: int = 12, neighbours: int = 5) -> str:
    proba_csv = run.predictions / f"{head}.proba.csv"
    if "unknown" not in file.groups or not proba_csv.is_file():
        return "<p>No predictions for the unknown set yet.</p>"
    with open(proba_csv, encoding="utf-8", newline="") as handle:
        predicted = {row["filename"]: row for row in csv.DictReader(handle)}
    unknown = file.read("unknown")
    picks = np.random.default_rng(0).choice(len(unknown.paths), size=min(samples, len(unknown.paths)), replace=False)
    real_paths, nearest, similarity = nearest_real(file, unknown.embeddings[np.sort(picks)], neighbours)
    rows = []
    for i, row in enumerate(np.sort(picks)):
        path = unknown.paths[row]
        guess = predicted.get(unknown_filename(path), {})
        cells = []
        for j, s in zip(nearest[i], similarity[i]):
            png = thumbnail(data_root / real_paths[j], reading=reading)
            label = f"{real_paths[j]} (cos {s:.3f})"
            cells.append(img_tag(png, label) if png else html.escape(label))
        own = thumbnail(data_root / path, reading=reading)
        rows.append(
            f"<tr><td>{img_tag(own, path) if own else ''}<br><span class=small>{html.escape(unknown_filename(path))}</span></td>"
            f"<td><b>subset {html.escape(guess.get('label', '?'))}</b><br><span class=small>confidence "
            f"{html.escape(guess.get('confidence', '?'))}</span></td><td>{''.join(cells)}<br><span class=small>"
            + html.escape(", ".join(real_paths[j].split("/")[1] for j in nearest[i])) + "</span></td></tr>")
    return ("<table class=evidence><tr><th>unknown image</th><th>attributed to</th><th>nearest real training "
            f"images by embedding (cosine), with their subset folders</th></tr>{''.join(rows)}</table>")


def groups_section(run: RunFolder, head: str) -> str:
    """The generator groups a grouping head found in the unknown set, each with its verdict and the votes
    behind it; empty for heads that attribute image by image."""
    path = run.predictions / f"{head}.groups.json"
    if not path.is_file():
        return ""
    verdicts = json.loads(path.read_text())
    rows = "".join(
        f"<tr><td>{v['group']}</td><td>{v['size']}</td><td><b>{'undetermined' if v['subset'] == 0 else v['subset']}"
        f"</b></td><td>{html.escape(str(v['best']))}</td><td>{v['support']:.3f}</td><td>{v['margin']:.3f}</td>"
        f"<td>{html.escape(' '.join(map(str, v['votes'])))}</td></tr>" for v in verdicts)
    return ("<h2>Generator groups</h2><p class=small>The unknown images grouped by generator (noise-residual "
            "fingerprints), each group attributed as a whole. support: bootstrap probability that the best subset "
            "is the one the group's images favour, weighing each vote by how the content model fares on held-out "
            "labelled images; a group is attributed when it reaches 1 − alpha, otherwise undetermined (label 0). "
            "margin: share of votes of the best subset minus the runner-up's. votes: images voting for each "
            "subset, in subset order.</p><table><tr><th>group</th><th>images</th><th>attributed to</th><th>best</th>"
            f"<th>support</th><th>margin</th><th>votes</th></tr>{rows}</table>")


def heads_table(results: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(short)}</th>" for _, short in COLUMNS)
    body = "".join(
        f"<tr><td>{html.escape(r['head'])}</td><td>{html.escape(r['fit_on'])}</td><td>{html.escape(r['set'])}</td>"
        f"<td>{r['n']}</td>" + "".join(f"<td>{figure(r, key):.4f}</td>" for key, _ in COLUMNS) + "</tr>" for r in results)
    return f"<table><tr><th>head</th><th>fit on</th><th>set</th><th>n</th>{head}</tr>{body}</table>"


def write_report(run_dir, default_head: str) -> Path:
    """Assemble RUN/report.html from what the run folder holds."""
    run = RunFolder(run_dir)
    fitted = fitted_heads(run)
    if default_head not in fitted:  # a report on a head that does not exist would be a page of blanks
        raise HeadError(f"no head {default_head!r} in {run.heads}: the fitted heads are {', '.join(fitted)}; "
                        "choose one with --head")
    file = EmbeddingsFile(run.embeddings)
    config = run.read_config()
    # The images these embeddings were made from (embed --data), which need not be the training data.
    data_root = Path(file.provenance.get("data_root") or config.get("train", {}).get("data", "."))
    train = config.get("train", {})
    reading = Reading(train.get("window", "file"), int(train.get("slice_axis", 2)))  # as in training
    parts = [f"<h1>ganprov report: {html.escape(str(run.path))}</h1>",
             f"<p class=small>regime: <b>{html.escape(str(config.get('train', {}).get('regime', '?')))}</b>; "
             f"subsets {file.subsets}; default head <b>{html.escape(default_head)}</b>; embeddings "
             f"{html.escape(file.provenance.get('created', ''))}, checkpoint sha256 "
             f"{html.escape(str(file.provenance.get('checkpoint_sha256', ''))[:16])}…</p>"]
    parts.append("<h2>Settings</h2><table>" + "".join(
        f"<tr><td>{html.escape(section)}.{html.escape(key)}</td><td>{html.escape(json.dumps(value))}</td></tr>"
        for section, values in config.items() for key, value in values.items()) + "</table>")
    if run.train_log.is_file():
        with open(run.train_log, encoding="utf-8", newline="") as handle:
            log = list(csv.DictReader(handle))
        if log:
            parts.append("<h2>Training</h2>" + img_tag(plots.png_bytes(plots.training_figure(log)), "training curve"))
    metrics = run.evaluation / "metrics.json"
    if metrics.is_file():
        results = json.loads(metrics.read_text())
        parts.append("<h2>Heads</h2><p class=small>validation = held-out labelled images no training or fitting "
                     "saw; unknown = generated_unknown scored against the truth file given to evaluate.</p>"
                     + heads_table(results))
        for r in (r for r in results if r["head"] == default_head):
            figure = plots.confusion_figure(r["confusion"], r["confusion_labels"], f"{default_head} on {r['set']}")
            parts.append(img_tag(plots.png_bytes(figure), f"confusion matrix {r['set']}", "margin:4px"))
            if r.get("reliability"):
                figure = plots.reliability_figure(r["reliability"], f"{default_head} on {r['set']}: reliability "
                                                  f"(ECE {r['ece']:.3f}, attributed images)")
                parts.append(img_tag(plots.png_bytes(figure), f"reliability diagram {r['set']}", "margin:4px"))
            elif "reliability" in r:
                parts.append(f"<p class=small>{html.escape(r['set'])}: no image attributed, so no reliability "
                             "diagram.</p>")
    pca = run.evaluation / "pca.png"
    if pca.is_file():
        parts.append("<h2>Embeddings</h2>" + img_tag(pca.read_bytes(), "PCA scatter"))
    parts.append(groups_section(run, default_head))
    parts.append(f"<h2>Evidence</h2><p class=small>A sample of unknown images, the subset the <b>{html.escape(default_head)}"
                 "</b> head attributes each to, and the real images closest to it in embedding space.</p>"
                 + evidence_section(run, file, default_head, data_root, reading))
    page = f"<!doctype html><meta charset=utf-8><title>ganprov report</title><style>{STYLE}</style>{''.join(parts)}"
    write_text(run.report, page)
    print(f"report → {run.report}")
    return run.report
