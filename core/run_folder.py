"""A run folder holds everything one experiment produces; this is its map. No torch here."""
from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

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
    report = property(lambda self: self.path / "report.html")
    submission = property(lambda self: self.path / "submission.csv")

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
