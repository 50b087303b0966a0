"""RUN/report.html: one self-contained page (images inlined) built around the generators found in the
unknown set: a section per generator group with its verdict and evidence, the validation the regime allows,
and a row per unknown image. Torch is loaded only for Grad-CAM."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image

from ganprov.core import schema
from ganprov.core.atomic import write_text
from ganprov.core.errors import GanprovError
from ganprov.core.run_folder import RunFolder
from ganprov.core.volumes import Reading
from ganprov.models import HeadError
from ganprov.models.embeddings import EmbeddingsFile

from . import plots
from .agree import agreed_labels
from .evaluate import COLUMNS, figure
from .report_groups import (
    Section,
    Unknown,
    images_table,
    overview,
    read_unknown,
    second_opinion_html,
    section_html,
    sections,
)
from .report_html import STYLE, esc, img_tag, png
from .report_validation import validation_section
from .run_heads import fitted_heads, load_run_head
from .truth import read_labels


def gradcam_overlays(run: RunFolder, found: list[Section], unknown: Unknown, data_root: Path,
                     reading: Reading) -> dict[int, bytes]:
    """Grad-CAM PNG of each sampled image, for its section's subset, by row of the unknown set."""
    from ganprov.features.gradcam import overlays  # torch: only when asked for
    items = [(row, s.target) for s in found if s.target for row in s.sample.tolist()]
    maps = overlays(run.checkpoint, [(data_root / unknown.path(row), target) for row, target in items], reading)
    return {row: png(Image.fromarray(m)) for (row, _), m in zip(items, maps, strict=True) if m is not None}


def heads_table(results: list[dict]) -> str:
    head = "".join(f"<th>{esc(short)}</th>" for _, short in COLUMNS)
    body = "".join(
        f"<tr><td>{esc(r['head'])}</td><td>{esc(r['fit_on'])}</td><td>{esc(r['set'])}</td>"
        f"<td>{r['n']}</td>" + "".join(f"<td>{figure(r, key):.4f}</td>" for key, _ in COLUMNS) + "</tr>" for r in results)
    return f"<table><tr><th>head</th><th>fit on</th><th>set</th><th>n</th>{head}</tr>{body}</table>"


def write_report(run_dir, default_head: str, gradcam: bool = False, second_opinion: bool = False) -> Path:
    """Assemble RUN/report.html from what the run folder holds; with `gradcam`, Grad-CAM maps of each group's
    sample of images (loads the backbone: torch); with `second_opinion`, how RUN/second-opinion's attributions
    of `default_head` and submission.csv (their agreement) compare with this run's."""
    run = RunFolder(run_dir)
    fitted = fitted_heads(run)
    if default_head not in fitted:  # a report on a head that does not exist would be a page of blanks
        raise HeadError(f"no head {default_head!r} in {run.heads}: the fitted heads are {', '.join(fitted)}; "
                        "choose one with --head")
    file = EmbeddingsFile(run.embeddings)
    head, _ = load_run_head(run, default_head, file)
    config = run.read_config()
    train = config.get("train", {})
    # The images these embeddings were made from (embed --data), which need not be the training data.
    data_root = Path(file.provenance.get("data_root") or train.get("data", "."))
    reading = Reading.of(train)  # DICOM and NIfTI read as in training
    regime = schema.regime(file.groups)  # of these embeddings
    parts = [f"<h1>ganprov report: {esc(run.path)}</h1>",
             f"<p class=small>regime: <b>{regime}</b>; subsets {file.subsets}; head "
             f"<b>{esc(default_head)}</b>; embeddings {esc(file.provenance.get('created', ''))}, checkpoint sha256 "
             f"{esc(str(file.provenance.get('checkpoint_sha256', ''))[:16])}…"
             + ("" if file.through is None else "; labelled images also used resized to {}×{}, the unknown images' "
                "usual size".format(*file.through)) + "</p>"]
    unknown = read_unknown(run, default_head, file)
    found = sections(run, default_head, unknown) if unknown else []
    submitted = None  # submission.csv's labels, where a second opinion made them this head's agreement
    if unknown:
        real = file.read("real", residuals=False)
        cams = gradcam_overlays(run, found, unknown, data_root, reading) if gradcam else {}
        parts.append(f"<h2>Generators in the unknown set</h2>{overview(found, unknown)}<p class=small>Each section "
                     "below: the group's verdict, a sample of its images, and for each candidate subset the real "
                     "images nearest the group. Every image has a row in <a href=\"#images\">the table at the "
                     "end</a>.</p>")
        second = run.second_opinion.prediction(default_head)
        if second_opinion and second.is_file() and run.submission.is_file():
            theirs, agreed = read_labels(second), read_labels(run.submission)
            ours = dict(zip(unknown.names, unknown.labels.tolist()))
            # Only where submission.csv is the agreement of these two: a later run without a second opinion
            # leaves an earlier one's files behind.
            if ours.keys() == theirs.keys() == agreed.keys() and agreed == agreed_labels([ours, theirs]):
                submitted = agreed
                parts.append(second_opinion_html(found, unknown, theirs, submitted))
        parts += [section_html(s, unknown, real, file.subsets, data_root, reading, cams) for s in found]
    else:
        parts.append("<h2>Generators in the unknown set</h2><p>Nothing attributed: no predictions for the unknown "
                     "set (no readable image in <code>generated_unknown/</code>, or <code>ganprov predict</code> "
                     "not run yet).</p>")
    metrics = run.metrics
    try:
        results = json.loads(metrics.read_text()) if metrics.is_file() else []
    except (OSError, ValueError) as error:
        raise GanprovError(f"{metrics} cannot be read ({error}); run `ganprov evaluate` again to redo it") from None
    parts.append(validation_section(file, head, default_head, results))
    if results:
        parts.append("<h2>Heads</h2><p class=small>validation = held-out labelled images no training or fitting "
                     "saw; unknown = generated_unknown scored against the truth file given to evaluate.</p>"
                     + heads_table(results))
    if run.train_log.is_file():
        with open(run.train_log, encoding="utf-8", newline="") as handle:
            log = list(csv.DictReader(handle))
        if log:
            parts.append("<h2>Training</h2>" + img_tag(plots.png_bytes(plots.training_figure(log)), "training curve"))
    pca = run.pca_plot
    if pca.is_file():
        parts.append("<h2>Embeddings</h2>" + img_tag(pca.read_bytes(), "PCA scatter"))
    parts.append("<h2>Settings</h2><table>" + "".join(
        f"<tr><td>{esc(section)}.{esc(key)}</td><td>{esc(json.dumps(value))}</td></tr>"
        for section, values in config.items() for key, value in values.items()) + "</table>")
    if unknown:
        parts.append(images_table(unknown, found, submitted))
    page = f"<!doctype html><meta charset=utf-8><title>ganprov report</title><style>{STYLE}</style>{''.join(parts)}"
    write_text(run.report, page)
    print(f"report → {run.report}")
    return run.report
