"""Bad input end to end: a corpus of broken, odd and hostile files, written by the test itself.

The policy under test:
- A file that cannot be decoded is skipped: named with its reason in RUN/skipped.csv (and in the HDF5 group's
  skipped_paths / skipped_reasons), counted in the summary, and the run goes on. Every good file is embedded
  exactly once, in layout order.
- `strict=True` (`--strict`) stops at the first bad file, naming its path and reason.
- Layout problems stop with one LayoutError sentence; through the CLI: exit code 2, one line, no traceback.
- An empty subset folder is fine in generated/ (that subset just has no generated rows) but a LayoutError in
  real/: every candidate subset needs reference images.
- A truncated file is bad unless every pixel was decoded: PIL only accepts a PNG whose cut falls after the
  pixel data (in the zlib checksum, IDAT CRC or IEND), and that decodes to identical pixels.

Root ignores permission bits, so where a test needs "permission denied" it uses chmod when permission bits
apply and, where they do not (PERMISSIONS_IGNORED: root), also makes the OS call fail the same way with monkeypatch.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import resource
import shutil
import signal
import struct
import sys
import tempfile
import threading
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_data import make_data

from ganprov.core.layout import LayoutError, discover
from ganprov.features.embed import EmbeddingError, embed
from ganprov.features.images import BadImage, load_image
from ganprov.pipeline import cli

SIZE = 32  # the trained_run fixture's image size


def permission_bits_ignored() -> bool:
    """True for root (or anyone with CAP_DAC_OVERRIDE): a mode-000 file still opens."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "probe")
        path.write_bytes(b"x")
        path.chmod(0)
        try:
            path.read_bytes()
        except PermissionError:
            return False
        return True


PERMISSIONS_IGNORED = permission_bits_ignored()
# split → (the folder every case goes to, a folder that gets a second "same.png")
SPLIT_FOLDERS = {"real": ("real/t1", "real/t2"), "generated": ("generated/gen_t1", "generated/gen_t2"),
                 "unknown": ("generated_unknown", "generated_unknown/sub")}
HANG_SECONDS = 120
PATCHED_LIMIT = 2000  # MAX_IMAGE_PIXELS for the in-process run: 48×48 warns, 64×64 > 2×limit errors


def noise(size=(SIZE, SIZE), seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def giant_png() -> bytes:
    """A 100000×100000 PNG header with no pixel data: 60 bytes on disk, 10 GB if anything tried to decode it."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def corrupt_jpeg() -> bytes:
    """A JPEG whose Huffman table is zeroed: PIL identifies it, then fails while decoding."""
    data = encoded(noise(seed=9), "JPEG")
    start = data.index(b"\xff\xc4") + 4  # after the DHT marker and its length
    length = int.from_bytes(data[start - 2:start], "big") - 2
    return data[:start] + bytes(length) + data[start + length:]


def sixteen_bit() -> Image.Image:
    return Image.fromarray((np.tile(np.linspace(0, 1, SIZE), (SIZE, 1)) * 4000).astype(np.uint16))


def write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        content(path)


# Files every split folder gets: name → writer. Good ones must be embedded, bad ones skipped with a reason
# containing the text given, ignored ones never listed.
GOOD = {
    "plain.png": lambda p: noise(seed=1).convert("L").save(p),
    "sixteen_bit.png": lambda p: sixteen_bit().save(p),
    "rgba.png": lambda p: noise(seed=2).convert("RGBA").save(p),
    "palette.png": lambda p: noise(seed=3).convert("P", palette=Image.Palette.ADAPTIVE).save(p),
    "cmyk.jpg": lambda p: noise(seed=4).convert("CMYK").save(p),
    "one_pixel.png": lambda p: noise((1, 1), seed=5).save(p),
    "UPPER CASE.PNG": lambda p: noise(seed=6).save(p),
    "ünïcødé 画像.png": lambda p: noise(seed=7).save(p),
    "it's \"quoted\", too.png": lambda p: noise(seed=8).save(p),
    "same.png": lambda p: noise(seed=10).save(p),
    "nested/deeper/inner.png": lambda p: noise(seed=11).save(p),
    "folder.png/inside.png": lambda p: noise(seed=12).save(p),  # a folder named like an image is a folder
    "link_to_plain.png": lambda p: p.symlink_to("plain.png"),
    "bomb_warn.png": lambda p: noise((48, 48), seed=13).save(p),  # bad only under PATCHED_LIMIT
    "bomb_error.png": lambda p: noise((64, 64), seed=14).save(p),  # bad only under PATCHED_LIMIT
    "locked.png": lambda p: (noise(seed=15).save(p), p.chmod(0)),  # unreadable only when not root
}
BAD = {
    "empty.png": (b"", "UnidentifiedImageError"),
    "truncated.png": (encoded(noise(seed=16), "PNG")[:1500], "image file is truncated"),
    "corrupt.jpg": (corrupt_jpeg(), "broken data stream"),
    "text.png": (b"this is a text file, not a PNG\n", "UnidentifiedImageError"),
    "giant.png": (giant_png(), "DecompressionBombError"),
    "fifo.png": (lambda p: os.mkfifo(p), "not a regular file"),
    "dangling.png": (lambda p: p.symlink_to("missing.png"), "No such file or directory"),
    "loop.png": (lambda p: p.symlink_to("loop.png"), "Too many levels of symbolic links"),
    "bad, \"quoted\" ünï.png": (b"", "UnidentifiedImageError"),  # an awkward name in skipped.csv
    "scan.dcm": (b"DICM", "not a readable DICOM file"),  # DICOM is read (core/volumes.py): a stub is bad
}
IGNORED = {
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
    "._plain.png": b"\x00\x05\x16\x07AppleDouble",
    "notes.txt": b"not an image",
    "Thumbs.db": b"\xd0\xcf\x11\xe0",
    ".hidden/secret.png": lambda p: noise(seed=17).save(p),
    "cycle": lambda p: p.symlink_to(".", target_is_directory=True),  # a folder loop: not followed
}


def build_corpus(root: Path, bomb_limit_patched: bool, locked_denied: bool = not PERMISSIONS_IGNORED
                 ) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Every case in real/t1, generated/gen_t1 and generated_unknown/; a same-named file in t2/gen_t2/sub;
    real/t3 holds one image, generated/gen_t3 is empty. Returns split → (good paths, bad path → reason)."""
    expected = {}
    for split, (cases, same) in SPLIT_FOLDERS.items():
        good, bad = [], {}
        for name, content in IGNORED.items():
            write(root / cases / name, content)
        for name, content in GOOD.items():
            write(root / cases / name, content)
            if name.startswith("bomb") and bomb_limit_patched:
                bad[f"{cases}/{name}"] = "DecompressionBomb"
            elif name == "locked.png" and locked_denied:
                bad[f"{cases}/{name}"] = "Permission denied"
            else:
                good.append(f"{cases}/{name}")
        for name, (content, reason) in BAD.items():
            write(root / cases / name, content)
            bad[f"{cases}/{name}"] = reason
        write(root / same / "same.png", lambda p: noise(seed=18).save(p))  # same name, other subset
        good.append(f"{same}/same.png")
        expected[split] = (sorted(good), dict(sorted(bad.items())))
    write(root / "real/t3/only.png", lambda p: noise(seed=19).save(p))
    expected["real"][0].append("real/t3/only.png")
    (root / "generated/gen_t3").mkdir()  # an empty subset folder in generated/: fine, no rows for subset 3
    return expected


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread while these tests run: OpenMP threads spin-wait, and on a busy 2-core machine a
    2-thread forward pass was measured 20× slower than a 1-thread one. These tests check behaviour, not speed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    _, run = trained_run
    unused = shutil.ignore_patterns("last.pt", "embeddings.h5*", "skipped.csv")  # embed needs checkpoint.pt
    return Path(shutil.copytree(run, tmp_path / "run", ignore=unused))


@pytest.fixture(autouse=True)
def no_hang():
    """Fail instead of hanging: opening a FIFO for reading blocks until someone writes to it. The alarm is sent to
    the main thread itself: signal.alarm() may land on one of torch's threads and leave the open() blocked."""
    def timeout(signum, frame):  # pytest.fail raises a BaseException: no `except OSError` on the way swallows it
        pytest.fail(f"hung for {HANG_SECONDS} s", pytrace=True)
    previous = signal.signal(signal.SIGALRM, timeout)
    timer = threading.Timer(HANG_SECONDS, signal.pthread_kill, (threading.main_thread().ident, signal.SIGALRM))
    timer.start()
    yield
    timer.cancel()
    signal.signal(signal.SIGALRM, previous)


def check_run(run: Path, expected, summary: dict) -> None:
    """Every good file embedded exactly once, in order; every bad one in the HDF5 file and skipped.csv."""
    with h5py.File(run / "embeddings.h5", "r") as handle:
        assert sorted(handle) == ["generated", "real", "unknown"]
        for split, (good, bad) in expected.items():
            group = handle[split]
            paths = [p.decode() for p in group["paths"][:]]
            assert paths == good, f"{split}: embedded paths differ from the good files"
            assert group["embeddings"].shape == (len(good), 512) and np.isfinite(group["embeddings"][:]).all()
            skipped = dict(zip((p.decode() for p in group["skipped_paths"][:]),
                               (r.decode() for r in group["skipped_reasons"][:])))
            assert list(skipped) == list(bad), f"{split}: skipped paths differ from the bad files"
            for path, reason in bad.items():
                assert reason in skipped[path], f"{path}: {skipped[path]!r} does not say {reason!r}"
        labels = handle["real"]["labels"][:].tolist()
        assert labels == [int(p.split("/")[1][1:]) for p in expected["real"][0]]
    with open(run / "skipped.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["split", "path", "reason"]
    assert sorted((s, p) for s, p, _ in rows[1:]) == sorted((s, p) for s, (_, bad) in expected.items() for p in bad)
    assert all(bad_reason in reason for s, p, reason in rows[1:] for bad_reason in [expected[s][1][p]])
    assert summary["embedded"] == sum(len(good) for good, _ in expected.values())
    assert summary["skipped"] == sum(len(bad) for _, bad in expected.values()) == len(rows) - 1


# Any read that only warns about a bomb (a header read too) fails the test: every one must refuse it.
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_corpus_is_skipped_file_by_file_and_good_files_embedded_once(tmp_path, run_copy, monkeypatch, capsys):
    # workers=0: the lowered decompression-bomb limit is set in this process, where the decoding happens.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PATCHED_LIMIT)
    expected = build_corpus(tmp_path / "corpus", bomb_limit_patched=True, locked_denied=True)
    if PERMISSIONS_IGNORED:  # root reads mode-000 files: fail their open, as it fails for everyone else
        real_open = open
        monkeypatch.setattr("builtins.open", lambda file, *a, **k: (_ for _ in ()).throw(PermissionError(
            13, "Permission denied", str(file))) if Path(str(file)).name == "locked.png" else real_open(file, *a, **k))
    summary = embed(tmp_path / "corpus", run_copy, batch_size=4, workers=0)
    check_run(run_copy, expected, summary)
    assert f"{summary['skipped']} skipped" in capsys.readouterr().out


def test_corpus_with_worker_processes(tmp_path, run_copy):
    # Default bomb limit here, so the 48- and 64-pixel "bombs" are good; giant.png is refused at any limit.
    expected = build_corpus(tmp_path / "corpus", bomb_limit_patched=False)
    summary = embed(tmp_path / "corpus", run_copy, batch_size=4, workers=2)
    check_run(run_copy, expected, summary)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    assert sys.platform != "linux" or peak_kib < 4 * 1024 ** 2, "a worker used over 4 GiB decoding the corpus"


def test_strict_stops_at_the_first_bad_file(tmp_path, run_copy, capsys):
    corpus = tmp_path / "corpus"
    expected = build_corpus(corpus, bomb_limit_patched=False)
    first_bad, reason = next(iter(expected["real"][1].items()))
    with pytest.raises(EmbeddingError) as error:
        embed(corpus, run_copy, batch_size=4, workers=0, strict=True)
    assert str(error.value).startswith(f"cannot read {corpus / first_bad}: ") and reason in str(error.value)
    assert not (run_copy / "embeddings.h5").exists()
    capsys.readouterr()
    assert cli.main(["embed", "--data", str(corpus), "--run", str(run_copy), "--batch-size", "4",
                     "--workers", "0", "--strict"]) == 2
    err = capsys.readouterr().err  # the progress bar, then one line
    assert err.splitlines()[-1].startswith(f"ganprov: error: cannot read {corpus / first_bad}: ")
    assert err.count("ganprov: error:") == 1 and "Traceback" not in err


def permission_denied(monkeypatch, function: str, target: Path) -> None:
    """As root, make os.<function>(target) fail as it would for a user without permission."""
    original = getattr(os, function)

    def denied(path, *args, **kwargs):
        if Path(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, *args, **kwargs)
    monkeypatch.setattr(os, function, denied)


def unreadable_root(data: Path, monkeypatch) -> Path:
    data.chmod(0)  # real permission bits for a normal user; root ignores them, so also:
    if PERMISSIONS_IGNORED:
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != data)
    return data


def unreadable_subset(data: Path, monkeypatch) -> Path:
    (data / "real/t1").chmod(0)
    if PERMISSIONS_IGNORED:
        permission_denied(monkeypatch, "scandir", data / "real/t1")  # what os.walk lists a folder with
    return data


def non_utf8_name(data: Path, monkeypatch) -> Path:
    shutil.copy(data / "real/t1/t1_000.png", os.fsencode(data / "real/t1") + b"/latin1_\xe9.png")
    return data


def no_subset_folders(data: Path, monkeypatch) -> Path:
    for folder in (data / "real").iterdir():
        shutil.rmtree(folder)
    return data


def rename(old: str, new: str):
    def damage(data: Path, monkeypatch) -> Path:
        (data / old).rename(data / new)
        return data
    return damage


def empty_real_subset(data: Path, monkeypatch) -> Path:
    for path in (data / "real/t3").iterdir():
        path.unlink()
    return data


def missing_real(data: Path, monkeypatch) -> Path:
    shutil.rmtree(data / "real")
    return data


def root_is_a_file(data: Path, monkeypatch) -> Path:
    (data / "file").write_text("not a folder")
    return data / "file"


LAYOUT_PROBLEMS = {
    "no subset folders": (no_subset_folders, "holds no subset folders"),
    "real subset without a number": (rename("real/t2", "real/extra"), "real/extra has no number in its name"),
    "generated subset without a number": (rename("generated/gen_t2", "generated/gen_x"), "gen_x has no number"),
    "empty subset folder in real/": (empty_real_subset, "has no images for subset(s) [3]"),
    "missing real/": (missing_real, "has no real/ folder"),
    "missing data root": (lambda data, monkeypatch: data / "nope", "does not exist"),
    "data root is a file": (root_is_a_file, "is not a folder"),
    "unreadable data root": (unreadable_root, "cannot be read (permission denied)"),
    "unreadable subset folder": (unreadable_subset, "real/t1: Permission denied"),
    "file name not UTF-8": (non_utf8_name, "is not valid UTF-8"),
}


@pytest.mark.parametrize("problem", LAYOUT_PROBLEMS)
def test_layout_problems_are_one_sentence_and_exit_code_2(tmp_path, monkeypatch, capsys, problem):
    damage, message = LAYOUT_PROBLEMS[problem]
    data = damage(make_data(tmp_path / "data", per_subset=2, unknown=2), monkeypatch)
    try:
        with pytest.raises(LayoutError) as error:
            discover(data)
        assert message in str(error.value) and "\n" not in str(error.value)
        # `train` reads the layout first thing (embed loads the checkpoint first: slower, same error path).
        assert cli.main(["train", "--data", str(data), "--run", str(tmp_path / "run"), "--weights", "none"]) == 2
    finally:
        for folder in (tmp_path / "data", tmp_path / "data/real/t1"):
            if folder.exists():
                folder.chmod(0o755)  # let pytest clean up after a chmod 0
    err = capsys.readouterr().err
    assert err == f"ganprov: error: {error.value}\n" and "Traceback" not in err


def test_empty_subset_folders_in_generated_are_fine(tmp_path):
    data = make_data(tmp_path, per_subset=2, unknown=0)
    for path in (data / "generated/gen_t3").iterdir():
        path.unlink()
    layout = discover(data)
    assert layout.regime == "challenge" and set(layout.splits["generated"].labels) == {1, 2}
    for folder in ("gen_t1", "gen_t2"):
        shutil.rmtree(data / "generated" / folder)
        (data / "generated" / folder).mkdir()
    layout = discover(data)  # every generated subset empty: as if generated/ were absent
    assert layout.regime == "audit" and "generated" not in layout.splits and "unknown" not in layout.splits


def test_missing_generated_unknown_stops_only_the_commands_that_need_it(tmp_path, run_copy, capsys):
    data = make_data(tmp_path / "data", per_subset=2, unknown=0, generated=None)
    embed(data, run_copy, batch_size=4, workers=0)
    with h5py.File(run_copy / "embeddings.h5", "r") as handle:
        assert sorted(handle) == ["real"]
    capsys.readouterr()
    assert cli.main(["predict", "--run", str(run_copy), "--head", "logreg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no generated_unknown/" in err
    assert cli.main(["train", "--data", str(data), "--run", str(tmp_path / "run2"), "--weights", "none",
                     "--train-on", "real+generated", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generated, which is absent" in err


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts file descriptors through /proc")
def test_load_image_opens_each_file_once_and_closes_it(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    build_corpus(corpus, bomb_limit_patched=False)
    opened = []
    real_open = open

    def spy(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        opened.append((str(file), handle))
        return handle
    monkeypatch.setattr("builtins.open", spy)
    before = open_fds()
    for name in ["plain.png", "cmyk.jpg", "sixteen_bit.png", "truncated.png", "corrupt.jpg", "text.png",
                 "giant.png", "fifo.png", "dangling.png"]:
        path = corpus / "real/t1" / name
        opened.clear()
        with contextlib.suppress(BadImage):
            load_image(path, SIZE)
        assert [f for f, _ in opened] == ([] if name in ("fifo.png", "dangling.png") else [str(path)]), name
        assert all(handle.closed for _, handle in opened), f"{name} left open"
    assert open_fds() == before


def test_permission_denied_is_a_bad_image(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    noise().save(path)
    path.chmod(0)
    if PERMISSIONS_IGNORED:  # root reads mode-000 files: fail the open itself, as it fails for everyone else
        real_open = open
        monkeypatch.setattr("builtins.open", lambda file, *a, **k: (_ for _ in ()).throw(
            PermissionError(13, "Permission denied", str(file))) if Path(file) == path else real_open(file, *a, **k))
    with pytest.raises(BadImage, match="PermissionError: .*Permission denied"):
        load_image(path, SIZE)


def test_truncated_png_is_bad_or_decodes_every_pixel(tmp_path):
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    data = encoded(Image.fromarray(np.stack([x * 8, y * 8, (x + y) * 4], -1).astype(np.uint8)), "PNG")
    (tmp_path / "full.png").write_bytes(data)
    full = load_image(tmp_path / "full.png", SIZE)
    accepted = []
    for cut in range(len(data)):
        (tmp_path / "cut.png").write_bytes(data[:cut])
        try:
            tensor = load_image(tmp_path / "cut.png", SIZE)
        except BadImage as error:
            assert str(error)
            continue
        assert (tensor == full).all(), f"cut at {cut} of {len(data)} bytes decoded partially"
        accepted.append(len(data) - cut)
    assert len(accepted) < 32  # only cuts in the last bytes (end of the zlib stream, IDAT CRC, IEND)


def test_decompression_bomb_limit_applies_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PATCHED_LIMIT)
    noise((48, 48)).save(tmp_path / "warn.png")
    noise((64, 64)).save(tmp_path / "error.png")
    with pytest.raises(BadImage, match="DecompressionBombWarning"):
        load_image(tmp_path / "warn.png", SIZE)
    with pytest.raises(BadImage, match="DecompressionBombError"):
        load_image(tmp_path / "error.png", SIZE)
