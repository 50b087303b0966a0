"""The `ganprov` command line: one sub-command per step, each usable on its own."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import ganprov
from ganprov.core.errors import GanprovError
from ganprov.core.schema import FIT_ON
from ganprov.core.settings import (
    CONTENT_RESOLUTION,
    TRAIN_ON,
    TrainSettings,
    axis,
    device_name,
    fraction,
    non_negative_int,
    pixel_size,
    positive_float,
    positive_int,
    seed_int,
    whole_number,
    window_choice,
)
from ganprov.core.volumes import PRESETS

DEFAULTS = TrainSettings(data="")


class HeadNames:
    """The names in models.HEADS, and "all", as argparse choices. Read only when argparse looks at them (a
    --head value to check, or `fit --help`): importing the heads imports scikit-learn, a second that every
    other command and `--help` would wait for."""

    def __iter__(self):
        from ganprov.models import HEADS
        return iter([*HEADS, "all"])

    def __contains__(self, name) -> bool:
        return name in list(self)


def option(*names, **settings) -> argparse.ArgumentParser:
    """A parent parser holding one option, for the sub-commands that share it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(*names, **settings)
    return parent


# Options several sub-commands share, defined once.
DATA = option("--data", required=True, help="data folder with real/ (and generated/, generated_unknown/)")
RUN = option("--run", required=True, help="run folder for checkpoints, embeddings, heads, reports")
BATCH_SIZE = option("--batch-size", type=positive_int, default=DEFAULTS.batch_size)
FORCE = option("--force", action="store_true", help="redo the steps already done")
TRUTH = option("--truth", help="header-less filename,label CSV for generated_unknown, to score the heads")


def add_stage1_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=DEFAULTS.weights,
                        help="initial backbone weights: imagenet (torch hub cache), none (random) or a state-dict PATH")
    parser.add_argument("--train-on", default=DEFAULTS.train_on, choices=TRAIN_ON,
                        help="images the backbone learns from; auto (default): real and real+generated both "
                             "trained when generated/ exists, the better on held-out generated images kept")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs)
    parser.add_argument("--lr", type=positive_float, default=DEFAULTS.lr)
    parser.add_argument("--image-size", type=pixel_size, default=DEFAULTS.image_size,
                        help=f"the images' size for the network (default {DEFAULTS.image_size}, the paper's)")
    parser.add_argument("--content-resolution", default=DEFAULTS.content_resolution, choices=CONTENT_RESOLUTION,
                        help="full (default): the network sees --image-size; half: half of it, without the finest "
                             "detail (better on two benchmarks, worse on two others: README)")
    parser.add_argument("--seed", type=seed_int, default=DEFAULTS.seed)
    parser.add_argument("--min-heldout", type=non_negative_int, default=DEFAULTS.min_heldout, metavar="N",
                        help="held-out validation images per subset: a fifth, but at least N (half of a subset "
                             f"smaller than 2N; default {DEFAULTS.min_heldout}); 0 for a plain fifth")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=DEFAULTS.augment,
                        help="identity-preserving augmentation (crops, blur, contrast) while training")
    parser.add_argument("--window", type=window_choice, default=DEFAULTS.window, metavar="WINDOW",
                        help="DICOM and NIfTI: file (the DICOM's own VOI window, else the volume's 0.5-99.5 "
                             f"percentiles), a preset ({', '.join(PRESETS)}) or CENTER,WIDTH in the file's "
                             "units (HU for CT; a negative centre as --window=-600,1500); match how the generated images "
                             "were windowed")
    parser.add_argument("--slice-axis", type=axis, default=DEFAULTS.slice_axis,
                        help="NIfTI volumes: the axis they are sliced along, one image per slice (default 2)")
    add_runtime_options(parser)
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted training")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device_name, default=DEFAULTS.device,
                        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    parser.add_argument("--workers", type=non_negative_int,
                        help=f"image-decoding worker processes (default: {DEFAULTS.workers}; "
                             "none under torchrun on CPUs)")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping it")


def decoding_workers(args) -> int:
    """--workers, or the default for --device, which asks torch (features/train.py): only commands that import
    torch anyway call this."""
    from ganprov.features.train import decoding_workers
    return decoding_workers(args.workers, args.device)


def train_settings(args) -> TrainSettings:
    return TrainSettings(data=args.data, weights=args.weights, train_on=args.train_on, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, image_size=args.image_size,
                         content_resolution=args.content_resolution, seed=args.seed, min_heldout=args.min_heldout,
                         device=args.device, workers=decoding_workers(args),
                         amp=args.amp, strict=args.strict, augment=args.augment, window=args.window,
                         slice_axis=args.slice_axis)


def cmd_train(args) -> None:
    from ganprov.features.train import train
    train(train_settings(args), args.run, resume=args.resume, force=args.force)


def cmd_embed(args) -> None:
    from ganprov.features.embed import embed
    embed(args.data, args.run, batch_size=args.batch_size, workers=decoding_workers(args), device=args.device,
          strict=args.strict, force=args.force)


def head_params(args) -> dict:
    """Head options given on the command line (only those set: each head keeps its own defaults)."""
    params = {key: value for key in ("pca", "k", "seed", "alpha", "content") if (value := getattr(args, key, None)) is not None}
    for flag in ("one_generator_per_subset", "exact"):
        if getattr(args, flag, False):
            params[flag] = True
    return params


def add_group_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alpha", type=fraction, help="fingerprint: significance level below which a generator "
                        "group is attributed; otherwise label 0, undetermined (default 0.01)")
    parser.add_argument("--one-generator-per-subset", action="store_true",
                        help="fingerprint: exactly one generator per candidate subset, matched one-to-one "
                             "(the challenge's setting); by default any number, several per subset allowed")


def cmd_fit(args) -> None:
    from ganprov.models import HEADS, parameters

    from .run_heads import fit_head
    params = head_params(args)
    if args.head in HEADS:  # one head named: an option it does not take is a slip, not silently dropped
        taken = parameters()
        unused = sorted(set(params) - taken[args.head] - {"seed"})
        if unused:
            flags = ", ".join("--" + key.replace("_", "-") for key in unused)
            takers = sorted(n for n, names in taken.items() if set(unused) & names)
            note = "; the content head behind its votes keeps its defaults" if args.head == "fingerprint" else ""
            raise GanprovError(f"--head {args.head} does not take {flags} (they are for --head "
                               f"{' or '.join(takers)}{note})")
    for name in (list(HEADS) if args.head == "all" else [args.head]):
        fit_head(args.run, name, fit_on=args.fit_on, params=params)


def cmd_predict(args) -> None:
    from ganprov.core.run_folder import RunFolder

    from .predict import predict
    from .run_heads import fitted_heads
    for name in (fitted_heads(RunFolder(args.run)) if args.head == "all" else [args.head]):
        predict(args.run, name, abstain=args.abstain)


def cmd_evaluate(args) -> None:
    from .evaluate import evaluate
    evaluate(args.run, head=args.head, truth=args.truth)


def cmd_report(args) -> None:
    from .report import write_report
    from .run_all import DEFAULT_HEAD
    # submission.csv is the default head's agreement with RUN/second-opinion, when `run` made one
    write_report(args.run, args.head or DEFAULT_HEAD, gradcam=args.gradcam,
                 second_opinion=args.head in (None, DEFAULT_HEAD))


def cmd_run(args) -> None:
    from .run_all import run_all
    run_all(train_settings(args), args.run, truth=args.truth, force=args.force, head_params=head_params(args),
            gradcam=args.gradcam, second_opinion=args.second_opinion)


def cmd_demo(args) -> None:
    from .demo import demo
    demo(args.run, epochs=args.epochs, workers=args.workers)


def cmd_score(args) -> None:
    from .score import score
    score(args.run, args.head, args.images, out=args.out, embeddings_out=args.embeddings, batch_size=args.batch_size,
          workers=decoding_workers(args), device=args.device, strict=args.strict, second_opinion=args.second_opinion)


def cmd_agree(args) -> None:
    from .agree import agree
    agree(args.sources, args.out, truth=args.truth, rule="either" if args.either else "all")


def cmd_bench(args) -> None:
    from .bench import bench
    bench(image_size=args.image_size, n=args.n, device=args.device, heads_n=args.heads_n, out=args.json,
          workers=args.workers, source_size=args.source_size, memory_n=tuple(args.memory_n),
          heads_predict_n=args.heads_predict_n, processes=args.processes, baseline_environment=args.environment)


def check_run_folder(path: str, writable: bool) -> None:
    """Refuse --run at once, not after an hour of training: a file, or a folder ganprov cannot write in."""
    existing = next(p for p in (Path(path), *Path(path).parents) if p.exists())  # RUN, or where it will be made
    if not existing.is_dir():
        raise GanprovError(f"--run {path}: {existing} is a file, not a folder")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        raise GanprovError(f"--run {path}: {existing} is read-only, and ganprov writes its results there")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganprov", description=ganprov.__doc__.split("\n", 1)[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {ganprov.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stage1 = [DATA, RUN, BATCH_SIZE, FORCE]  # train's and run's

    train = commands.add_parser("train", parents=stage1, help="fine-tune ResNet-18 on the real subsets")
    add_stage1_options(train)
    train.set_defaults(func=cmd_train)

    embed = commands.add_parser("embed", parents=stage1,
                                help="write 512-d embeddings of every image to RUN/embeddings.h5")
    add_runtime_options(embed)
    embed.set_defaults(func=cmd_embed)

    fit = commands.add_parser("fit", parents=[RUN], help="fit a head on RUN/embeddings.h5 (seconds, no images, no torch)")
    # A metavar, so that argparse reads the choices only for help and checks, not while building the parser.
    fit.add_argument("--head", required=True, choices=HeadNames(), metavar="HEAD",
                     help="the head to fit, one of %(choices)s")
    fit.add_argument("--fit-on", default="auto", choices=("auto", *FIT_ON),
                     help="labelled rows to fit on; auto (default): each the file holds, the best on held-out rows kept")
    fit.add_argument("--pca", type=positive_int, help="logreg: PCA components before the classifier")
    fit.add_argument("--k", type=positive_int, help="knn: neighbours")
    fit.add_argument("--exact", action="store_true",
                     help="knn: exact neighbour search past 10,000 labelled rows too (default: approximate there)")
    fit.add_argument("--seed", type=seed_int, help="seed for heads that use randomness")
    fit.add_argument("--content", choices=("knn", "cosine", "logreg"),
                     help="fingerprint: the head whose per-image votes attribute each group (default logreg)")
    add_group_options(fit)
    fit.set_defaults(func=cmd_fit)

    predict = commands.add_parser("predict", parents=[RUN], help="attribute generated_unknown with a fitted head")
    predict.add_argument("--head", required=True, help="a fitted head's name, or all")
    predict.add_argument("--abstain", type=fraction, nargs="?", const=0.99, metavar="QUANTILE",
                         help="label 0 the images farther from every labelled image than this quantile of "
                              "held-out ones (default 0.99): images no candidate subset explains")
    predict.set_defaults(func=cmd_predict)

    evaluate = commands.add_parser("evaluate", parents=[RUN, TRUTH],
                                   help="metrics of every fitted head (or one), side by side")
    evaluate.add_argument("--head", help="only this head")
    evaluate.set_defaults(func=cmd_evaluate)

    report = commands.add_parser("report", parents=[RUN], help="write RUN/report.html from what the run folder holds")
    report.add_argument("--head", help="the head whose attributions the report shows (default: the regime's default head)")
    report.add_argument("--gradcam", action="store_true",
                        help="Grad-CAM of each group's sample of images: where the backbone saw its subset (torch)")
    report.set_defaults(func=cmd_report)

    score = commands.add_parser("score", parents=[RUN, BATCH_SIZE],
                                help="attribute any folder of images with RUN's checkpoint and a head")
    score.add_argument("--head", required=True)
    score.add_argument("--images", required=True, help="folder of images, flat or nested")
    score.add_argument("--out", help="CSV path,label,confidence (default RUN/scores/FOLDER.csv)")
    score.add_argument("--embeddings", help="HDF5 file for the embeddings (default: beside the CSV)")
    score.add_argument("--second-opinion", action=argparse.BooleanOptionalAction,
                       help="also score with RUN/second-opinion and keep in --out only the labels both give, 0 "
                            "elsewhere; each backbone's own in OUT.first.csv and OUT.second-opinion.csv (default: "
                            "on where `run` trained a second opinion, as in the audit regime)")
    add_runtime_options(score)
    score.set_defaults(func=cmd_score)

    run = commands.add_parser("run", parents=[*stage1, TRUTH], help="train, embed, fit every head, predict, evaluate, report")
    add_stage1_options(run)
    add_group_options(run)
    run.add_argument("--gradcam", action=argparse.BooleanOptionalAction, default=True,
                     help="Grad-CAM maps in the report (default; skipped with a note when grad-cam is missing)")
    run.add_argument("--second-opinion", action=argparse.BooleanOptionalAction,
                     help="also train a backbone with the other --augment setting (RUN/second-opinion) and keep in "
                          "submission.csv only the attributions both give, label 0 elsewhere; twice the training "
                          "(default: on in the audit regime, without generated/; off in the challenge regime)")
    run.set_defaults(func=cmd_run)

    demo = commands.add_parser("demo", help="run everything on a built-in synthetic data set (CPU, minutes)")
    demo.add_argument("--run", default="runs/demo")
    demo.add_argument("--epochs", type=positive_int, default=3)
    demo.add_argument("--workers", type=non_negative_int)
    demo.set_defaults(func=cmd_demo)

    agree = commands.add_parser("agree", parents=[TRUTH], help="keep only the attributions that two or more runs give alike "
                                "(label 0 where they differ); CSVs only, seconds")
    agree.add_argument("sources", nargs="+", metavar="RUN_OR_CSV",
                       help="run folders (their submission.csv), filename,label CSVs of the same unknown set, or "
                            "`score` CSVs of the same batch")
    agree.add_argument("--out", required=True, help="the agreed filename,label CSV")
    agree.add_argument("--either", action="store_true",
                       help="an undetermined source abstains: keep the one subset the others give (0 only where two "
                            "give different subsets); for sources that are agreements already, e.g. two `run`s at "
                            "--content-resolution full and half")
    agree.set_defaults(func=cmd_agree)

    bench = commands.add_parser("bench", help="time backbone, embed, the paper loop, heads and memory side by side")
    bench.add_argument("--image-size", type=pixel_size, default=64, help="network input size, e.g. 64 or 224")
    bench.add_argument("--n", type=positive_int, help="images per image stage (default: 2048 at 64 px, 512 at 224 px)")
    bench.add_argument("--device", type=device_name, default=DEFAULTS.device, help="auto, cpu, cuda, ...")
    bench.add_argument("--workers", type=non_negative_int, default=DEFAULTS.workers,
                       help="embed's decoding workers (its default)")
    bench.add_argument("--heads-n", type=positive_int, default=25000, help="embedding rows each head fits on")
    bench.add_argument("--heads-predict-n", type=positive_int, help="rows each head then predicts (default: --heads-n)")
    bench.add_argument("--source-size", type=whole_number(8), default=256,
                       help="pixel size of the synthetic PNGs (at least 8)")
    bench.add_argument("--memory-n", type=positive_int, nargs=2, default=[2000, 20000], metavar=("N1", "N2"),
                       help="numbers of images for the two peak-memory runs of embed")
    bench.add_argument("--processes", type=positive_int,
                       help="processes for the torchrun embed stage (default: one per GPU, else per CPU core; 1: skip it)")
    bench.add_argument("--json", help="also write the results to this JSON file")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    environment = dict(os.environ)  # as ganprov was started: `bench` runs its baselines in it
    # Before any command imports torch, which loads OpenMP: idle OpenMP threads sleep instead of spinning, so
    # the image-decoding workers get the cores between batches. On 2 CPU cores this measured embed at 232 img/s
    # instead of 190 (64 px).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Likewise for OpenBLAS, which scipy and faiss each bring a copy of (loaded later, by the heads): an idle
    # OpenBLAS thread spins for 2^28 cycles by default, and the copies spinning in turn took the cores from
    # each other. Every head fit and predicted on 25,000 rows: 8.5–9.1 s → 7.4–7.9 s (2 cores).
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    args = build_parser().parse_args(argv, argparse.Namespace(environment=environment))
    under_torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if under_torchrun and args.func not in (cmd_train, cmd_embed, cmd_run):
        # N copies of a stage-2 command would write the same files at once.
        print(f"ganprov: error: under torchrun only train, embed and run share the work; run "
              f"`ganprov {args.command}` as one process", file=sys.stderr)
        return 2
    try:
        if args.command not in ("bench", "agree"):  # the commands without --run; score with --out elsewhere only reads it
            check_run_folder(args.run, writable=not (args.command == "score" and args.out))
        args.func(args)
        if under_torchrun:  # torch is imported only where a process group can exist
            from ganprov.features import distributed
            distributed.finish()
    except GanprovError as error:
        print(f"ganprov: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganprov: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
