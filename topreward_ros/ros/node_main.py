"""reward_node's entry point: run the node until SIGINT or SIGTERM, then end cleanly with status 0.

Importing the node takes seconds (torch, transformers); a signal in that time ends the program at
once with status 0 (nothing is running yet that needs a clean-up). From then on a signal never
raises into the running code: an exception raised by a Python signal handler can surface inside a
C++ call (rclpy, torch) and abort the process. rclpy's own signal handlers are not installed: they shut
the context down from a thread of their own, which can land inside the native node constructor and leave
a half-made node ("Failed to fini rosout publisher"). The handler here is Python's, so it runs on the main
thread between two bytecodes, never inside a C++ call: it shuts the context down, which ends the executor
once the callback in progress (a model load, a transition) returns. The executor wakes at least every
``WAKE_S`` so that a signal that arrives while it waits is handled. A second signal leaves at once.
"""

import logging
import os
import signal
import sys
import threading

WAKE_S = 0.2


def _exit_now(signum, frame):
    os._exit(0)  # raising inside an import can surface as a traceback or abort in C++: leave directly


def main(args=None) -> int:
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from .reward_node import RewardNode, StartupInterrupted

    logging.basicConfig(level=logging.WARNING, format="[topreward] %(levelname)s: %(message)s")
    stopping = threading.Event()
    started = threading.Event()  # rclpy.init has returned: the context can be shut down

    def request_stop(signum, frame):
        if stopping.is_set():
            os._exit(0)
        stopping.set()
        if started.is_set():
            rclpy.try_shutdown()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    node = None
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        started.set()
        if not stopping.is_set():
            node = RewardNode()
    except ParameterException as exc:
        print(f"reward_node: error: bad parameter: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    except Exception:  # the context went away under a signal while the node was built
        if not (stopping.is_set() or not rclpy.ok()):
            raise
    if node is None or stopping.is_set() or not rclpy.ok():
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        return 0
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=WAKE_S)
    except StartupInterrupted as interrupted:
        print(f"reward_node: start-up interrupted by a signal during {interrupted}; exiting", file=sys.stderr)
    except ExternalShutdownException:
        pass
    except Exception:  # a callback cut short by the shutdown; anything else is a bug
        if rclpy.ok():
            raise
    finally:
        node.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
