"""reward_node's entry point. Importing the node takes seconds (torch, transformers); a SIGINT or
SIGTERM in that time ends the program at once with status 0 (nothing is running yet that needs
a clean-up). Once imported, a signal ends the node cleanly with status 0 (see reward_node.main)."""

import os
import signal
import sys


def _exit_now(signum, frame):
    os._exit(0)  # inside an import a raised exception can surface as a traceback: leave directly


def _exit_cleanly(signum, frame):
    raise SystemExit(0)


def main() -> int:
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    from .reward_node import main as run_node

    signal.signal(signal.SIGINT, _exit_cleanly)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    return run_node()


if __name__ == "__main__":
    sys.exit(main())
