"""SIGKILL `embed` and `train` CLI runs at chosen points, rerun them, and compare with uninterrupted runs.

Kill points come from what the process has provably done, not from sleeps: for `embed`, the tqdm progress it
writes to stderr (TQDM_MININTERVAL=0 makes tqdm print every batch, so the bar is at most one batch behind the
file); for `train`, train_log.csv, which appears only once epoch 1's checkpoints are saved.

The runs that get killed are `python -m pipeline ...` in processes of their own (own session, stdout, stderr),
forked from one server process that imported torch once: a fresh interpreter per run would spend ~7 s of CPU
importing torch and torchvision, four times. The final reruns call the same CLI in-process.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from tiny_data import make_data

REPO = Path(__file__).resolve().parents[1]
PROGRESS = re.compile(r"embed (\w+):\s*\d+%\|[^|\r\n]*\|\s*(\d+)/(\d+)")
MAIN = ("embeddings", "paths", "labels", "heldout", "residuals", "residual_scales")
SKIPPED = ("skipped_paths", "skipped_reasons")
ORDER = ("real", "generated", "unknown")  # the order embed works through the splits
TIMEOUT = 180  # seconds for any one step: a hang fails, it does not block the suite
TRAIN = dict(weights="none", epochs=3, batch_size=4, image_size=32, workers=0, seed=3, device="cpu", train_on="real")
TRAIN_ARGS = [text for key, value in TRAIN.items() for text in (f"--{key.replace('_', '-')}", str(value))]

# Reads one JSON request per line (args, stdout, stderr), forks `python -m pipeline ARGS` for it, answers its pid.
SERVER = """
import json, os, runpy, signal, sys
import ganprov.features.embed, ganprov.features.train, ganprov.pipeline.cli  # what the commands import, once, before any fork
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the runs: a killed run's pid disappears
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own process group, DataLoader workers included, for killpg
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        sys.argv = ["pipeline", *request["args"]]
        try:
            runpy.run_module("ganprov.pipeline", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        os._exit(code)
    print(pid, flush=True)
"""


@contextmanager
def one_torch_thread():
    """Torch on one thread, as in the server (OMP_NUM_THREADS=1): results comparable bit for bit, and no crawl
    when other work shares the cores (two OpenMP threads on a busy 2-core machine ran ~40x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    with one_torch_thread():
        yield


class Runs:
    """`python -m pipeline` runs forked from the server; each leads its own process group."""

    def __init__(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_MININTERVAL="0", TQDM_MINITERS="1", OMP_NUM_THREADS="1")
        self.server = subprocess.Popen([sys.executable, "-c", SERVER], cwd=REPO, env=env, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def start(self, args: list[str], stdout: Path, stderr: Path) -> int:
        stdout.write_bytes(b"")
        stderr.write_bytes(b"")  # there to follow before the run opens it
        request = {"args": args, "stdout": str(stdout), "stderr": str(stderr)}
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        line = self.server.stdout.readline()
        assert line, f"the run server died (exit {self.server.wait(timeout=TIMEOUT)})"
        return int(line)

    def close(self):
        self.server.stdin.close()
        self.server.wait(timeout=TIMEOUT)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(pid: int) -> None:
    """SIGKILL a run and its DataLoader workers (the process group it leads); return once it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + TIMEOUT
    while alive(pid):
        assert time.monotonic() < deadline, f"run {pid} survived SIGKILL"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def runs_and_reference(tmp_path_factory):
    """The run server, and an uninterrupted seeded CPU training on tiny data (its checkpoint also serves the
    embed test), made while the server imports torch."""
    from ganprov.core.settings import TrainSettings
    from ganprov.features.train import train

    runs = Runs()
    root = tmp_path_factory.mktemp("interruption")
    data = make_data(root / "data")
    with one_torch_thread():
        train(TrainSettings(data=str(data), **TRAIN), root / "reference")
    yield runs, data, root / "reference"
    runs.close()


def progress_until(pid: int, stderr: Path, split: str, at_least: int) -> list[tuple[str, int]]:
    """Follow the run's stderr until the `split` bar shows `at_least` files done; every (split, count) seen."""
    seen, buffer, offset, deadline = [], "", 0, time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(stderr, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        if not chunk:
            if not alive(pid):
                break
            time.sleep(0.002)
            continue
        offset += len(chunk)
        buffer += chunk.decode(errors="replace")
        *lines, buffer = re.split(r"[\r\n]", buffer)
        for line in lines:
            if match := PROGRESS.search(line):
                seen.append((match[1], int(match[2])))
                if seen[-1][0] == split and seen[-1][1] >= at_least:
                    return seen
    kill(pid)
    pytest.fail(f"never saw 'embed {split}' reach {at_least}; last progress {seen[-3:]}, "
                f"stderr ends {stderr.read_text(errors='replace')[-2000:]!r}")


def read_embeddings(path: Path) -> dict:
    with h5py.File(path, "r") as handle:
        return {name: {key: handle[name][key][:] for key in MAIN + SKIPPED} for name in handle}


def open_unlocked(path: Path) -> h5py.File:
    """Open read-only once no process of the killed run is left: its DataLoader worker shares the file's lock
    and may take a moment to die after the main process."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return h5py.File(path, "r")
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def files(embeddings: dict, split: str) -> int:
    return len(embeddings[split]["paths"]) + len(embeddings[split]["skipped_paths"])


def check_partial(partial: Path, expected: dict) -> dict[str, int]:
    """The killed run's partial file opens, its counters fit its datasets, and the rows they count equal the
    uninterrupted run's; return files_done per split."""
    assert partial.is_file(), "the run finished before the kill: the kill point was too late"
    done = {}
    with open_unlocked(partial) as handle:
        assert int(handle.attrs["batch_size"]) == 4
        for name, want in expected.items():
            group = handle[name]
            rows, done[name] = int(group.attrs["rows"]), int(group.attrs["files_done"])
            skipped = done[name] - rows
            assert rows >= 0 and skipped >= 0 and done[name] <= int(group.attrs["files_total"])
            for key in MAIN + SKIPPED:
                keep = rows if key in MAIN else skipped
                assert group[key].shape[0] >= keep, f"{name}/{key}: {group[key].shape[0]} rows < {keep} counted"
                assert np.array_equal(group[key][:keep], want[key][:keep]), f"{name}/{key} differs"
    return done


def test_embed_killed_three_times_resumes_to_the_uninterrupted_file(runs_and_reference, tmp_path, one_thread,
                                                                   capsys):
    from ganprov.features.embed import embed
    from ganprov.pipeline.cli import main

    runs, _, trained = runs_and_reference
    data = make_data(tmp_path / "data", per_subset=12, unknown=80)  # splits of 36, 36 and 80 files
    (data / "generated/gen_t2/gen_t2_005.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    reference, run = tmp_path / "reference", tmp_path / "killed"
    for folder in (reference, run):
        folder.mkdir()
        shutil.copy(trained / "checkpoint.pt", folder / "checkpoint.pt")
    embed(data, reference, batch_size=4, workers=0, device="cpu")
    expected = read_embeddings(reference / "embeddings.h5")
    assert [len(expected[s]["paths"]) for s in ORDER] == [36, 35, 80]
    capsys.readouterr()

    partial = run / "embeddings.h5.partial"
    args = ["embed", "--data", str(data), "--run", str(run), "--batch-size", "4", "--device", "cpu"]
    # Early in the first split, mid-way through the second, near the end of the last; workers 0, 1, 0, then 1.
    done: dict[str, int] | None = None
    for attempt, (split, at) in enumerate([("real", 8), ("generated", 16), ("unknown", 56), (None, 0)]):
        workers = ["--workers", str(attempt % 2)]
        if split is None:  # the last rerun runs to the end, in-process
            assert main(args + workers) == 0
            out, err = capsys.readouterr()
            seen = [(match[1], int(match[2])) for match in PROGRESS.finditer(err)]
        else:
            stdout, stderr = tmp_path / f"stdout{attempt}.txt", tmp_path / f"stderr{attempt}.txt"
            pid = runs.start(args + workers, stdout, stderr)
            seen = progress_until(pid, stderr, split, at)
            kill(pid)
            out = stdout.read_text()
        assert "damaged" not in out
        if done is not None:  # a resume: each unfinished split's bar starts where the killed run's file stopped
            unfinished = {name: done[name] for name in ORDER if done[name] < files(expected, name)}
            firsts = {}
            for name, count in seen:
                firsts.setdefault(name, count)
            assert next(iter(firsts)) == next(iter(unfinished)), (firsts, unfinished)
            assert firsts == {name: unfinished[name] for name in firsts}, (firsts, unfinished)
        if split is not None:
            done = check_partial(partial, expected)
            at = ORDER.index(split)  # killed inside `split`: the splits before it done, those after untouched
            assert [done[name] for name in ORDER[:at]] == [files(expected, name) for name in ORDER[:at]]
            assert 0 < done[split] < files(expected, split)
            assert all(done[name] == 0 for name in ORDER[at + 1:])
    assert not partial.exists()
    got = read_embeddings(run / "embeddings.h5")
    assert got.keys() == expected.keys()
    for name in expected:
        for key in MAIN + SKIPPED:
            assert np.array_equal(got[name][key], expected[name][key]), f"{name}/{key} differs"
    assert [p.decode() for p in got["generated"]["skipped_paths"]] == ["generated/gen_t2/gen_t2_005.png"]


def read_log(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "train_loss", "train_acc", "val_acc", "seconds"]
    return [row[:4] for row in rows[1:]]  # without seconds, which differ from run to run


def test_train_killed_after_epoch_one_resumes_to_the_uninterrupted_weights(runs_and_reference, tmp_path,
                                                                          one_thread, capsys):
    from ganprov.features.checkpoint import load_model, load_raw
    from ganprov.pipeline.cli import main

    runs, data, reference = runs_and_reference
    run = tmp_path / "killed"
    args = ["train", "--data", str(data), "--run", str(run), *TRAIN_ARGS]
    pid = runs.start(args, tmp_path / "stdout.txt", tmp_path / "stderr.txt")
    deadline = time.monotonic() + TIMEOUT
    try:
        while not (run / "train_log.csv").exists():  # written right after epoch 1's last.pt and checkpoint.pt
            assert alive(pid), (tmp_path / "stderr.txt").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "epoch 1 never finished"
            time.sleep(0.005)
    finally:
        kill(pid)

    # What the user holds after the kill is whole: both checkpoints load, the log parses.
    state = load_raw(run / "last.pt")
    assert state["meta"]["epoch"] == 1, "killed too late: epoch 2 had already finished"
    load_model(run / "checkpoint.pt")
    assert read_log(run / "train_log.csv") == [[str(value) for value in row[:4]] for row in state["log"]]

    assert main(args + ["--resume"]) == 0
    assert f"resuming {run} after epoch 1" in capsys.readouterr().out
    got, want = load_raw(run / "last.pt"), load_raw(reference / "last.pt")
    assert got["meta"]["epoch"] == want["meta"]["epoch"] == 3
    assert got["model"].keys() == want["model"].keys()
    for key, tensor in want["model"].items():
        assert torch.equal(got["model"][key], tensor), f"{key} differs from the uninterrupted run"
    assert read_log(run / "train_log.csv") == read_log(reference / "train_log.csv")
    assert load_raw(run / "checkpoint.pt")["meta"]["epoch"] == load_raw(reference / "checkpoint.pt")["meta"]["epoch"]
