"""sha256 of a file, streamed: provenance of checkpoints and the guard in front of every unpickling."""
from __future__ import annotations

import hashlib
import os


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
