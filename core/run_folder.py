"""A run folder holds everything one experiment produces; this is its only map. No torch here.

Every path in a run folder is named here and nowhere else, with who writes it and who reads it:

    config.toml                  train, fit (sections)          → every step, report (settings table)
    checkpoint.pt, last.pt       train                          → embed, score, report (Grad-CAM); train --resume
    train_log.csv                train                          → report
    candidates/real, …           train --train-on auto          → train (the better is copied up)
    embeddings.h5                embed                          → fit, predict, evaluate, report, score
    embeddings-shards/           embed under torchrun           → embed (rank 0 combines them)
    skipped.csv                  embed                          → the user
    heads/NAME.joblib, .json     fit                            → predict, evaluate, report, score
    heads/novelty/FIT_ON.joblib  predict --abstain              → predict --abstain
    predictions/NAME.csv         predict                        → evaluate, run (→ submission.csv)
    predictions/NAME.proba.csv   predict                        → evaluate, report
    predictions/NAME.groups.json predict (fingerprint head)     → evaluate, report
    evaluation/metrics.json      evaluate                       → report
    evaluation/*.png             evaluate                       → report
    submission.csv               run                            → the challenge
    report.html                  report, run                    → the reviewer
    scores/FOLDER.csv, .h5       score                          → the user (with a second opinion: the
                                                                  agreement; FOLDER.first.csv and
                                                                  FOLDER.second-opinion.csv, .h5, each backbone's)
    second-opinion/              run --second-opinion           → run (agree → submission.csv); a run folder
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import tomllib

from .atomic import write_text


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config = property(lambda self: self.path / "config.toml")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")  # best by validation accuracy
    last = property(lambda self: self.path / "last.pt")  # end of the latest epoch, for --resume
    train_log = property(lambda self: self.path / "train_log.csv")
    embeddings = property(lambda self: self.path / "embeddings.h5")
    skipped = property(lambda self: self.path / "skipped.csv")
    heads = property(lambda self: self.path / "heads")
    predictions = property(lambda self: self.path / "predictions")
    evaluation = property(lambda self: self.path / "evaluation")
    metrics = property(lambda self: self.evaluation / "metrics.json")
    pca_plot = property(lambda self: self.evaluation / "pca.png")
    report = property(lambda self: self.path / "report.html")
    submission = property(lambda self: self.path / "submission.csv")
    scores = property(lambda self: self.path / "scores")

    def candidate(self, train_on: str) -> RunFolder:
        """The run `train --train-on auto` trains on `train_on` images, before the better is copied up."""
        return RunFolder(self.path / "candidates" / train_on)

    @property
    def second_opinion(self) -> RunFolder:
        """The run `run` trains with the other --augment setting in the audit regime (pipeline/agree.py)."""
        return RunFolder(self.path / "second-opinion")

    def head(self, name: str) -> Path:
        return self.heads / f"{name}.joblib"

    def novelty_gate(self, fit_on: str) -> Path:
        """In a folder of its own: every .joblib file directly in heads/ is a head."""
        return self.heads / "novelty" / f"{fit_on}.joblib"

    def prediction(self, head: str) -> Path:
        """The challenge's header-less filename,label CSV of one head."""
        return self.predictions / f"{head}.csv"

    def probabilities(self, head: str) -> Path:
        return self.predictions / f"{head}.proba.csv"

    def groups(self, head: str) -> Path:
        return self.predictions / f"{head}.groups.json"

    def confusion_plot(self, head: str, split: str) -> Path:
        return self.evaluation / f"confusion_{head}_{split}.png"

    def read_config(self) -> dict:
        if not self.config.is_file():
            return {}
        with open(self.config, "rb") as handle:
            return tomllib.load(handle)

    def write_config(self, section: str, values: dict) -> None:
        """Replace one [section] of config.toml, keeping the others."""
        config = self.read_config()
        config[section] = values
        write_text(self.config, to_toml(config))


def to_toml(config: dict[str, dict]) -> str:
    """Tables of scalars and lists: all config.toml needs. JSON strings and lists are TOML ones, given the
    characters as they are (ensure_ascii would write an emoji as a surrogate pair, which TOML refuses) and DEL,
    the one control character JSON leaves raw, escaped."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                continue  # TOML has no null; absent means unset
            text = (str(value).lower() if isinstance(value, bool)
                    else json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f"))
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)
