"""Saved heads: round trip, and refusals before a tampered or mismatched pickle is ever loaded."""
import json
from contextlib import contextmanager

import joblib
import numpy as np
import pytest

from ganprov.core.digest import sha256_of
from ganprov.models import HeadError, LogRegHead, persistence
from ganprov.models.persistence import load_head, save_head

PROVENANCE = {"checkpoint_sha256": "ab" * 32, "image_size": 224, "normalisation": '{"mean": [0.485]}'}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 512))
    y = np.repeat([1, 2, 3], 10)
    return (means[y - 1] + rng.normal(scale=0.5, size=(30, 512))).astype(np.float32), y


@pytest.fixture
def saved(tmp_path, data):
    head = LogRegHead(pca=4).fit(*data)
    path = save_head(head, tmp_path / "heads" / "logreg.joblib",
                     {"head": "logreg", "fit_on": "generated", "provenance": PROVENANCE})
    return head, path


def test_round_trip_predicts_the_same(saved, data):
    head, path = saved
    loaded, sidecar = load_head(path, provenance=dict(PROVENANCE, image_size=np.int64(224)))
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), head.predict_proba(data[0]))
    assert sidecar["params"] == head.get_params()
    assert sidecar["info"]["fit_on"] == "generated"
    assert sidecar["sha256"] == sha256_of(path)
    assert set(sidecar["versions"]) >= {"python", "numpy", "sklearn", "joblib"}


def test_tampered_file_is_refused_before_unpickling(saved, monkeypatch):
    _, path = saved
    expected = sha256_of(path)
    with open(path, "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("joblib.load ran on a tampered file"))
    with pytest.raises(HeadError) as refused:
        load_head(path)
    message = str(refused.value)
    assert str(path) in message and expected in message and sha256_of(path) in message


def test_provenance_mismatch_names_the_key(saved):
    _, path = saved
    with pytest.raises(HeadError, match="checkpoint_sha256") as refused:
        load_head(path, provenance=dict(PROVENANCE, checkpoint_sha256="cd" * 32))
    assert "image_size" not in str(refused.value) and "cd" * 32 in str(refused.value)


def test_missing_sidecar_is_refused(saved):
    _, path = saved
    path.with_suffix(".json").unlink()
    with pytest.raises(HeadError, match="sidecar"):
        load_head(path)


def test_write_is_atomic(saved, data, monkeypatch):
    _, path = saved
    assert sorted(p.name for p in path.parent.iterdir()) == ["logreg.joblib", "logreg.json"]
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(joblib, "dump", crash)
    with pytest.raises(OSError):
        save_head(LogRegHead().fit(*data), path, {"head": "logreg"})
    # The old head and sidecar stand untouched, with no temporary file beside them.
    assert sorted(p.name for p in path.parent.iterdir()) == ["logreg.joblib", "logreg.json"]
    assert path.read_bytes() == before
    assert json.loads(path.with_suffix(".json").read_text())["sha256"] == sha256_of(path)


def test_a_concurrent_fit_landing_before_the_sidecar_is_refused_not_vouched_for(tmp_path, data, monkeypatch):
    """Two fits of one head at once: the other's pickle may replace this one's between its rename and its
    sidecar. The sidecar must vouch for the bytes this fit wrote, so the pair is refused, not trusted."""
    path = tmp_path / "logreg.joblib"
    other = LogRegHead(pca=2).fit(*data)
    rename = persistence.atomic_path

    @contextmanager
    def the_other_fit_lands_after_the_rename(target):
        with rename(target) as temporary:
            yield temporary
        joblib.dump(other, target)
    monkeypatch.setattr(persistence, "atomic_path", the_other_fit_lands_after_the_rename)
    save_head(LogRegHead(pca=4).fit(*data), path, {"head": "logreg", "provenance": PROVENANCE})
    with pytest.raises(HeadError, match="sha256"):
        load_head(path)
