"""Write files a user gets back atomically: to a temporary name beside the target, then rename into place.

A reader (or a rerun after a crash) sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import csv
import io
import os
import secrets
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it is removed.

    The temporary file gets a random name and is created with O_EXCL, so nobody can predict it or plant a
    symlink there for the writer to follow (like mkstemp, but with the mode a plain open() gives, not 0600).
    A write killed outright (SIGKILL, power loss) leaves a stray `.NAME.*.tmp` beside the target; nothing
    reads it, and it is safe to delete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
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
