#!/usr/bin/env python3
"""A copy of a benchmark whose real subsets are CT DICOM files or NIfTI volumes, as hospitals hold them, and
whose generated images stay PNG. Grey level g becomes HU = 8 g - 1024 (16-bit, RescaleIntercept -1024), so
the window centre -4, width 2040 gives back the PNG's grey levels exactly:

  python benchmarks/medical_copy.py BENCH OUT --format dicom    (one DICOM file per slice)
  python benchmarks/medical_copy.py BENCH OUT --format nifti    (one volume per subset, slices along axis 2)
  ganprov run --data OUT --run RUN --window=-4,2040 ...
"""
import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from medical_data import write_dicom, write_nifti  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--format", choices=("dicom", "nifti"), required=True)
    a = ap.parse_args()
    for folder in ("generated", "generated_unknown"):
        if (a.bench / folder).is_dir():
            shutil.copytree(a.bench / folder, a.out / folder, dirs_exist_ok=True)
    for subset in sorted((a.bench / "real").iterdir()):
        files = sorted(subset.glob("*.png"))
        grey = np.stack([np.asarray(Image.open(f).convert("L"), dtype=np.int16) for f in files])
        if a.format == "dicom":
            for f, g in zip(files, grey):
                write_dicom(a.out / "real" / subset.name / f"{f.stem}.dcm", g * 8, window=(-4.0, 2040.0))
        else:  # HU values in the volume; slices along the last axis, in file order
            write_nifti(a.out / "real" / subset.name / f"{subset.name}.nii.gz", np.moveaxis(grey * 8.0 - 1024, 0, -1))
        print(f"{subset.name}: {len(files)} slices as {a.format}")


if __name__ == "__main__":
    main()
