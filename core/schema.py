"""What both stages agree on: the embeddings file's groups and width, the provenance that ties files
together, and the regime rule. No torch here."""
from __future__ import annotations

GROUPS = ("real", "generated", "unknown")  # one HDF5 group per data split, as in core/layout.py
EMBEDDING_DIM = 512  # ResNet-18's penultimate features, after global average pooling
FIT_ON = ("real", "generated", "both")  # labelled rows a head can be fitted on
# Provenance that decides whether two embedding files (or a head and a file) belong together.
MATCHING_KEYS = ("checkpoint_sha256", "image_size", "normalisation")
# What else an embeddings file must share with the current code before `embed` resumes or keeps it.
SAME_FILE_KEYS = MATCHING_KEYS + ("residual",)


def resized(group: str) -> str:
    """The group of `group`'s images resized to the unknown images' size first (features/channel.py)."""
    return group + "_resized"


def regime(groups) -> str:
    """"challenge" when labelled generated images exist, "audit" when only real subsets do."""
    return "challenge" if "generated" in groups else "audit"


def validation_group(groups) -> str:
    """Where held-out rows for validation come from: the generators' output when there is any."""
    return "generated" if "generated" in groups else "real"
