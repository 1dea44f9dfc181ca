"""What every program shares: its parser and how it ends (a TopRewardError is one ``prog: error: ...`` line
and exit status 2, never a traceback). Light on purpose: the camera player uses it without the model's stack."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from ..errors import TopRewardError



def program_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A program's parser: its name, and its module docstring as the description, kept as written."""
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a program's body; a TopRewardError becomes one 'prog: error: ...' line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(levelname)s: %(message)s")
    try:
        return body()
    except TopRewardError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def entry_point(prog: str, build_parser: Callable[[], argparse.ArgumentParser],
                body: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """The ``main(argv=None)`` a console script calls: ``body`` of the parsed options, run by ``run``."""
    def main(argv: list[str] | None = None) -> int:
        return run(prog, lambda: body(build_parser().parse_args(argv)))

    return main
