"""DICOM and NIfTI inputs: windowing, frames and slices as images, bad files skipped with their reason."""
import numpy as np
import pytest
from medical_data import write_dicom, write_nifti
from tiny_data import make_data

from ganprov.core.layout import discover, list_images
from ganprov.core.settings import SettingsError, TrainSettings
from ganprov.core.volumes import Reading
from ganprov.features.images import BadImage, decode

HU = np.array([[-1024, -160, 40], [240, 1000, 40]])  # stored = HU + 1024 with the default intercept


def pixels(path, reading=Reading()):
    return np.asarray(decode(path, reading))


def test_a_ct_dicom_is_rescaled_to_hounsfield_units_and_windowed_by_its_own_window(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", HU + 1024)  # window 40/400: -160 → 0, 40 → middle, 240 → 255
    assert pixels(path).tolist() == [[0, 0, 128], [255, 255, 128]]


def test_an_explicit_window_or_preset_overrides_the_files(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", HU + 1024)
    assert pixels(path, Reading("0,2048")).tolist() == [[0, 108, 132], [157, 252, 132]]  # -1024 … 1024 HU
    assert np.array_equal(pixels(path, Reading("soft-tissue")), pixels(path))  # the preset is 40/400 too
    lung = pixels(path, Reading("lung"))  # -600 ± 750: air is dark, soft tissue bright
    assert lung[0, 0] == 55 and lung[0, 2] == 236


def test_monochrome1_is_inverted_and_a_file_without_window_uses_its_range(tmp_path):
    plain = pixels(write_dicom(tmp_path / "a.dcm", HU + 1024, window=None))
    inverted = pixels(write_dicom(tmp_path / "b.dcm", HU + 1024, window=None, photometric="MONOCHROME1"))
    assert np.array_equal(inverted, 255 - plain)
    assert plain.min() == 0 and plain.max() == 255 and plain[0, 1] < plain[0, 2] < plain[1, 0]


def test_every_frame_of_a_multiframe_dicom_is_an_image(tmp_path):
    frames = np.stack([np.full((4, 4), 1024 + 40 + 100 * k) for k in range(3)])  # 40, 140, 240 HU
    write_dicom(tmp_path / "gen" / "cine.dcm", frames)
    items = list_images(tmp_path / "gen", tmp_path)
    assert items == ["gen/cine.dcm#0", "gen/cine.dcm#1", "gen/cine.dcm#2"]
    assert [int(pixels(tmp_path / item)[0, 0]) for item in items] == [128, 191, 255]


def test_an_enhanced_multiframe_dicom_is_rescaled_and_windowed_by_its_functional_groups(tmp_path):
    """Enhanced CT keeps RescaleSlope/Intercept and the VOI window per frame or shared, not at the top level."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    frames = np.stack([HU, HU[::-1]])
    path = write_dicom(tmp_path / "enhanced.dcm", frames + 2048, window=None)  # stored with intercept -2048
    ds = pydicom.dcmread(path)
    del ds.RescaleIntercept, ds.RescaleSlope

    def item(**values):
        entry = Dataset()
        for key, value in values.items():
            setattr(entry, key, value)
        return entry
    shared = item(PixelValueTransformationSequence=Sequence([item(RescaleIntercept=-2048.0, RescaleSlope=1.0)]))
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [item(FrameVOILUTSequence=Sequence([item(WindowCenter=40.0, WindowWidth=400.0)])) for _ in frames])
    ds.save_as(path, enforce_file_format=True)
    classic = [pixels(write_dicom(tmp_path / f"classic{i}.dcm", frame + 1024)) for i, frame in enumerate(frames)]
    for i, expected in enumerate(classic):  # the same HU and window 40/400 as the classic files
        assert pixels(tmp_path / f"enhanced.dcm#{i}").tolist() == expected.tolist()


def test_a_multiframe_dicom_without_a_window_is_windowed_over_all_its_frames(tmp_path):
    frames = np.stack([np.full((4, 4), 1024 + 40 + 100 * k) for k in range(3)])  # 40, 140, 240 HU
    write_dicom(tmp_path / "cine.dcm", frames, window=None)
    levels = [int(pixels(tmp_path / f"cine.dcm#{i}")[0, 0]) for i in range(3)]
    assert levels[0] < levels[1] < levels[2]  # one window for the file: frames keep their order


@pytest.mark.parametrize("axis, count", [(0, 5), (1, 6), (2, 7)])
def test_a_nifti_volume_is_one_image_per_slice_along_the_chosen_axis(tmp_path, axis, count):
    volume = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    write_nifti(tmp_path / "vols" / "head.nii.gz", volume)
    items = list_images(tmp_path / "vols", tmp_path, slice_axis=axis)
    assert items == [f"vols/head.nii.gz#{i}" for i in range(count)]
    window = Reading(f"{volume.mean()},{np.ptp(volume)}", axis)  # the whole range, linearly
    first, last = pixels(tmp_path / items[0], window), pixels(tmp_path / items[-1], window)
    assert first.shape == np.take(volume, 0, axis=axis).shape and first.mean() < last.mean()


def test_bad_medical_files_are_skipped_with_their_reason(tmp_path):
    from pydicom.uid import JPEG2000Lossless

    cases = {write_dicom(tmp_path / "empty.dcm", HU, pixel_data=False): "without pixel data",
             write_dicom(tmp_path / "j2k.dcm", HU, syntax=JPEG2000Lossless): "cannot be decoded",
             tmp_path / "junk.dcm": "not a readable DICOM file",
             tmp_path / "junk.nii.gz": "not a readable NIfTI volume"}
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 200)
    (tmp_path / "junk.nii.gz").write_bytes(b"not gzip")
    for path, reason in cases.items():
        with pytest.raises(BadImage, match=reason):
            decode(path)


def test_real_subsets_as_dicom_and_nifti_beside_generated_pngs(tmp_path):
    data = make_data(tmp_path / "data", subsets=(1, 2), per_subset=2, generated="gen_t")
    write_dicom(data / "real/t1/series.dcm", np.stack([HU + 1024] * 2))
    write_nifti(data / "real/t2/vol.nii", np.zeros((3, 3, 4)))
    layout = discover(data, slice_axis=2)
    real = dict(zip(layout.splits["real"].paths, layout.splits["real"].labels))
    assert [p for p, label in real.items() if "#" in p] == ["real/t1/series.dcm#0", "real/t1/series.dcm#1",
                                                              *(f"real/t2/vol.nii#{i}" for i in range(4))]
    assert real["real/t2/vol.nii#3"] == 2 and layout.splits["generated"].paths[0].endswith(".png")


def test_window_and_axis_are_checked_like_every_setting():
    assert TrainSettings(data="", window="-600,1500", slice_axis=0).reading == Reading("-600,1500", 0)
    for bad in ({"window": "wide"}, {"window": "40,0"}, {"window": "nan,400"}, {"slice_axis": 3}):
        with pytest.raises(SettingsError):
            TrainSettings(data="", **bad)


def test_run_and_score_read_dicom_and_nifti_with_the_training_window(tmp_path):
    import h5py

    from ganprov.core.residual_codec import StoredResiduals
    from ganprov.features.residual import noise_residual
    from ganprov.pipeline.cli import main

    data = make_data(tmp_path / "data", subsets=(1, 2), per_subset=3, generated=None, unknown=4)
    rng = np.random.default_rng(0)
    write_dicom(data / "real/t1/series.dcm", rng.integers(900, 1200, (3, 32, 32)))  # three frames
    write_nifti(data / "real/t2/vol.nii.gz", rng.normal(50, 20, (3, 32, 32)))  # three slices along axis 0
    run = tmp_path / "run"
    # Neither the window nor the axis a default: the files' own window is 40/400, NIfTI slices along axis 2.
    assert main(["run", "--data", str(data), "--run", str(run), "--weights", "none", "--epochs", "1",
                 "--image-size", "32", "--workers", "0", "--window", "lung", "--slice-axis", "0",
                 "--no-gradcam"]) == 0
    with h5py.File(run / "embeddings.h5", "r") as handle:
        paths = [p.decode() for p in handle["real/paths"][:]]
    assert {"real/t1/series.dcm#2", "real/t2/vol.nii.gz#2"} <= set(paths) and len(paths) == 3 + 3 + 3 + 3
    assert "lung" in (run / "report.html").read_text()  # the report states the window
    batch = tmp_path / "batch"
    write_dicom(batch / "a.dcm", rng.integers(900, 1200, (2, 32, 32)))
    write_nifti(batch / "b.nii.gz", rng.normal(50, 20, (2, 32, 32)))
    out = tmp_path / "scores.csv"
    assert main(["score", "--run", str(run), "--head", "logreg", "--images", str(batch), "--out", str(out),
                 "--workers", "0"]) == 0
    names = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert names == ["a.dcm#0", "a.dcm#1", "b.nii.gz#0", "b.nii.gz#1"]  # the checkpoint's axis, not 32 slices
    with h5py.File(out.with_suffix(".h5"), "r") as handle:  # each frame decoded with the checkpoint's window
        stored = StoredResiduals(handle["images"])[0:1][0]
    lung, own = (noise_residual(np.asarray(decode(batch / "a.dcm#0", Reading(w)))) for w in ("lung", "file"))
    assert np.abs(stored - lung).max() <= np.abs(lung).max() / 127 and not np.allclose(stored, own, atol=0.5)


def test_slices_are_listed_in_numeric_order(tmp_path):
    write_nifti(tmp_path / "vols" / "v.nii", np.zeros((2, 2, 12)))
    assert list_images(tmp_path / "vols", tmp_path) == [f"vols/v.nii#{i}" for i in range(12)]  # #2 before #10
