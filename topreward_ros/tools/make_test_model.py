"""topreward-make-test-model DIR: write a tiny random Qwen3-VL checkpoint for tests and the offline demo."""

from __future__ import annotations

import argparse
import sys

from ..synthetic.model import SHAPES, write_test_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", help="output checkpoint directory")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="model size (default: tiny)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    args = parser.parse_args(argv)
    path = write_test_model(args.directory, shape=args.shape, seed=args.seed)
    print(f"wrote a random {args.shape} Qwen3-VL checkpoint to {path} (scores from it are meaningless)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
