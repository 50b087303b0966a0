"""Bad options and damaged run folders end in one line and exit code 2, never a traceback.

Numbers, fractions and devices are checked by argparse (usage, then one `error:` line, exit 2) with the checks
of core/settings.py, which TrainSettings runs too; everything found later is a GanprovError, one line.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_data import make_data

import ganprov
from ganprov.core.run_folder import RunFolder
from ganprov.core.settings import SettingsError, TrainSettings
from ganprov.features.checkpoint import load_raw
from ganprov.models import HEADS
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.pipeline.cli import main
from ganprov.pipeline.run_all import head_is_current

TINY = ["--weights", "none", "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "0"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ganprov: error: ") and "Traceback" not in err, err
    return err


STAGE1 = ["--data", "nowhere", "--run", "nowhere-run"]
BAD_OPTIONS = {  # command line → the option argparse names
    "image size 0": (["train", *STAGE1, "--image-size", "0"], "--image-size"),
    "image size -5": (["train", *STAGE1, "--image-size", "-5"], "--image-size"),
    "image size huge": (["run", *STAGE1, "--image-size", "100000"], "--image-size"),
    "batch size 0": (["train", *STAGE1, "--batch-size", "0"], "--batch-size"),
    "epochs 0": (["train", *STAGE1, "--epochs", "0"], "--epochs"),
    "lr nan": (["train", *STAGE1, "--lr", "nan"], "--lr"),
    "lr inf": (["run", *STAGE1, "--lr", "inf"], "--lr"),
    "lr 0": (["train", *STAGE1, "--lr", "0"], "--lr"),
    "lr negative": (["train", *STAGE1, "--lr", "-0.001"], "--lr"),
    "lr not a number": (["train", *STAGE1, "--lr", "fast"], "--lr"),
    "device bogus": (["train", *STAGE1, "--device", "bogus"], "--device"),
    "workers -1": (["train", *STAGE1, "--workers", "-1"], "--workers"),
    "seed -1": (["train", *STAGE1, "--seed", "-1"], "--seed"),
    "embed batch size 0": (["embed", *STAGE1, "--batch-size", "0"], "--batch-size"),
    "embed device bogus": (["embed", *STAGE1, "--device", "gpu"], "--device"),
    "score workers -1": (["score", "--run", "r", "--head", "logreg", "--images", "i", "--workers", "-1"], "--workers"),
    "pca 0": (["fit", "--run", "r", "--head", "logreg", "--pca", "0"], "--pca"),
    "k 0": (["fit", "--run", "r", "--head", "knn", "--k", "0"], "--k"),
    "alpha 0": (["fit", "--run", "r", "--head", "fingerprint", "--alpha", "0"], "--alpha"),
    "alpha above 1": (["run", *STAGE1, "--alpha", "1.5"], "--alpha"),
    "abstain 5": (["predict", "--run", "r", "--head", "logreg", "--abstain", "5"], "--abstain"),
    "abstain 1": (["predict", "--run", "r", "--head", "logreg", "--abstain", "1"], "--abstain"),
    "demo epochs 0": (["demo", "--run", "d", "--epochs", "0"], "--epochs"),
    "bench n 0": (["bench", "--n", "0"], "--n"),
    "bench image size 8": (["bench", "--image-size", "8"], "--image-size"),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_bad_options_are_refused_before_anything_runs(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the relative paths above: were an option let through, nothing lands in the checkout
    argv, option = BAD_OPTIONS[case]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ganprov {argv[0]}: error: argument {option}: must be ") and "Traceback" not in err
    assert repr(argv[argv.index(option) + 1]) in last  # names the value it refused
    assert not any(tmp_path.iterdir())


def test_train_settings_refuse_the_same_values_in_python(tmp_path):
    for field, value in [("epochs", 0), ("batch_size", 0), ("lr", float("nan")), ("image_size", 8),
                         ("device", "bogus"), ("workers", -1), ("train_on", "everything"),
                         ("content_resolution", "quarter")]:
        with pytest.raises(SettingsError, match=f"^{field} must be "):
            TrainSettings(data=str(tmp_path), **{field: value})
    assert TrainSettings(data="", device="cuda:1", lr="1e-3").lr == 1e-3  # what the checks let through


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_one_line(tmp_path, capsys):
    data = make_data(tmp_path / "data", per_subset=2, unknown=0, generated=None)
    assert main(["train", "--data", str(data), "--run", str(tmp_path / "run"), *TINY, "--device", "cuda:1"]) == 2
    assert "--device cuda:1: this machine has 0 CUDA device(s)" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_run_folder_that_is_a_file_is_refused_by_every_command(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    for run in (tmp_path / "file", tmp_path / "file/run"):
        for argv in (["train", "--data", str(tmp_path)], ["embed", "--data", str(tmp_path)], ["fit", "--head", "all"],
                     ["predict", "--head", "all"], ["evaluate"], ["report"], ["run", "--data", str(tmp_path)],
                     ["score", "--head", "logreg", "--images", str(tmp_path), "--out", str(tmp_path / "o.csv")]):
            assert main([*argv, "--run", str(run)]) == 2, argv
            assert f"--run {run}: {tmp_path / 'file'} is a file, not a folder" in one_line_error(capsys)


def read_only(folder: Path, monkeypatch) -> None:
    """chmod a-w; root ignores permission bits, so os.access also answers as it would for anyone else."""
    folder.chmod(0o555)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        not (mode & os.W_OK and Path(path) == folder) and real_access(path, mode, **kw)))


def test_a_read_only_run_folder_is_refused_before_training(tmp_path, monkeypatch, capsys):
    data = make_data(tmp_path / "data", per_subset=2, unknown=2)
    for run in (tmp_path / "run", tmp_path / "run/new"):  # the folder, or the one it would be made in
        (tmp_path / "run").mkdir(exist_ok=True)
        read_only(tmp_path / "run", monkeypatch)
        try:
            assert main(["train", "--data", str(data), "--run", str(run), *TINY]) == 2
        finally:
            (tmp_path / "run").chmod(0o755)
        assert one_line_error(capsys) == (f"ganprov: error: --run {run}: {tmp_path / 'run'} is read-only, and "
                                          "ganprov writes its results there")
        assert list((tmp_path / "run").iterdir()) == []


def test_bench_and_demo_refusals_are_one_line(tmp_path, capsys):
    assert main(["bench", "--heads-n", "3"]) == 2
    assert "heads_n >= 5" in one_line_error(capsys)
    foreign = tmp_path / "demo-data/real/t1/foreign.png"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not ours")
    assert main(["demo", "--run", str(tmp_path / "demo")]) == 2
    assert "already holds files this demo data set does not: foreign.png" in one_line_error(capsys)


def test_more_pca_components_than_rows_is_one_line(run_copy, capsys):
    _, run = run_copy
    assert main(["fit", "--run", str(run.path), "--head", "logreg", "--pca", "100000"]) == 2
    assert "--pca 100000: at most " in one_line_error(capsys)


def test_an_option_the_named_head_does_not_take_is_refused_not_dropped(run_copy, capsys):
    _, run = run_copy
    before = (run.heads / "fingerprint.json").read_text()
    assert main(["fit", "--run", str(run.path), "--head", "fingerprint", "--content", "knn", "--k", "25"]) == 2
    assert one_line_error(capsys).endswith("--head fingerprint does not take --k (they are for --head knn; the "
                                           "content head behind its votes keeps its defaults)")
    assert (run.heads / "fingerprint.json").read_text() == before  # nothing fitted
    assert main(["fit", "--run", str(run.path), "--head", "cosine", "--pca", "4", "--exact"]) == 2
    assert "--head cosine does not take --exact, --pca (they are for --head knn or logreg)" in one_line_error(capsys)
    assert main(["fit", "--run", str(run.path), "--head", "cosine", "--seed", "3"]) == 0  # a seed is always fine
    assert main(["fit", "--run", str(run.path), "--head", "all", "--k", "3", "--pca", "4"]) == 0  # each takes its own


def drop_fit_on(text: str) -> str:
    sidecar = json.loads(text)
    del sidecar["info"]["fit_on"]
    return json.dumps(sidecar)


SIDECAR_DAMAGE = {
    "not JSON": (lambda text: text[: len(text) // 2], "is not valid JSON"),
    "not UTF-8": (lambda text: "\udcff", "is not valid JSON"),
    "a list": (lambda text: "[]", "is not a head's sidecar (no class, params, versions, info, sha256)"),
    "no info": (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "info"}), "(no info)"),
    "info not an object": (lambda text: json.dumps(json.loads(text) | {"info": 3}), "(no info object)"),
    "no fit_on": (drop_fit_on, "does not say what 'logreg' was fit on"),
}


@pytest.mark.parametrize("damage", SIDECAR_DAMAGE)
def test_a_damaged_head_sidecar_is_one_line_and_run_fits_the_head_again(run_copy, capsys, damage):
    _, run = run_copy
    change, message = SIDECAR_DAMAGE[damage]
    sidecar = run.heads / "logreg.json"
    sidecar.write_bytes(change(sidecar.read_text()).encode("utf-8", "surrogateescape"))
    for argv in (["predict", "--head", "logreg"], ["evaluate"]):
        assert main([*argv, "--run", str(run.path)]) == 2
        err = one_line_error(capsys)
        assert str(sidecar) in err and message in err, err
    if damage != "no fit_on":  # `ganprov run` fits a head again rather than trust a sidecar it cannot read
        assert not head_is_current(run, "logreg", EmbeddingsFile(run.embeddings), {})


def bare_state_dict(state):
    return state["model"]


def meta_without(*keys):
    def damage(state):
        state["meta"] = {k: v for k, v in state["meta"].items() if k not in keys}
        return state
    return damage


def more_subsets(state):
    state["meta"]["subsets"] = [1, 2, 3, 4]
    return state


CHECKPOINT_DAMAGE = {
    "bare state dict": (bare_state_dict, "is not a ganprov checkpoint (no meta)"),
    "meta without subsets": (meta_without("subsets", "image_size"), "(no meta.subsets, meta.image_size)"),
    "no model": (lambda state: {"meta": state["meta"]}, "(no model)"),
    "model for other subsets": (more_subsets, "does not hold a ganprov ResNet-18 for 4 subsets"),
}


@pytest.mark.parametrize("damage", CHECKPOINT_DAMAGE)
def test_a_checkpoint_without_its_metadata_is_one_line(run_copy, capsys, damage):
    data, run = run_copy
    change, message = CHECKPOINT_DAMAGE[damage]
    torch.save(change(load_raw(run.checkpoint)), run.checkpoint)
    assert main(["embed", "--data", str(data), "--run", str(run.path), "--workers", "0", "--force"]) == 2
    err = one_line_error(capsys)
    assert str(run.checkpoint) in err and message in err, err


def test_a_last_checkpoint_without_the_optimizer_state_is_one_line(run_copy, capsys):
    data, run = run_copy
    state = load_raw(run.last)
    del state["optimizer"]
    torch.save(state, run.last)
    assert main(["train", "--data", str(data), "--run", str(run.path), *TINY, "--train-on", "real",
                 "--epochs", "2", "--resume"]) == 2
    assert f"{run.last} is not a ganprov checkpoint (no optimizer)" in one_line_error(capsys)


def test_an_empty_generated_unknown_runs_everything_else_and_says_there_is_nothing_to_attribute(tmp_path, capsys):
    data = make_data(tmp_path / "data", per_subset=2, unknown=0)
    (data / "generated_unknown").mkdir()
    run = RunFolder(tmp_path / "run")
    assert main(["run", "--data", str(data), "--run", str(run.path), *TINY, "--train-on", "real"]) == 0
    assert "nothing to attribute" in capsys.readouterr().out
    assert run.report.is_file() and (run.evaluation / "metrics.json").is_file() and not run.submission.exists()
    assert main(["predict", "--run", str(run.path), "--head", "logreg"]) == 2
    assert "nothing to attribute" in one_line_error(capsys)
    (data / "generated_unknown/broken.png").write_bytes(b"not a PNG")  # an unknown group of no rows
    assert main(["run", "--data", str(data), "--run", str(run.path), *TINY, "--train-on", "real"]) == 0
    assert "nothing to attribute" in capsys.readouterr().out and not run.submission.exists()
    assert main(["predict", "--run", str(run.path), "--head", "logreg"]) == 2
    assert "nothing to attribute" in one_line_error(capsys)
    truth = tmp_path / "truth.csv"  # a truth file has nothing to be compared with: said, not an error
    truth.write_text("")
    assert main(["run", "--data", str(data), "--run", str(run.path), *TINY, "--train-on", "real",
                 "--truth", str(truth)]) == 0
    assert f"{truth} not compared" in capsys.readouterr().out and run.report.is_file()


def test_a_rerun_after_the_unknown_images_are_gone_leaves_no_submission_of_them(tmp_path, capsys):
    data = make_data(tmp_path / "data", per_subset=2, unknown=4)
    run = RunFolder(tmp_path / "run")
    assert main(["run", "--data", str(data), "--run", str(run.path), *TINY, "--train-on", "real"]) == 0
    assert run.submission.is_file() and run.predictions.is_dir()
    shutil.rmtree(data / "generated_unknown")
    assert main(["run", "--data", str(data), "--run", str(run.path), *TINY, "--train-on", "real"]) == 0
    out = capsys.readouterr().out
    assert "embedding again" in out and "nothing to attribute" in out
    assert not run.submission.exists() and not run.predictions.exists()
    assert "Nothing attributed" in run.report.read_text()


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"ganprov {ganprov.__version__}"


def test_help_says_what_ganprov_does(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "trace GAN-generated medical images back to the real subset" in " ".join(capsys.readouterr().out.split())


def test_fit_help_lists_every_head_and_fit_on(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in [*HEADS, "all"]) and "{auto,real,generated,both}" in out


def test_importing_the_cli_changes_nothing_and_leaves_torch_and_sklearn_alone():
    code = ("import os, sys; before = dict(os.environ); import ganprov.pipeline.cli as cli; cli.build_parser(); "
            "assert dict(os.environ) == before, 'environment changed'; "
            "assert not {'torch', 'sklearn'} & set(sys.modules), 'torch or sklearn imported'")
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    subprocess.run([sys.executable, "-c", code], check=True, env=environment)


def test_main_asks_openmp_and_openblas_threads_to_sleep(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ["OPENBLAS_THREAD_TIMEOUT"] == "4"


def test_run_fits_a_head_again_whose_saved_parameters_are_not_todays(run_copy):
    """A head saved by another version (another default, a parameter it did not have) is fit again by `run`."""
    _, run = run_copy
    file, sidecar = EmbeddingsFile(run.embeddings), run.heads / "fingerprint.json"
    saved = json.loads(sidecar.read_text())
    requested = saved["info"]["params_requested"]
    assert head_is_current(run, "fingerprint", file, requested)
    del saved["params"]["coverage_neighbours"]  # as a version before the coverage check wrote it
    sidecar.write_text(json.dumps(saved))
    assert not head_is_current(run, "fingerprint", file, requested)
