"""Running out of disk space, said in one sentence instead of an HDF5 or zip-writer traceback.

A write that fails half-way on a full disk leaves ganprov's files resumable (partial files count only what
they flushed; atomic writes leave the old file), so the message asks for space and the same command again.
"""
from __future__ import annotations

import errno
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import GanprovError


class OutOfSpace(GanprovError):
    """Not enough free disk space for what a command writes."""


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def require_space(folder: Path, needed: int, what: str) -> None:
    """Refuse up front when `folder` cannot hold `needed` more bytes: on a nearly full disk HDF5 can crash
    the process (a segfault) instead of raising."""
    free = free_bytes(folder)
    if free < needed:
        raise OutOfSpace(f"no space left on device for {what}: about {mib(needed)} needed, {mib(free)} free "
                         f"in {folder}; free some space and run it again: finished work is kept")


def out_of_space(error: BaseException, folder: Path, margin: int = 1 << 20) -> bool:
    """Whether `error` (OSError, or the RuntimeError of h5py or torch's zip writer) came from a full disk."""
    text = str(error)
    return (getattr(error, "errno", None) == errno.ENOSPC or "No space left" in text or "errno = 28" in text
            or free_bytes(folder) < margin)


@contextmanager
def full_disk_said(folder: Path, what: str):
    """Within it, an OSError or RuntimeError a full disk caused (torch's zip writer says "unexpected pos",
    HDF5 "errno = 28") becomes OutOfSpace naming `what`; any other error passes unchanged."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        if not out_of_space(error, folder):
            raise
        raise OutOfSpace(f"no space left on device while writing {what} ({mib(free_bytes(folder))} free in "
                         f"{folder}); free some space and run it again: finished work is kept") from None


def mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"
