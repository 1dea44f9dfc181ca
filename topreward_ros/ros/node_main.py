"""reward_node's entry point. Importing the node takes seconds (torch, transformers); a SIGINT or
SIGTERM in that time ends the program quietly with status 0, as it does once the node runs."""

import signal
import sys


def _quiet_exit(signum, frame):
    raise SystemExit(0)


def main() -> int:
    signal.signal(signal.SIGINT, _quiet_exit)
    signal.signal(signal.SIGTERM, _quiet_exit)
    from .reward_node import main as run_node

    return run_node()


if __name__ == "__main__":
    sys.exit(main())
