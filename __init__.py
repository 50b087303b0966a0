"""ganprov: trace GAN-generated medical images back to the real subset their generator was trained on.

Packages: `core` (torch-free base: errors, files, layout, settings, run folder, schema), `features` (stage 1:
images → embeddings), `models` (stage 2: heads on embeddings, no torch), `pipeline` (the `ganprov` CLI).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ganprov")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
