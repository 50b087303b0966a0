"""The report's validation: what the regime can check, said plainly, and what it cannot. No torch."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ganprov.core import schema
from ganprov.models.embeddings import EmbeddingsFile

from . import plots
from .report_html import esc, img_tag

# Unknown images grouped twice for the stability check: a sample past this, so a million-image set's residuals
# are never all in memory (the head groups sets this large on as many rows anyway: models/generators.py).
STABILITY_ROWS = 25_000

SETS = {"unknown": "the unknown set, scored against the truth file given to <code>ganprov evaluate</code>"}


def group_stability(head, inputs: np.ndarray, seed: int = 0) -> list[float] | None:
    """The unknown set split at random into halves, each grouped on its own: the adjusted Rand index of each
    half's groups against the groups of the whole set (1: the same generators found). Costs two groupings."""
    if not hasattr(head, "groups") or len(inputs) < 4:
        return None
    whole = head.groups(inputs)
    halves = np.array_split(np.random.default_rng(seed).permutation(len(inputs)), 2)
    return [float(adjusted_rand_score(whole[half], head.groups(inputs[half]))) for half in halves]


def content_model(head, heldout: str) -> str:
    """The accuracy of the content model that casts a grouping head's votes, on held-out labelled images."""
    confusion = getattr(head, "confusion_", None)
    if confusion is None or not confusion.sum():
        return ""
    labels = head.classes_.tolist()
    accuracy = np.trace(confusion) / confusion.sum()
    title = f"content model ({head.content}) on held-out {heldout} images (accuracy {accuracy:.3f})"
    return (f"<h3>Content model</h3><p>The votes of each group come from a {esc(head.content)} head on the "
            f"embeddings. On {int(confusion.sum())} held-out {heldout} images it is right on <b>{accuracy:.3f}</b> "
            f"(chance: {1 / len(labels):.3f}); this confusion matrix is what a vote is worth when a group is judged. "
            f"The fewest held-out images of one subset: {int(confusion.sum(axis=1).min())}; the fewer, the more "
            "roughly a vote's worth is known, and the more often a group with clear votes stays undetermined at "
            "the head's level (<code>ganprov fit --alpha</code>)."
            "</p>" + img_tag(plots.png_bytes(plots.confusion_figure(confusion, labels, title)),
                             "confusion matrix content model", "margin:4px"))


def metrics_rows(results: list[dict], head_name: str, heldout: str) -> str:
    """The head's figures, confusion matrix and reliability diagram on each set evaluate scored."""
    sets = SETS | {"validation": f"held-out {heldout} images, seen by no training or fitting"}
    parts = []
    for r in (r for r in results if r["head"] == head_name):
        ece = "" if r.get("ece") is None else f", ECE {r['ece']:.3f}"
        parts.append(f"<h3>{esc(head_name)} on {sets.get(r['set'], esc(r['set']))}</h3><p>{r['n']} images: accuracy "
                     f"<b>{r['accuracy']:.3f}</b>, wrong {r['wrong']:.3f}, undetermined {r['undetermined']:.3f}{ece}</p>")
        figure = plots.confusion_figure(r["confusion"], r["confusion_labels"], f"{head_name} on {r['set']}")
        parts.append(img_tag(plots.png_bytes(figure), f"confusion matrix {r['set']}", "margin:4px"))
        if r.get("reliability"):
            figure = plots.reliability_figure(r["reliability"], f"{head_name} on {r['set']}: reliability "
                                              f"(ECE {r['ece']:.3f}, attributed images)")
            parts.append(img_tag(plots.png_bytes(figure), f"reliability diagram {r['set']}", "margin:4px"))
        elif "reliability" in r:
            parts.append(f"<p class=small>{esc(r['set'])}: no image attributed, so no reliability diagram.</p>")
    return "".join(parts)


def validation_section(file: EmbeddingsFile, head, head_name: str, results: list[dict]) -> str:
    challenge = schema.regime(file.groups) == "challenge"
    heldout = file.validation_group
    if challenge:
        intro = ("<p>Held-out generated images (a seeded fifth of each <code>generated/</code> folder, more of a "
                 "small one: <code>--min-heldout</code>) stand in "
                 f"for the unknown set: the <b>{esc(head_name)}</b> head's attributions of them are checked against "
                 "the folders they came from.</p>")
    else:
        intro = ("<p><b>Not validated here: how often generated images are attributed to the right subset.</b> "
                 "This run is in the audit regime: there are no labelled generated images (no "
                 "<code>generated/</code> folder), so nothing in it can measure attribution accuracy on generated "
                 "images; the README's benchmarks are the evidence for that. What can be checked is below: "
                 "whether the content model tells the subsets apart on held-out real images (if it cannot, "
                 "groups are left undetermined), and whether the generator groups are stable.</p>")
    parts = ["<h2 id=validation>Validation</h2>", intro, content_model(head, heldout)]
    if "unknown" in file.groups and hasattr(head, "groups"):
        total = file.count("unknown")
        sample = np.random.default_rng(0).permutation(total)[:STABILITY_ROWS]
        rows = file.select(["unknown"], lambda heldout: np.isin(np.arange(len(heldout)), sample), residuals=True)
        stability = group_stability(head, rows.inputs_for(head))
        if stability is not None:
            scope = ("The unknown set" if total <= STABILITY_ROWS
                     else f"A random {STABILITY_ROWS:,} of the {total:,} unknown images")
            parts.append(f"<h3>Group stability</h3><p>{scope} split at random into two halves, each "
                         "grouped on its own: adjusted Rand index against the groups of the whole set "
                         f"<b>{' and '.join(f'{x:.3f}' for x in stability)}</b> (1: the same generators found).</p>")
    parts.append(metrics_rows(results, head_name, heldout))
    return "".join(parts)
