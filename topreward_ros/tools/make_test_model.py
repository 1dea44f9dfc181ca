"""topreward-make-test-model DIR: write a tiny random Qwen3-VL checkpoint for tests and the offline demo."""

from __future__ import annotations

import argparse
import sys

from ..options import int_between, output_folder
from ..synthetic.model import SHAPES, write_test_model

PROG = "topreward-make-test-model"
MAX_SEED = 2**32 - 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("directory", type=output_folder, help="output checkpoint directory")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="model size (default: tiny)")
    parser.add_argument("--seed", type=int_between(0, MAX_SEED), default=0,
                        help=f"weight initialisation seed, from 0 to {MAX_SEED} (default %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = write_test_model(args.directory, shape=args.shape, seed=args.seed)
    print(f"wrote a random {args.shape} Qwen3-VL checkpoint to {path} (scores from it are meaningless)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
