"""Command-line options shared by the tools, and their error handling."""

from __future__ import annotations

import argparse
import logging
import math
import sys

from ..evaluation.curve import DEFAULT_PREFIXES, METHODS
from ..errors import TopRewardError
from ..method.frames import DEFAULT_RESOLUTION, parse_resolution
from ..method.model import DEFAULT_MODEL, DTYPES, QUANTIZATIONS, ModelConfig
from ..method.scoring import ScoringConfig

MAX_PREFIXES = 10_000


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def float_between(low: float, high: float):
    """argparse type: a finite number in [low, high]."""
    def parse(text: str) -> float:
        value = _number(text, float)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a number from {low:g} to {high:g}, got {text}")
        return value
    return parse


def int_between(low: int, high: int, even: bool = False):
    """argparse type: an integer in [low, high] (and even, if asked)."""
    def parse(text: str) -> int:
        value = _number(text, int)
        if not low <= value <= high or (even and value % 2):
            kind = "an even integer" if even else "an integer"
            raise argparse.ArgumentTypeError(f"must be {kind} from {low} to {high}, got {text}")
        return value
    return parse


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL, help=f"hub id or checkpoint directory (default {DEFAULT_MODEL})")
    group.add_argument("--quantization", choices=QUANTIZATIONS, default="none", help="weights (default none)")
    group.add_argument("--dtype", choices=("auto", *DTYPES), default="auto", help="default: bf16 on GPU, fp32 on CPU")
    group.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scoring")
    group.add_argument("--prompts-file", help="YAML with a 'prompts:' list (default: the 10 packaged variants)")
    group.add_argument("--ensemble", type=int_between(1, 64), default=1, metavar="N", help="mean over the first N prompts (default 1)")
    group.add_argument("--contrastive", action="store_true", help="reward = log P(True) - log P(False)")
    group.add_argument("--bare", action="store_true", help="render without role markers")
    group.add_argument("--resolution", default="x".join(map(str, DEFAULT_RESOLUTION)),
                       help="fixed frame size WIDTHxHEIGHT, multiples of 32 (default %(default)s)")


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
                                      resolution=parse_resolution(args.resolution))


def settings_of(args, reward_model) -> dict:
    """The model and scoring settings of a run, for reports."""
    return {"model": args.model, "device": str(reward_model.device), "dtype": str(reward_model.dtype),
            "quantization": args.quantization, "ensemble": args.ensemble, "contrastive": args.contrastive,
            "bare": args.bare, "resolution": args.resolution, "prompts_file": args.prompts_file}


def run(prog: str, body, argv=None) -> int:
    """Run a tool's body; a TopRewardError becomes one 'prog: error: ...' line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(levelname)s: %(message)s")
    try:
        return body(argv)
    except TopRewardError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
