"""A consumer of the reward node's updates (``<node>/update``, JSON), spun on its own thread, and the QoS of that
topic."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from ..stream.update import RewardUpdate, UpdateRecordError

# The QoS of ``~/update``, the node's and RewardClient's: reliable, and transient local, so that a subscriber matched
# after the node published (discovery takes a moment) still gets the node's last 10 updates. A volatile subscriber
# (``ros2 topic echo``, UpdateListener) matches it too, and gets the updates from its match on.
UPDATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def frames_covered(updates: Sequence[RewardUpdate]) -> int:
    """Sampled frames the updates cover (an update merging several frames says how many in ``added``)."""
    return sum(update.added for update in updates)


class ReceivedUpdates:
    """The updates received so far, parsed from the node's JSON; a subscription callback adds, another thread
    reads. A record that is not a RewardUpdate's is kept and raised to the reader: raised in the callback, it
    would end the executor's spin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._updates: list[RewardUpdate] = []
        self._error: UpdateRecordError | None = None

    def add(self, text: str) -> RewardUpdate | None:
        """The update published as ``text``; None (and the error kept) if it is not one."""
        try:
            update = RewardUpdate.from_json(text)
        except UpdateRecordError as exc:
            with self._lock:
                self._error = self._error or exc
            return None
        with self._lock:
            self._updates.append(update)
        return update

    def so_far(self) -> list[RewardUpdate]:
        """The updates received so far; the error of the first bad record if one came."""
        with self._lock:
            if self._error is not None:
                raise self._error
            return list(self._updates)

    def frames_covered(self) -> int:
        return frames_covered(self.so_far())


class UpdateListener:
    """Collects every update the node publishes (``updates``); ``on_update`` is called with each."""

    def __init__(self, node_name: str = "/topreward", on_update: Callable[[RewardUpdate], None] | None = None):
        self.update_topic = f"{node_name.rstrip('/')}/update"
        self.on_update = on_update
        self.updates = ReceivedUpdates()
        self.node = rclpy.create_node("topreward_update_listener")
        self.node.create_subscription(String, self.update_topic, self._on_update, 100)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_update(self, msg: String) -> None:
        update = self.updates.add(msg.data)
        if update is not None and self.on_update:
            self.on_update(update)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join()
        self.node.destroy_node()
