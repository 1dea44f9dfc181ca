"""A consumer of the reward node's updates (``<node>/update``, JSON), spun on its own thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String


def frames_covered(updates: list[dict]) -> int:
    """Sampled frames the updates cover (an update merging several frames says how many in ``added``)."""
    return sum(int(update.get("added", 1)) for update in updates)


class UpdateListener:
    """Collects every update the node publishes; ``on_update`` is called with each (as a dict)."""

    def __init__(self, node_name: str = "/topreward", on_update: Callable[[dict], None] | None = None):
        self.update_topic = f"{node_name.rstrip('/')}/update"
        self.on_update = on_update
        self.updates: list[dict] = []
        self.lock = threading.Lock()
        self.node = rclpy.create_node("topreward_update_listener")
        self.node.create_subscription(String, self.update_topic, self._on_update, 100)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_update(self, msg: String) -> None:
        update = json.loads(msg.data)
        with self.lock:
            self.updates.append(update)
        if self.on_update:
            self.on_update(update)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def frames_covered(self) -> int:
        with self.lock:
            return frames_covered(self.updates)

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join()
        self.node.destroy_node()
