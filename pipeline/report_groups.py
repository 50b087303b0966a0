"""The unknown set in the report: one section per generator group (its verdict, a sample of its images, its
nearest real images per candidate subset) and one row with an anchor per image. No torch."""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ganprov.core.layout import FOLDERS
from ganprov.core.run_folder import RunFolder
from ganprov.core.volumes import Reading
from ganprov.models import group_evidence
from ganprov.models.cosine import unit_rows
from ganprov.models.embeddings import Embeddings, EmbeddingsFile

from .predict import unknown_filename
from .report_html import SEARCH_SCRIPT, esc, image_or_name, thumbnail

SAMPLE = 16  # images shown per group: enough to see a generator's look, few enough to keep the page small
NEIGHBOURS = 4  # nearest real images shown per candidate subset


@dataclass
class Unknown:
    """The unknown set as a head attributed it, in the order of its proba CSV (by file name)."""
    names: list[str]
    labels: np.ndarray
    confidence: np.ndarray
    groups: np.ndarray | None  # generator group of each image, for heads that attribute whole generators
    embeddings: np.ndarray

    def path(self, row: int) -> str:
        """Where the image lies, relative to the data folder."""
        return str(PurePosixPath(FOLDERS["unknown"]) / self.names[row])


@dataclass
class Section:
    key: str  # the section's anchor
    title: str
    members: np.ndarray  # rows of Unknown
    sample: np.ndarray  # the members shown
    verdict: dict | None  # the group's verdict (groups.json), for grouping heads
    target: int  # the subset whose evidence the sample's Grad-CAM shows; 0: none


def read_unknown(run: RunFolder, head: str, file: EmbeddingsFile) -> Unknown | None:
    """The head's predictions joined to the embeddings by file name; None when there are none."""
    proba_csv = run.probabilities(head)
    if "unknown" not in file.groups or not proba_csv.is_file():
        return None
    unknown = file.read("unknown", residuals=False)
    index = {unknown_filename(p): i for i, p in enumerate(unknown.paths)}
    with open(proba_csv, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["filename"] in index]
    if not rows:
        return None
    grouped = "group" in rows[0]
    return Unknown([r["filename"] for r in rows], np.array([int(r["label"]) for r in rows]),
                   np.array([float(r["confidence"]) for r in rows]),
                   np.array([int(r["group"]) for r in rows]) if grouped else None,
                   unknown.embeddings[[index[r["filename"]] for r in rows]])


def sections(run: RunFolder, head: str, unknown: Unknown) -> list[Section]:
    """One section per generator group; for a head that attributes image by image, one per attributed label."""
    rng = np.random.default_rng(0)

    def sample(members: np.ndarray) -> np.ndarray:
        return np.sort(rng.choice(members, size=min(SAMPLE, len(members)), replace=False))

    path = run.groups(head)
    if unknown.groups is not None and path.is_file():
        found = []
        for v in json.loads(path.read_text()):
            members = np.flatnonzero(unknown.groups == v["group"])
            verdict = (f"subset {v['subset']}" if v["subset"] else
                       f"<span class=undetermined>undetermined</span> (best: subset {v['best']}"
                       + group_evidence.outcovered_note(v["best"], v.get("outcovered_by"), v.get("coverage_p")) + ")")
            found.append(Section(f"g{v['group']}", f"Group {v['group']}: {len(members)} images → {verdict}",
                                 members, sample(members), v, v["subset"] or v["best"]))
        return [s for s in found if len(s.members)]
    return [Section(f"s{label}", f"Attributed to subset {label}" if label else "Undetermined",
                    members, sample(members), None, label)
            for label in np.unique(unknown.labels) for members in [np.flatnonzero(unknown.labels == label)]]


def nearest_by_subset(real: Embeddings, centre: np.ndarray, subsets: list[int], n: int) -> dict[int, tuple]:
    """For each subset, its n real images most cosine-similar to `centre`: (rows of real, similarities)."""
    similarity = unit_rows(real.embeddings) @ unit_rows(centre[None])[0]
    found = {}
    for subset in subsets:
        rows = np.flatnonzero(real.labels == subset)
        best = rows[np.argsort(-similarity[rows], kind="stable")[:n]]
        found[subset] = best, similarity[best]
    return found


def section_html(section: Section, unknown: Unknown, real: Embeddings, subsets: list[int], data_root: Path,
                 reading: Reading, cams: dict[int, bytes]) -> str:
    v = section.verdict
    figures = "" if v is None else (
        f"<p>support <b>{v['support']:.3f}</b> (p-value {v.get('p_value', 1 - v['support']):.3f}: the bootstrap "
        f"probability that another subset is the favourite), margin {v['margin']:.3f}</p>")
    grid = "".join(f'<a href="#u{row}" title="{esc(unknown.names[row])}">'
                   + image_or_name(thumbnail(data_root / unknown.path(row), reading=reading), unknown.names[row])
                   + "</a>" for row in section.sample)
    parts = [f'<section class=group id={section.key}><h2>{section.title}</h2>{figures}',
             f"<div class=grid><span class=caption>{len(section.sample)} of {len(section.members)} images "
             f"(click for its row)</span>{grid}</div>"]
    if cams:
        overlays = "".join(image_or_name(cams.get(row), f"Grad-CAM {unknown.names[row]}") for row in section.sample)
        parts.append(f"<div class=grid><span class=caption>Grad-CAM: where the backbone saw subset "
                     f"{section.target}</span>{overlays}</div>")
    # The group's centre: the mean direction of its images, so the nearest real images are those nearest the
    # group as a whole, not any single image.
    nearest = nearest_by_subset(real, unit_rows(unknown.embeddings[section.members]).mean(axis=0), subsets, NEIGHBOURS)
    rows = []
    for i, subset in enumerate(subsets):
        found, similarity = nearest[subset]
        images = "".join(image_or_name(thumbnail(data_root / real.paths[j], reading=reading),
                                       f"{real.paths[j]} (cos {s:.3f})") for j, s in zip(found, similarity, strict=True))
        evidence = "" if v is None else f"<td>{v['votes'][i]}</td><td>{v['support_by_subset'][i]:.3f}</td>"
        rows.append(f"<tr><td>subset {subset}</td>{evidence}<td class=grid style='text-align:left'>{images}</td>"
                    f"<td>{' '.join(f'{s:.3f}' for s in similarity)}</td></tr>")
    header = "" if v is None else "<th>votes</th><th>support</th>"
    parts.append(f"<table><tr><th>candidate</th>{header}<th>nearest real images to the group (embedding cosine)"
                 f"</th><th>cosine</th></tr>{''.join(rows)}</table></section>")
    return "".join(parts)


def overview(found: list[Section], unknown: Unknown) -> str:
    """How the unknown set splits, one line per section, each linking to it."""
    grouped = unknown.groups is not None
    attributed = int(np.sum(unknown.labels != 0))
    rows = "".join(
        f'<tr><td><a href="#{s.key}">{s.title}</a></td><td>{len(s.members)}</td>'
        + ("" if s.verdict is None else f"<td>{s.verdict['support']:.3f}</td><td>{s.verdict['margin']:.3f}</td>")
        + "</tr>" for s in found)
    header = "<th>support</th><th>margin</th>" if grouped else ""
    return (f"<p>{len(unknown.names)} unknown images{f' in {len(found)} generator groups' if grouped else ''}: "
            f"{attributed} attributed, {len(unknown.names) - attributed} undetermined (label 0).</p>"
            f"<table><tr><th>{'group' if grouped else 'attributed'}</th><th>images</th>{header}</tr>{rows}</table>"
            + shared_warning(found))


def shared_warning(found: list[Section]) -> str:
    """A warning where several groups went to one subset."""
    verdicts = [s.verdict for s in found if s.verdict]
    shared = group_evidence.shared_subsets(v["subset"] for v in verdicts)
    if not shared:
        return ""
    counts = "".join(f" {note}." for note in (group_evidence.shared_coverage(verdicts, s) for s in shared)
                     if note)
    return (f"<p class=undetermined>Several groups attributed to subset {', '.join(map(str, shared))}: "
            f"{group_evidence.SHARED_SUBSET}. Check that every subset the generators could have been trained on "
            f"is a candidate.{counts}</p>")


def second_opinion_html(found: list[Section], unknown: Unknown, second: dict[str, int], agreed: dict[str, int]) -> str:
    """Per section: the label the second opinion's backbone gives its images (most often, with how many) and
    what submission.csv keeps."""
    def most(labels: list[int]) -> str:
        (label, count), = Counter(labels).most_common(1)
        return f"{label or 'undetermined'} ({count} of {len(labels)})"

    rows = "".join(
        f'<tr><td><a href="#{s.key}">{s.title}</a></td>'
        f"<td>{most([second[unknown.names[r]] for r in s.members])}</td>"
        f"<td>{most([agreed[unknown.names[r]] for r in s.members])}</td></tr>" for s in found)
    undetermined = sum(1 for label in agreed.values() if not label)
    return ("<h2>Second opinion</h2><p>A second backbone, trained with the other augmentation setting on the same "
            "real images (<code>second-opinion/</code>, its own report there), attributed the same images. "
            "<code>submission.csv</code> keeps an image's label only where both give it, label 0 elsewhere: "
            f"{undetermined} of {len(agreed)} images undetermined.</p><table><tr><th>this run</th>"
            f"<th>second opinion</th><th>submission.csv</th></tr>{rows}</table>")


def images_table(unknown: Unknown, found: list[Section], submitted: dict[str, int] | None = None) -> str:
    """Every unknown image, one row each with an anchor (#uROW), filterable by file name. Text only: a
    thumbnail per row would make the page of 10,000 images tens of megabytes. With `submitted` (the labels of
    submission.csv, where a second opinion made them differ from this head's), a column for them."""
    key = {}
    for s in found:
        key.update(dict.fromkeys(s.members.tolist(), s.key))
    grouped = unknown.groups is not None
    rows = "".join(
        f"<tr id=u{row}><td>{row}<td>{esc(name)}"
        + (f"<td>{unknown.groups[row]}" if grouped else "")
        + f'<td><a href="#{key[row]}">{unknown.labels[row] or "undetermined"}</a><td>{unknown.confidence[row]:.3f}'
        + ("" if submitted is None else f"<td>{submitted[name] or 'undetermined'}")
        for row, name in enumerate(unknown.names))
    return ("<h2 id=images>Every unknown image</h2><p><input id=search type=search placeholder='filter by file name'"
            " aria-label='filter by file name' size=40> <span id=shown class=small></span></p>"
            f"<table id=unknown-images><thead><tr><th>#</th><th>file</th>{'<th>group</th>' if grouped else ''}"
            f"<th>label</th><th>confidence</th>{'' if submitted is None else '<th>submission.csv</th>'}</tr></thead>"
            f"<tbody>{rows}</tbody></table>{SEARCH_SCRIPT}")
