import numpy as np
import pytest
from PIL import Image

from ganprov.features.images import BadImage, ImageFiles, collate, load_image

SIZE = 32


def gradient(mode: str, size=(40, 30)) -> Image.Image:
    ramp = np.tile(np.linspace(0, 1, size[0]), (size[1], 1))
    if mode == "I;16":
        return Image.fromarray((ramp * 4000).astype(np.uint16))  # a CT-like range, far below 65535
    grey = Image.fromarray((ramp * 255).astype(np.uint8), mode="L")
    if mode == "L":
        return grey
    rgb = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey))
    if mode == "P":
        return rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    return rgb.convert(mode)


@pytest.mark.parametrize("mode, suffix", [
    ("L", ".png"), ("I;16", ".png"), ("RGB", ".png"), ("RGBA", ".png"), ("P", ".png"),
    ("L", ".jpg"), ("RGB", ".jpeg"), ("CMYK", ".jpg"), ("L", ".tif"), ("I;16", ".tiff"), ("RGB", ".bmp"),
])
def test_every_mode_becomes_three_channel_uint8(tmp_path, mode, suffix):
    path = tmp_path / f"image{suffix}"
    gradient(mode).save(path)
    tensor = load_image(path, SIZE)
    assert tensor.shape == (3, SIZE, SIZE) and str(tensor.dtype) == "torch.uint8"
    row = tensor[0, SIZE // 2].numpy().astype(int)
    assert row[-2] - row[1] > 100, "the gradient survives conversion and resizing"


def test_sixteen_bit_is_stretched_to_its_own_range(tmp_path):
    gradient("I;16", size=(SIZE, SIZE)).save(tmp_path / "ct.png")  # no resize: the ends stay exact
    tensor = load_image(tmp_path / "ct.png", SIZE)
    assert tensor.min() == 0 and tensor.max() == 255


def test_greyscale_gives_three_equal_channels(tmp_path):
    gradient("L").save(tmp_path / "g.png")
    tensor = load_image(tmp_path / "g.png", SIZE)
    assert (tensor[0] == tensor[1]).all() and (tensor[1] == tensor[2]).all()


@pytest.mark.parametrize("content", [b"", b"this is text, not a PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_bad_files_raise_bad_image_with_a_reason(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(BadImage) as error:
        load_image(path, SIZE)
    assert str(error.value)


def test_dataset_reports_bad_files_and_collate_keeps_good_ones(tmp_path):
    gradient("L").save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"")
    dataset = ImageFiles(tmp_path, ["a.png", "b.png"], [1, 2], SIZE)
    images, labels, rows, failures = collate([dataset[0], dataset[1]])
    assert images.shape == (1, 3, SIZE, SIZE) and labels.tolist() == [1] and rows.tolist() == [0]
    assert failures == [(1, failures[0][1])] and failures[0][1].startswith("UnidentifiedImageError")
