"""Medical files as images: DICOM (modality LUT, VOI window, MONOCHROME1, several frames per file) and NIfTI
volumes (sliced along one axis). Hospitals hold real data this way; generators usually emit PNGs.

Every frame of a DICOM file and every slice of a NIfTI volume is one item of the layout, named `FILE#N` (a
single-frame DICOM keeps its plain name). Each is windowed to 8 bits the way the generated images were made:
`window="file"` uses the DICOM's own VOI window (else the volume's 0.5-99.5 percentile range), a preset name
or `"CENTER,WIDTH"` in the file's units (Hounsfield units for CT) sets it explicitly. pydicom and nibabel are
imported only when such a file is met. No torch here.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Common CT windows (center, width) in Hounsfield units.
PRESETS = {"lung": (-600.0, 1500.0), "mediastinum": (50.0, 350.0), "soft-tissue": (40.0, 400.0),
           "bone": (400.0, 1800.0), "brain": (40.0, 80.0)}
ITEM = re.compile(r"^(.*)#(\d+)$")


@dataclass(frozen=True)
class Reading:
    """How medical files become 8-bit images: the window, and the axis NIfTI volumes are sliced along."""
    window: str = "file"
    slice_axis: int = 2

    @classmethod
    def of(cls, settings: dict) -> Reading:
        """The reading a run was trained with (its settings; runs from before DICOM support read the default)."""
        return cls(settings.get("window", "file"), int(settings.get("slice_axis", 2)))


def parse_window(window: str) -> tuple[float, float] | None:
    """(center, width) for a preset or "C,W"; None for "file". ValueError with the accepted forms otherwise."""
    if window == "file":
        return None
    if window in PRESETS:
        return PRESETS[window]
    try:
        center, width = (float(part) for part in window.split(","))
    except ValueError:
        raise ValueError(f"window must be file, {', '.join(PRESETS)} or CENTER,WIDTH, not {window!r}") from None
    if not (np.isfinite(center) and np.isfinite(width) and width > 0):
        raise ValueError(f"window {window!r} needs a finite center and a width above 0")
    return center, width


def is_dicom(name: str) -> bool:
    return name.lower().endswith(DICOM_SUFFIXES)


def is_nifti(name: str) -> bool:
    return name.lower().endswith(NIFTI_SUFFIXES)


def split_item(path: str | Path) -> tuple[str, int | None]:
    """("FILE", N) for an item `FILE#N` of a medical file, (path, None) for anything else."""
    match = ITEM.match(str(path))
    if match and (is_dicom(match[1]) or is_nifti(match[1])):
        return match[1], int(match[2])
    return str(path), None


def item_order(path: str) -> tuple[str, int]:
    """Sort key: by file, then frames and slices in numeric order (FILE#2 before FILE#10)."""
    file, index = split_item(path)
    return file, -1 if index is None else index


def items(file: Path, name: str, slice_axis: int) -> list[str]:
    """The items a file holds, named after `name`: itself, or NAME#0.. for a volume or a multi-frame DICOM.
    A header that cannot be read leaves the file as one item; decoding it then says why."""
    try:
        if is_nifti(name):
            count = nifti(file).shape[slice_axis]
        elif is_dicom(name):
            import pydicom
            header = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["NumberOfFrames"])
            count = int(header.get("NumberOfFrames", 1) or 1)
            if count == 1:
                return [name]
        else:
            return [name]
    except Exception:  # pydicom's and nibabel's errors derive from Exception only
        return [name]
    return [f"{name}#{i}" for i in range(count)]


def read(path: str | Path, reading: Reading) -> np.ndarray:
    """One item as a uint8 array (H×W, or H×W×3 for colour DICOM); ValueError says what is wrong."""
    file, index = split_item(path)
    if is_nifti(file):
        volume, default = nifti_data(file)
        if index is None or not 0 <= index < volume.shape[reading.slice_axis]:
            raise ValueError(f"no slice {index} along axis {reading.slice_axis} of a volume shaped {volume.shape}")
        return to_8bit(np.take(volume, index, axis=reading.slice_axis), parse_window(reading.window) or default)
    return dicom_frame(file, index or 0, reading)


def dicom_frame(file: str, index: int, reading: Reading) -> np.ndarray:
    import pydicom

    try:
        dataset = pydicom.dcmread(file)
    except Exception as error:  # InvalidDicomError and friends derive from Exception only
        raise ValueError(f"not a readable DICOM file ({error})") from None
    if "PixelData" not in dataset:
        raise ValueError("DICOM file without pixel data")
    try:
        every = dataset.pixel_array
    except Exception as error:  # a compressed transfer syntax without its decoder, a damaged stream
        syntax = dataset.file_meta.get("TransferSyntaxUID", "?")
        raise ValueError(f"DICOM pixel data cannot be decoded (transfer syntax {syntax}): {error}") from None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1 and not 0 <= index < frames:
        raise ValueError(f"no frame {index} in a DICOM file of {frames}")
    pixels = every[index] if frames > 1 else every
    if dataset.get("SamplesPerPixel", 1) == 3:  # colour (ultrasound, secondary captures): as stored
        return np.asarray(pixels, dtype=np.uint8)
    values = modality_values(dataset, pixels, index)
    voi = frame_item(dataset, index, "FrameVOILUTSequence")
    window = parse_window(reading.window) or file_window(dataset if voi is None else voi) or robust_window(
        values if frames == 1 else np.stack([modality_values(dataset, f, i) for i, f in enumerate(every)]))
    grey = to_8bit(values, window)
    return 255 - grey if dataset.get("PhotometricInterpretation") == "MONOCHROME1" else grey


def frame_item(dataset, index: int, sequence: str):
    """An enhanced multi-frame file's `sequence` item for frame `index` (its per-frame functional group, else the
    shared one), where such files keep rescale and window instead of the top level; None elsewhere."""
    for groups, row in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        items = dataset.get(groups)
        if items is not None and row < len(items) and sequence in items[row] and len(items[row][sequence].value):
            return items[row][sequence].value[0]
    return None


def modality_values(dataset, pixels: np.ndarray, index: int) -> np.ndarray:
    """One frame in the modality's units (Hounsfield units for CT): RescaleSlope/Intercept, from the frame's
    functional groups in an enhanced multi-frame file."""
    from pydicom.pixels import apply_modality_lut

    transform = frame_item(dataset, index, "PixelValueTransformationSequence")
    if transform is not None and "RescaleSlope" in transform and "RescaleIntercept" in transform:
        return np.asarray(pixels, dtype=np.float32) * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
    return np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float32)


def file_window(dataset) -> tuple[float, float] | None:
    """The first VOI window the DICOM file carries, if any."""
    from pydicom.multival import MultiValue

    if "WindowCenter" not in dataset or "WindowWidth" not in dataset:
        return None
    center, width = (float(v[0] if isinstance(v, MultiValue) else v) for v in (dataset.WindowCenter, dataset.WindowWidth))
    return (center, width) if width > 0 else None


def robust_window(values: np.ndarray) -> tuple[float, float]:
    """The 0.5-99.5 percentile range: a few extreme voxels (metal, air) do not flatten the rest."""
    low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    return (low + high) / 2, max(high - low, 1e-6)


def to_8bit(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    center, width = window
    scaled = (np.asarray(values, dtype=np.float32) - (center - width / 2)) / width
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8)


def nifti(file: str | Path):
    import nibabel
    return nibabel.load(str(file))


@functools.lru_cache(maxsize=1)
def nifti_data(file: str) -> tuple[np.ndarray, tuple[float, float]]:
    """A volume's voxels (scaled) and its robust window, kept for the next slice: items of one volume come in
    order, and a .nii.gz can only be decompressed whole."""
    try:
        volume = np.asarray(nifti(file).get_fdata(dtype=np.float32))
    except Exception as error:  # nibabel's ImageFileError, a truncated gzip stream, ...
        raise ValueError(f"not a readable NIfTI volume ({error})") from None
    if volume.ndim != 3:
        raise ValueError(f"a NIfTI volume must be 3-D, this one is shaped {volume.shape}")
    return volume, robust_window(volume)
