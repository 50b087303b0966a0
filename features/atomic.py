"""Write files a user gets back atomically: to a temporary name beside the target, then rename into place.

A reader (or a rerun after a crash) sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import csv
import io
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # One fixed temporary name per target: what a killed write left behind is overwritten by the next one.
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def write_csv(target: str | os.PathLike, rows, header: list[str] | None = None) -> None:
    """A CSV file, written atomically; no header line when `header` is None (the challenge's format)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    write_text(target, buffer.getvalue())
