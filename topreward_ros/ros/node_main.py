"""reward_node's entry point. Importing the node takes seconds (torch, transformers); a SIGINT or
SIGTERM in that time ends the program at once with status 0 (nothing is running yet that needs a
clean-up). From then on reward_node.main handles signals: the node ends cleanly with status 0."""

import os
import signal
import sys


def _exit_now(signum, frame):
    os._exit(0)  # raising inside an import can surface as a traceback or abort in C++: leave directly


def main() -> int:
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    from .reward_node import main as run_node

    return run_node()


if __name__ == "__main__":
    sys.exit(main())
