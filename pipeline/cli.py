"""The `ganprov` command line: one sub-command per step, each usable on its own."""
from __future__ import annotations

import argparse
import sys

from features.train import TrainSettings

DEFAULTS = TrainSettings(data="")


def add_stage1_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data folder with real/ (and generated/, generated_unknown/)")
    parser.add_argument("--run", required=True, help="run folder for checkpoints, embeddings, heads, reports")
    parser.add_argument("--weights", default=DEFAULTS.weights,
                        help="initial backbone weights: imagenet (torch hub cache), none (random) or a state-dict PATH")
    parser.add_argument("--train-on", default=DEFAULTS.train_on, choices=("real", "real+generated"))
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr)
    parser.add_argument("--image-size", type=int, default=DEFAULTS.image_size)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    add_runtime_options(parser)
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted training")
    parser.add_argument("--force", action="store_true", help="redo finished steps")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=DEFAULTS.device, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    parser.add_argument("--workers", type=int, default=DEFAULTS.workers, help="image-decoding worker processes")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping it")


def train_settings(args) -> TrainSettings:
    return TrainSettings(data=args.data, weights=args.weights, train_on=args.train_on, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, image_size=args.image_size, seed=args.seed,
                         device=args.device, workers=args.workers, amp=args.amp, strict=args.strict)


def cmd_train(args) -> None:
    from features.train import train
    train(train_settings(args), args.run, resume=args.resume, force=args.force)


def cmd_embed(args) -> None:
    from features.embed import embed
    embed(args.data, args.run, batch_size=args.batch_size, workers=args.workers, device=args.device,
          strict=args.strict, force=args.force)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganprov", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="fine-tune ResNet-18 on the real subsets")
    add_stage1_options(train)
    train.set_defaults(func=cmd_train)

    embed = commands.add_parser("embed", help="write 512-d embeddings of every image to RUN/embeddings.h5")
    embed.add_argument("--data", required=True)
    embed.add_argument("--run", required=True)
    embed.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    add_runtime_options(embed)
    embed.add_argument("--force", action="store_true", help="embed again even when the file is complete")
    embed.set_defaults(func=cmd_embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    from features.backbone import WeightsUnavailable
    from features.checkpoint import CheckpointError
    from features.embed import EmbeddingError
    from features.layout import LayoutError
    from features.train import TrainingError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (LayoutError, TrainingError, EmbeddingError, CheckpointError, WeightsUnavailable) as error:
        print(f"ganprov: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganprov: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
