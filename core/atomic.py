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

from .disk import full_disk_said
from .errors import GanprovError

# Text cells a spreadsheet runs as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@")


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
    try:
        with full_disk_said(target.parent, target.name):
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            yield temporary
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def output_file(path: str | os.PathLike, suffix: str, option: str, new_folder_ok: bool = False) -> Path:
    """`path`, given as `option`, checked before anything is written to it: it must end in `suffix` (a slip
    cannot replace a checkpoint or an image), must not be a folder, and its folder must exist (a typo is not
    created), unless `new_folder_ok` (a folder of ganprov's own). GanprovError in one line otherwise."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        reason = f"must end in {suffix}"
    elif path.is_dir():
        reason = "is a folder"
    elif not new_folder_ok and not path.parent.is_dir():
        reason = "is in a folder that does not exist"
    else:
        return path
    raise GanprovError(f"{option} {path} {reason}")


def formula_safe(cell):
    """A text cell that starts like a formula, prefixed with ' so a spreadsheet shows it instead of running it."""
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell


class CsvWriter:
    """csv.writer with '\\n' line ends whose rows read back exactly as written.

    csv quotes a field holding a character of its line terminator, so with '\\n' a lone '\\r' goes out bare
    and a reader ends the row there: rows holding one are written fully quoted. `escape_formulas` (see
    formula_safe) is for files people open; files a program matches by file name keep names verbatim.
    """

    def __init__(self, handle, escape_formulas: bool = True):
        self.plain = csv.writer(handle, lineterminator="\n")
        self.quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
        self.escape_formulas = escape_formulas

    def writerow(self, row) -> None:
        row = [formula_safe(cell) for cell in row] if self.escape_formulas else list(row)
        carriage_return = any(isinstance(cell, str) and "\r" in cell for cell in row)
        (self.quoted if carriage_return else self.plain).writerow(row)

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)


def write_csv(target: str | os.PathLike, rows, header: list[str] | None = None, escape_formulas: bool = True) -> None:
    """A CSV file, written atomically; no header line when `header` is None (the challenge's format)."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer, escape_formulas)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    write_text(target, buffer.getvalue())
