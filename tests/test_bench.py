"""`ganprov bench` on a tiny input: every stage runs and reports; speed is never asserted."""
import json

from ganprov.models import HEADS
from ganprov.pipeline.bench import bench
from ganprov.pipeline.bench.report import TARGETS
from ganprov.pipeline.cli import build_parser


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

    printed = capsys.readouterr().out
    assert "embed / backbone-only" in printed and "paper loop" in printed and "targets" in printed
    assert json.loads(out.read_text())["stages"]["embed"]["images"] == 32


def test_cli_parses_bench_options():
    args = build_parser().parse_args(["bench", "--image-size", "224", "--n", "128", "--device", "cpu",
                                      "--json", "b.json"])
    assert (args.image_size, args.n, args.device, args.json, args.heads_n) == (224, 128, "cpu", "b.json", 25000)
    assert args.func.__name__ == "cmd_bench"
