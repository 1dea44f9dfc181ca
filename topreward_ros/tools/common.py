"""Command-line options shared by the tools, and their error handling."""

from __future__ import annotations

import argparse
import logging
import sys

from ..evaluation.curve import DEFAULT_PREFIXES, METHODS
from ..errors import TopRewardError
from ..method.frames import DEFAULT_RESOLUTION, FRAME_MULTIPLE, MAX_FRAME_SIDE
from ..method.model import DEFAULT_MODEL, DTYPES, QUANTIZATIONS, ModelConfig
from ..method.scoring import ScoringConfig
from ..options import Size, int_between

MAX_PREFIXES = 10_000


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"hub id or checkpoint directory (default {DEFAULT_MODEL})")
    group.add_argument("--quantization", choices=QUANTIZATIONS, default="none", help="weights (default none)")
    group.add_argument("--dtype", choices=("auto", *DTYPES), default="auto", help="default: bf16 on GPU, fp32 on CPU")
    group.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scoring")
    group.add_argument("--prompts-file", help="YAML with a 'prompts:' list (default: the 10 packaged variants)")
    group.add_argument("--ensemble", type=int_between(1, 64), default=1, metavar="N",
                       help="mean over the first N prompts (default 1)")
    group.add_argument("--contrastive", action="store_true", help="reward = log P(True) - log P(False)")
    group.add_argument("--bare", action="store_true", help="render without role markers")
    group.add_argument("--resolution", type=Size(FRAME_MULTIPLE, MAX_FRAME_SIDE, FRAME_MULTIPLE),
                       default="x".join(map(str, DEFAULT_RESOLUTION)), metavar="WIDTHxHEIGHT",
                       help=f"fixed frame size, multiples of {FRAME_MULTIPLE} up to {MAX_FRAME_SIDE} "
                            "(default %(default)s)")


def add_curve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("curve")
    group.add_argument("--prefixes", type=int_between(2, MAX_PREFIXES), default=DEFAULT_PREFIXES, metavar="K",
                       help="number of prefixes on the curve (default %(default)s)")
    group.add_argument("--method", choices=METHODS, default="stream",
                       help="stream: cached engine (default); reference: full recompute per prefix")


def model_config(args) -> ModelConfig:
    return ModelConfig(model=args.model, dtype=args.dtype, quantization=args.quantization, device=args.device)


def scoring_config(args) -> ScoringConfig:
    return ScoringConfig.from_options(prompts_file=args.prompts_file, ensemble_size=args.ensemble,
                                      contrastive=args.contrastive, role_markers=not args.bare,
                                      resolution=args.resolution)


def settings_of(args, reward_model) -> dict:
    """The model and scoring settings of a run, for reports."""
    return {"model": args.model, "device": str(reward_model.device), "dtype": str(reward_model.dtype),
            "quantization": args.quantization, "ensemble": args.ensemble, "contrastive": args.contrastive,
            "bare": args.bare, "resolution": "x".join(map(str, args.resolution)), "prompts_file": args.prompts_file}


def run(prog: str, body, argv=None) -> int:
    """Run a tool's body; a TopRewardError becomes one 'prog: error: ...' line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(levelname)s: %(message)s")
    try:
        return body(argv)
    except TopRewardError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
