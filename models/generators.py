"""Group a set of generated images by the generator that made them, without knowing how many there are.

Every generator stamps a fixed high-frequency pattern on its outputs at fixed pixel positions (its
upsampling layers, its learned biases), while the anatomy varies from image to image. The mean noise
residual of a generator's images (its fingerprint, Marra et al. 2019) is therefore stable, and fingerprints of
different generators hardly correlate. So:

0. project out the anatomy: the first singular directions of real images' residuals (which carry no
   generator's print, only what the blur left of the anatomy's edges; in small images, e.g. a set downscaled
   by half, those edges swamp the print);
1. over-split: k-means on a PCA of the unit-norm residuals, with more clusters than there can be generators
   of `min_group` images each (up to `max_start`);
2. merge: while the two groups whose fingerprints correlate most do so above `merge_above`, join them —
   pieces of one generator share its pattern, different generators do not;
3. reassign: each image to the group whose fingerprint (leave-one-out) it correlates with most, until no
   image moves; groups left smaller than `min_group` are merged into the group they correlate with most;
   then merge and reassign again, until no two groups' fingerprints correlate above `merge_above`.

Sets larger than GROUP_SAMPLE rows are grouped on a random sample of that many, and every row is then assigned
to the group whose fingerprint it correlates with most, block by block: `residuals` may be any array-like of
rows (an h5py dataset), so a million residuals (16 GB as float32) never sit in memory at once.

No torch here: residuals come from the embeddings file.
"""
from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, TruncatedSVD

from .cosine import unit_rows

# Rows made unit at a time: 4 MiB of float32, so the half-dozen passes over them stay in the CPU's cache. On 25,000
# rows (2 cores) 0.65 s against 1.6–2.5 s for all rows at once, with every value the same.
UNIT_ROWS = 256


def unit_residuals(residuals: np.ndarray, content: np.ndarray | None = None) -> np.ndarray:
    """Rows with mean 0 and length 1, float32, so dot products of rows and of row sums are correlations;
    with `content` (orthonormal rows, content_directions), those directions are taken out first."""
    units = np.empty(np.shape(residuals), dtype=np.float32)
    for start in range(0, len(units), UNIT_ROWS):
        units[start:start + UNIT_ROWS] = unit_block(np.asarray(residuals[start:start + UNIT_ROWS], dtype=np.float32),
                                                    content)
    return units


def unit_block(block: np.ndarray, content: np.ndarray | None) -> np.ndarray:
    block = unit_rows(block - block.mean(axis=1, keepdims=True))
    if content is None or not len(content):
        return block
    block = block - (block @ content.T) @ content
    return unit_rows(block - block.mean(axis=1, keepdims=True))


def fingerprints(units: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """n_groups × D summed residuals of each group (a group's fingerprint, up to its length)."""
    members = np.zeros((n_groups, len(units)), dtype=units.dtype)
    members[groups, np.arange(len(units))] = 1.0
    return (members @ units).astype(np.float64)  # a matrix product: far faster than np.add.at


def correlations(sums: np.ndarray) -> np.ndarray:
    unit = unit_rows(sums)
    return unit @ unit.T


# Rows the principal components are learned from. The PCA only seeds the over-split k-means, so a sample does:
# fitted on all 25,000 rows of 4,096 columns it took 3.4 s of the head's 4.8 s (2 cores), on 2,000 of them 0.1 s.
PCA_SAMPLE = 2000


def reduced(units: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """The rows on their first principal components (randomized PCA: the residuals have 4,096 columns),
    learned from at most PCA_SAMPLE of them."""
    n_components = min(n_components, len(units) - 1, units.shape[1])
    pca = PCA(n_components, svd_solver="randomized", random_state=seed)
    if len(units) <= PCA_SAMPLE:
        return pca.fit_transform(units)
    sample = np.random.default_rng(seed).choice(len(units), PCA_SAMPLE, replace=False)
    pca.fit(units[np.sort(sample)])
    # = pca.transform(units), without its centred copy of every row
    return units @ pca.components_.T - pca.mean_ @ pca.components_.T


def content_directions(real_residuals: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray | None:
    """The first `n_components` singular directions (orthonormal rows, float32) of real images' unit
    residuals: the anatomy's share of a residual, which real images hold and no generator's print does.
    Not centred (a truncated SVD, not a PCA): the mean anatomy is the first direction to take out.
    None for n_components 0 or fewer than two rows."""
    if len(real_residuals) > PCA_SAMPLE:
        sample = np.random.default_rng(seed).choice(len(real_residuals), PCA_SAMPLE, replace=False)
        real_residuals = real_residuals[np.sort(sample)]
    units = unit_residuals(real_residuals)
    n_components = min(n_components, len(units) - 1, units.shape[1])
    if n_components < 1:
        return None
    svd = TruncatedSVD(n_components, algorithm="randomized", random_state=seed).fit(units)
    return svd.components_.astype(np.float32)


def renumber(groups: np.ndarray) -> np.ndarray:
    """Groups numbered 0..G-1, largest first (ties by first appearance)."""
    ids, first, sizes = np.unique(groups, return_index=True, return_counts=True)
    order = ids[np.lexsort((first, -sizes))]
    mapping = np.empty(ids.max() + 1, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    return mapping[groups]


def merge_correlated(units: np.ndarray, groups: np.ndarray, merge_above: float) -> np.ndarray:
    """Join the most-correlated pair of groups while their fingerprints correlate above `merge_above`."""
    groups = renumber(groups)
    sums = fingerprints(units, groups, groups.max() + 1)
    alive = list(range(len(sums)))
    while len(alive) > 1:
        corr = correlations(sums[alive])
        np.fill_diagonal(corr, -np.inf)
        i, j = np.unravel_index(np.argmax(corr), corr.shape)
        if corr[i, j] <= merge_above:
            break
        keep, gone = alive[i], alive[j]
        sums[keep] += sums[gone]
        groups[groups == gone] = keep
        alive.remove(gone)
    return renumber(groups)


def image_scores(units: np.ndarray, groups: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Correlation of each image with each group's fingerprint: image · sum / |sum|; for its own group the sum
    leaves the image out (its own row: · gives its squared norm `norms`, 1 or 0 for a flat window's row; the
    squared length loses 2·own − it). Alone in its group, an image's leave-one-out fingerprint is empty: it
    correlates with nothing (0), not with the rounding noise of 0/0."""
    rows, n_groups = np.arange(len(units)), groups.max() + 1
    sums = fingerprints(units, groups, n_groups)
    # In the rows' float32: a float64 product would first copy every row to float64 (0.2–0.3 s a round on
    # 25,000 × 4,096, against 0.05 s).
    scores = (units @ sums.T.astype(units.dtype)).astype(np.float64)
    own = scores[rows, groups]
    lengths = np.linalg.norm(sums, axis=1)
    scores /= np.maximum(lengths, 1e-12)
    left_out = np.sqrt(np.maximum(lengths[groups] ** 2 - 2 * own + norms, 1e-12))
    alone = np.bincount(groups, minlength=n_groups)[groups] == 1
    scores[rows, groups] = np.where(alone, 0.0, (own - norms) / left_out)
    return scores


def reassign(units: np.ndarray, groups: np.ndarray, min_group: int, max_rounds: int = 20) -> np.ndarray:
    """Each image to the group whose leave-one-out fingerprint it correlates with most, until stable; then
    groups under `min_group` images are dissolved into the others the same way."""
    rows = np.arange(len(units))
    norms = np.einsum("ij,ij->i", units, units).astype(np.float64)  # 1, or 0 for a flat window's row
    for _ in range(max_rounds):
        scores = image_scores(units, groups, norms)
        sizes = np.bincount(groups, minlength=scores.shape[1])
        small = sizes < min_group
        if small.all():
            return np.zeros(len(units), dtype=np.int64)
        scores[:, small] = -np.inf
        moved = scores.argmax(axis=1)
        # A tie (a flat window's row correlates 0 with every group) keeps the image where it is: it settles.
        moved = np.where(scores[rows, moved] > scores[rows, groups], moved, groups)
        if np.array_equal(moved, groups) and not small.any():
            break
        groups = renumber(moved)
    return groups


# Rows the groups are learned from; the others are assigned to them. 25,000 unit residuals of 4,096 columns are
# 400 MB of float32; a generator needs about min_group × N / GROUP_SAMPLE images in a set of N to be found.
GROUP_SAMPLE = 25000
ASSIGN_ROWS = 8192  # rows assigned at a time: 128 MiB of float32 residuals


def generator_groups(residuals, merge_above: float = 0.45, min_group: int = 5, max_start: int = 24,
                     n_components: int = 32, seed: int = 0, content: np.ndarray | None = None) -> np.ndarray:
    """Generator group (0..G-1, largest first) of each row of `residuals` (N × D noise residuals: an array or
    an h5py dataset), with the `content` directions (content_directions) taken out first."""
    sample, units = sampled_units(residuals, seed, content)
    n = len(units)
    n_start = min(max_start, n // min_group)
    if n_start < 2:
        return np.zeros(len(residuals), dtype=np.int64)
    start = KMeans(n_start, n_init=3, random_state=seed).fit_predict(reduced(units, n_components, seed))
    groups = reassign(units, merge_correlated(units, start, merge_above), min_group)
    while True:  # reassigning sharpens the fingerprints: pieces of one generator may only now correlate enough
        merged = merge_correlated(units, groups, merge_above)
        if merged.max() == groups.max():
            return groups if sample is None else assigned(residuals, units, groups, content)
        groups = reassign(units, merged, min_group)


def fixed_groups(residuals, n_groups: int, n_components: int = 32, seed: int = 0,
                 content: np.ndarray | None = None) -> np.ndarray:
    """Exactly `n_groups` groups (the challenge's one generator per subset): k-means on the PCA of the
    residuals, then the same reassignment by fingerprint correlation."""
    sample, units = sampled_units(residuals, seed, content)
    if len(units) <= n_groups:
        return np.arange(len(units)) % max(n_groups, 1)
    start = KMeans(n_groups, n_init=10, random_state=seed).fit_predict(reduced(units, n_components, seed))
    groups = reassign(units, renumber(start), min_group=1)
    return groups if sample is None else assigned(residuals, units, groups, content)


def sampled_units(residuals, seed: int, content: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray]:
    """(sorted sample rows, or None for all rows; their unit residuals): at most GROUP_SAMPLE rows read."""
    if len(residuals) <= GROUP_SAMPLE:
        return None, unit_residuals(residuals[:], content)
    sample = np.sort(np.random.default_rng(seed).choice(len(residuals), GROUP_SAMPLE, replace=False))
    return sample, unit_residuals(residuals[sample], content)  # h5py reads increasing indices


def assigned(residuals, units: np.ndarray, groups: np.ndarray, content: np.ndarray | None) -> np.ndarray:
    """Every row of `residuals` in the group (found on the sampled `units`) whose fingerprint it correlates
    with most, read ASSIGN_ROWS rows at a time."""
    sums = unit_rows(fingerprints(units, groups, groups.max() + 1)).astype(np.float32)
    out = np.empty(len(residuals), dtype=np.int64)
    for start in range(0, len(residuals), ASSIGN_ROWS):
        block = unit_residuals(residuals[start:start + ASSIGN_ROWS], content)
        out[start:start + len(block)] = (block @ sums.T).argmax(axis=1)
    return renumber(out)
