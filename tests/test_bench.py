"""`ganprov bench` on a tiny input: every stage runs and reports; speed is never asserted. The pieces alone,
on made-up numbers, where that is cheap."""
import json

import pytest

import ganprov.pipeline.bench as bench_module
from ganprov.core.errors import GanprovError
from ganprov.models import HEADS
from ganprov.pipeline.bench import bench
from ganprov.pipeline.bench.memory import MemoryProcess
from ganprov.pipeline.bench.report import TARGETS, ratios_and_targets, table
from ganprov.pipeline.bench.spec import BenchSpec, default_n
from ganprov.pipeline.bench.synthetic import SUBSETS, synthetic_images, synthetic_run
from ganprov.pipeline.cli import build_parser, main


@pytest.mark.slow
def test_bench_reports_every_stage(tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = bench(image_size=32, n=32, heads_n=500, heads_predict_n=200, source_size=48, memory_n=(32, 96),
                   workers=1, out=out, processes=2)

    for stage in ("backbone_only", "embed", "embed_torchrun", "paper_loop"):
        assert result["stages"][stage]["images"] == 32
        assert result["stages"][stage]["images_per_s"] > 0 and result["stages"][stage]["seconds"] > 0
    assert set(result["heads"]) == set(HEADS)  # every registered head, whatever the registry holds today
    assert all(head["seconds"] > 0 and (head["rows"], head["predict_rows"]) == (500, 200)
               for head in result["heads"].values())
    for n in ("32", "96"):
        memory = result["memory"][n]
        assert memory["embedded"] == int(n) and memory["peak_rss_mib"] > 0 and memory["workers_peak_rss_mib"] > 0
    assert set(result["targets"]) == set(TARGETS)
    assert all(isinstance(target["met"], bool) for target in result["targets"].values())
    assert result["environment"]["torch_threads"] >= 1 and result["environment"]["workers"] == 1
    assert result["cpu_per_image"]["decode"] > 0 and result["cpu_per_image"]["forward"] > 0

    printed = capsys.readouterr().out
    assert "embed / backbone-only" in printed and "paper loop" in printed and "targets" in printed
    assert "bound: " in printed and "embed / bound" in printed
    assert json.loads(out.read_text())["stages"]["embed"]["images"] == 32


def test_cli_parses_bench_options():
    args = build_parser().parse_args(["bench", "--image-size", "224", "--n", "128", "--device", "cpu",
                                      "--json", "b.json"])
    assert (args.image_size, args.n, args.device, args.json, args.heads_n) == (224, 128, "cpu", "b.json", 25000)
    assert args.func.__name__ == "cmd_bench"


@pytest.mark.parametrize("name, reason", [("results.txt", "must end in .json"), ("missing/results.json",
                                           "is in a folder that does not exist"), ("folder.json", "is a folder")])
def test_a_bad_json_path_is_refused_before_anything_is_measured(tmp_path, monkeypatch, capsys, name, reason):
    (tmp_path / "folder.json").mkdir()
    monkeypatch.setattr(bench_module, "run_stages", lambda *a: pytest.fail("measured before checking --json"))
    assert main(["bench", "--json", str(tmp_path / name)]) == 2
    assert f"--json {tmp_path / name} {reason}" in capsys.readouterr().err


def test_spec_fills_in_its_defaults_and_refuses_too_little():
    spec = BenchSpec(image_size=224, heads_n=300)
    assert (spec.n, spec.heads_predict_n, spec.memory_n) == (default_n(224), 300, (2000, 20000))
    assert spec.baseline_environment and BenchSpec(n=7, baseline_environment={}).baseline_environment == {}
    assert default_n(64) == 2048 and default_n(1024) == 4 * 64  # at least four batches
    for wrong in ({"n": 0}, {"heads_n": len(SUBSETS) - 1}, {"memory_n": (10,)}):
        with pytest.raises(GanprovError, match="need n >= 1"):
            BenchSpec(**wrong)


def stage(rate: float) -> dict:
    return {"images": 64, "seconds": 64 / rate, "images_per_s": rate}


def memory(peak: float) -> dict:
    return {"rss_before_mib": 100.0, "peak_rss_mib": peak, "workers_peak_rss_mib": 50.0, "seconds": 1.0}


def made_up_result(memory_growth: float, torchrun: bool, decode_ms: float = 1.0, forward_ms: float = 9.0) -> dict:
    """A result as run_stages leaves it, with chosen rates: embed 100 img/s, backbone 80, paper loop 50; the
    bound is 2 cores / (decode + forward) per image: 200 img/s by default."""
    stages = {"backbone_only": stage(80), "embed": stage(100) | {"setup_seconds": 0.5}, "paper_loop": stage(50)}
    if torchrun:
        stages["embed_torchrun"] = stage(120) | {"processes": 2}
    return {"image_size": 32, "source_size": 48, "n": 64, "heads_n": 500, "heads_predict_n": 200, "workers": 1,
            "memory_n": [10, 20], "memory_image_size": 16, "baseline_torch_threads": 2, "stages": stages,
            "heads": {"logreg": {"columns": 512, "fit_seconds": 1.0, "predict_seconds": 0.5, "seconds": 1.5}},
            "memory": {"10": memory(200.0), "20": memory(200.0 * memory_growth)},
            "environment": {"device": "cpu", "cpu_count": 2, "torch_threads": 2, "torch_interop_threads": 2,
                            "workers": 1, "batch_size": 64, "load_average": [0.5, 0.4, 0.3], "torch": "2",
                            "thread_env": {}},
            "load_average_end": [0.6, 0.5, 0.4], "others_cpu_share": 0.02,
            "cpu_per_image": {"decode": decode_ms / 1e3, "forward": forward_ms / 1e3}}


def test_ratios_are_checked_against_the_targets_and_tabled():
    result = made_up_result(memory_growth=1.0, torchrun=True)
    result["ratios"], result["targets"] = ratios_and_targets(result)
    assert result["ratios"]["embed / backbone-only"] == pytest.approx(1.25)
    assert result["ratios"]["embed, torchrun / paper loop"] == pytest.approx(2.4)
    assert set(result["targets"]) == set(TARGETS) and all(t["met"] for t in result["targets"].values())
    printed = table(result)
    assert "all targets met" in printed and "embed, torchrun × 2" in printed and "2% of the 2 CPUs" in printed

    result = made_up_result(memory_growth=1.5, torchrun=False)  # one process: no torchrun targets
    result["ratios"], result["targets"] = ratios_and_targets(result)
    assert set(result["targets"]) == set(TARGETS) - {"embed, torchrun / backbone-only", "embed, torchrun / paper loop"}
    assert not result["targets"]["memory 2nd / 1st"]["met"]
    assert table(result).endswith("targets NOT met: memory 2nd / 1st\nother processes used 2% of the 2 CPUs "
                                  "during this bench")


def test_embed_near_a_bound_below_the_backbone_meets_its_target():
    """embed / backbone-only 0.8 misses 0.95 at 224 px, unless decoding caps every loop below the backbone
    and embed is within 5 % of that bound."""
    result = made_up_result(memory_growth=1.0, torchrun=False)
    result["image_size"], result["stages"]["embed"] = 224, stage(64) | {"setup_seconds": 0.5}
    for decode_ms, forward_ms, met in ((1.0, 9.0, False), (20.0, 10.0, True), (20.0, 7.0, False)):
        result["cpu_per_image"] = {"decode": decode_ms / 1e3, "forward": forward_ms / 1e3}
        ratios, targets = ratios_and_targets(result)  # bounds: 200, 66.7 and 74.1 img/s
        assert ratios["embed / bound"] == pytest.approx(64 / (2 / (decode_ms + forward_ms) * 1e3))
        assert targets["embed / backbone-only"]["met"] is met


def test_synthetic_inputs_are_an_audit_layout_and_a_loadable_run(tmp_path):
    from ganprov.core.layout import discover
    from ganprov.core.run_folder import RunFolder
    from ganprov.features.checkpoint import load_model

    paths = synthetic_images(tmp_path / "data", 12, 16, distinct=5)
    assert paths == sorted(paths) and len(paths) == 12
    assert list(discover(tmp_path / "data").subsets) == list(SUBSETS)
    synthetic_run(tmp_path / "run", image_size=16)
    _, meta = load_model(RunFolder(tmp_path / "run").checkpoint)
    assert (meta["subsets"], meta["image_size"], meta["epoch"], meta["regime"]) == (list(SUBSETS), 16, 0, "audit")


def test_the_memory_stages_fresh_interpreter_starts_from_the_package():
    # `python -m ganprov.pipeline.bench`: the entry point the memory stage starts and waits on.
    process = MemoryProcess()
    try:
        process.wait_ready()
    finally:
        process.close()
