"""Save and load fitted heads with a JSON sidecar that vouches for the pickle.

A .joblib file is a pickle, and unpickling runs code, so `load_head` checks the file's sha256 against its
sidecar before unpickling, and refuses a head fit on embeddings from another checkpoint or preprocessing.
The pickle is written first and the sidecar last: a crash in between (or an overwrite, or a concurrent fit of
the same head) leaves a pickle the sidecar does not vouch for, which `load_head` refuses.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import joblib
import numpy as np
import scipy
import sklearn

from ganprov.core.atomic import atomic_path, write_text
from ganprov.core.digest import sha256_of
from ganprov.core.schema import MATCHING_KEYS

from .errors import HeadError


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def _jsonable(value):
    """numpy scalars and arrays as plain numbers and lists; anything else as its text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _as_text(value) -> str:
    """Provenance values compared as text, numpy or not: np.int64(224) and 224 read the same."""
    return str(_jsonable(value))


def saved_params(head) -> dict:
    """`head.get_params()` as its sidecar holds them (after a JSON round trip)."""
    return json.loads(json.dumps(head.get_params(), default=_jsonable))


def save_head(head, path: str | os.PathLike, info: dict) -> Path:
    """Write `head` to `path` (joblib) and its sidecar `path.with_suffix('.json')`, both atomically."""
    path = Path(path)
    with atomic_path(path) as temporary:
        joblib.dump(head, temporary)
        # The bytes this call wrote, hashed before the rename: hashed after it, they could be a concurrent
        # fit's, and the sidecar would vouch for that head's pickle with this head's information.
        sha256 = sha256_of(temporary)
    sidecar = {
        "class": f"{type(head).__module__}.{type(head).__qualname__}",
        "params": saved_params(head),  # what head_is_current compares today's parameters with
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__, "joblib": joblib.__version__},
        "info": info,
        "sha256": sha256,
    }
    write_text(sidecar_path(path), json.dumps(sidecar, indent=2, default=_jsonable) + "\n")
    return path


def load_head(path: str | os.PathLike, provenance: dict | None = None, keys=MATCHING_KEYS):
    """(head, sidecar) from `path`, after checking the file's sha256 and, if given, that `provenance`
    (of the embeddings about to be scored) matches the head's on `keys`. HeadError otherwise."""
    path = Path(path)
    sidecar_file = sidecar_path(path)
    if not path.is_file():
        raise HeadError(f"no saved head at {path}")
    if not sidecar_file.is_file():
        raise HeadError(f"{path} has no sidecar {sidecar_file.name}; refusing to unpickle a file nothing vouches "
                        "for. Fit the head again.")
    sidecar = read_sidecar(sidecar_file)
    found = sha256_of(path)
    if found != sidecar.get("sha256"):
        raise HeadError(f"{path} has sha256 {found} but its sidecar {sidecar_file.name} expects "
                        f"{sidecar.get('sha256')}; the file changed after it was saved. Refusing to unpickle it.")
    if provenance is not None:
        saved = sidecar.get("info", {}).get("provenance", {})
        differing = [f"{key}: head {saved.get(key)!r}, embeddings {provenance.get(key)!r}" for key in keys
                     if _as_text(saved.get(key)) != _as_text(provenance.get(key))]
        if differing:
            raise HeadError(f"{path} was fit on embeddings with another provenance; differing keys: "
                            + "; ".join(differing) + ". Fit the head again on these embeddings.")
    return joblib.load(path), sidecar


SIDECAR_KEYS = ("class", "params", "versions", "info", "sha256")  # what save_head writes


def read_sidecar(path: Path) -> dict:
    """A head's sidecar; HeadError, naming it, when it is not JSON or lacks what save_head writes."""
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # invalid JSON or UTF-8
        raise HeadError(f"{path} is not valid JSON ({error}); fit the head again") from None
    missing = [key for key in SIDECAR_KEYS if key not in sidecar] if isinstance(sidecar, dict) else list(SIDECAR_KEYS)
    if missing or not isinstance(sidecar["info"], dict):
        raise HeadError(f"{path} is not a head's sidecar (no {', '.join(missing) or 'info object'}); fit the head again")
    return sidecar
