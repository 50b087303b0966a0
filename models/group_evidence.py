"""Attribute whole generator groups from their images' votes, and say "undetermined" when the votes do not decide.

Each image of a group votes for the subset its content looks most like. A vote is only as good as the content
model behind it: on held-out labelled images (never seen by the backbone or the head), the confusion matrix
says how often a vote for j comes from an image of subset s, so each vote counts as P(s | vote j) for every
s (Bayes, uniform prior). A group's evidence for s is the mean of these over its images; it goes to the subset
with most evidence when a Bayesian bootstrap (Dirichlet weights, Rubin 1981) over both the group's images and
the held-out images puts that subset on top in at least 1 − alpha of the resamples; otherwise it is
undetermined (label 0). So a content model that cannot tell the subsets apart on held-out images (subsets
alike in content) yields "undetermined", however many images vote, and a subset that attracts everyone's
votes counts for little. Votes, not summed log-probabilities: a few confidently wrong images cannot outweigh
the rest. The bootstrap support is also each image's confidence. Without a confusion matrix a vote for j is
evidence for j alone.

One generator per subset (the challenge's setting): groups are matched one-to-one to subsets (Hungarian, on
the vote counts), and a match is kept only where it is significant in the same sense.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

UNDETERMINED = 0
DRAWS = 4000  # bootstrap resamples per group: support known to about ±0.003 at 0.99
PRIOR = 0.5  # Jeffreys prior on each subset's vote rate: one image's vote alone is no certainty


@dataclass(frozen=True)
class GroupVerdict:
    group: int
    size: int
    votes: list[int]  # per subset, in the order of `subsets`
    support_by_subset: list[float]  # bootstrap probability that each subset is the group's favourite
    subset: int  # attributed subset (a class label), or UNDETERMINED
    best: int  # the subset with most support (one-to-one: the matched one), even when not significant
    support: float  # support of `best`
    margin: float  # share of votes of `best` minus that of the runner-up
    outcovered_by: int | None = None  # a group of the same subset that covers its images more (models/coverage.py)
    coverage_p: float | None = None  # that test's p-value
    covers: int | None = None  # where the group shared its subset: how many of the subset's labelled images it covers
    labelled: int | None = None  # of how many (models/coverage.py)

    @property
    def p_value(self) -> float:
        """Bootstrap probability that another subset is the favourite: significant when ≤ alpha."""
        return 1.0 - self.support


# Said wherever several groups went to one subset (README, `twin`, `drop-candidate` and the shared-subset
# warning's measurements: in the benchmarks' runs it fired mostly where a group was attributed wrongly).
SHARED_SUBSET = ("either several generators trained on that data, or one of these groups is attributed wrongly "
                 "(a generator of look-alike data that is not among the candidates, or one whose images the "
                 "content model misreads); the content evidence alone cannot tell which")


def outcovered_note(best: int, outcovered_by: int | None, coverage_p: float | None) -> str:
    """Why the coverage check left a group undetermined, in the words `predict` and the report both use."""
    if outcovered_by is None:
        return ""
    return f"; group {outcovered_by} covers subset {best}'s images more, p {coverage_p:.2g}"


def shared_coverage(verdicts: Iterable[dict], subset: int) -> str:
    """How many of a shared subset's labelled images each group that claimed it covers, in the words `predict`
    and the report both use ("" where the check did not run): the check can only tell apart groups that
    cover some. `verdicts` as in groups.json (heads saved before the counts existed have none)."""
    claimants = [v for v in verdicts if v["best"] == subset and v.get("covers") is not None]
    if not claimants:
        return ""
    counts = ", ".join(f"group {v['group']} {v['covers']}" for v in claimants)
    return (f"of subset {subset}'s {claimants[0]['labelled']} labelled images the coverage check compared, "
            f"its groups cover: {counts}")


def shared_subsets(subsets: Iterable[int]) -> list[int]:
    """The subsets attributed more than one group (undetermined groups claim none)."""
    counts = Counter(s for s in subsets if s != UNDETERMINED)
    return sorted(s for s, n in counts.items() if n > 1)


def bootstrap_support(votes: np.ndarray, confusion: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Per subset: the share of bootstrap draws in which it has the most evidence. A draw takes the group's
    vote rates from Dirichlet(votes + PRIOR) and each subset's row of vote rates on held-out images from
    Dirichlet(confusion row + PRIOR)."""
    rates = rng.dirichlet(votes + PRIOR, DRAWS)  # DRAWS × K: share of the group's images voting j
    if confusion is None:
        evidence = rates
    else:
        rows = np.stack([rng.dirichlet(row + PRIOR, DRAWS) for row in confusion], axis=1)  # DRAWS × s × j
        posterior = rows / rows.sum(axis=1, keepdims=True)  # P(s | vote j), uniform prior over s
        evidence = np.einsum("dj,dsj->ds", rates, posterior)
    return np.bincount(evidence.argmax(axis=1), minlength=len(votes)) / DRAWS


def judge_groups(votes: np.ndarray, groups: np.ndarray, subsets: np.ndarray, alpha: float = 0.01,
                 confusion: np.ndarray | None = None, one_per_subset: bool = False,
                 seed: int = 0) -> list[GroupVerdict]:
    """A verdict per group. `votes` holds each image's voted column of `subsets`, groups are 0..G-1, and
    `confusion` (optional) counts held-out images by subset (rows) and vote (columns)."""
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    counts = np.zeros((n_groups, len(subsets)), dtype=np.int64)
    np.add.at(counts, (groups, votes), 1)
    # Each group's draws seeded by its own votes: its verdict does not depend on the groups numbered before it.
    support = np.array([bootstrap_support(c, confusion, np.random.default_rng([seed, *c.tolist()]))
                        for c in counts]).reshape(n_groups, len(subsets))
    best = support.argmax(axis=1)
    if one_per_subset:  # the matched subset replaces the group's own favourite; unmatched groups get none
        rows, cols = linear_sum_assignment(-counts)
        best = np.full(n_groups, -1)
        best[rows] = cols
    verdicts = []
    for g in range(n_groups):
        shares = counts[g] / max(counts[g].sum(), 1)
        b = int(best[g])
        s = float(support[g, b]) if b >= 0 else 0.0
        runner_up = np.delete(shares, b).max() if b >= 0 and len(shares) > 1 else 0.0
        verdicts.append(GroupVerdict(
            group=g, size=int(counts[g].sum()), votes=counts[g].tolist(), support_by_subset=support[g].tolist(),
            subset=subsets[b].item() if b >= 0 and s >= 1 - alpha else UNDETERMINED,
            best=subsets[b].item() if b >= 0 else UNDETERMINED, support=s,
            margin=float(shares[b] - runner_up) if b >= 0 else 0.0))
    return verdicts
