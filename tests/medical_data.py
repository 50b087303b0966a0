"""DICOM and NIfTI files made by the tests themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dicom(path: Path, stored: np.ndarray, intercept=-1024.0, slope=1.0, window=(40.0, 400.0),
                photometric="MONOCHROME2", syntax=None, pixel_data=True) -> Path:
    """A CT image (int16 stored values, HU = stored × slope + intercept); 3-D `stored` makes a multi-frame file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    if stored.ndim == 3:
        ds.NumberOfFrames = stored.shape[0]
    ds.RescaleIntercept, ds.RescaleSlope = intercept, slope
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if pixel_data and syntax:  # a compressed syntax: one fragment per frame, here bytes no codec can read
        from pydicom.encaps import encapsulate
        ds.PixelData = encapsulate([b"not a codestream" * 4])
    elif pixel_data:
        ds.PixelData = stored.astype("<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_nifti(path: Path, volume: np.ndarray) -> Path:
    import nibabel

    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(volume.astype(np.float32), np.eye(4)), str(path))
    return path
