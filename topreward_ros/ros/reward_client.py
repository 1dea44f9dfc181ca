"""RewardClient: a learner's reward by camera stamp, read from the reward node's ``~/update`` records.

The question it answers: what is the reward of the transition that ended at camera stamp t? The node scores a
sampled frame at a time, and each update carries the header stamp of its newest frame, so the update that covers
t is the first update stamped at or after t: the one whose sampling interval (the previous update's stamp, its
stamp] holds t. It scores the episode up to and including every frame the node sampled at or before t (and
nothing sampled after its own stamp). Updates come in the order the node scores its frames, so once that update
has arrived, nothing the node will publish later covers t better: its arrival is how the client knows that the
node has scored every sampled frame up to t. A slow model merges frames into one update; the rule is the same.
A stamp before the first update the client received is answered only when that update starts its episode (else
an update the client never saw may cover it: an error says so).

The client runs its own rclpy context, node and executor thread (the learner's thread blocks only in its own calls,
``reward_at`` until the answer comes), so it works whether or not the caller uses rclpy, and ``close`` (or ``with``)
ends all three.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque

import rclpy
from lifecycle_msgs.srv import GetState
from rclpy.client import Client
from rclpy.exceptions import InvalidTopicNameException
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.validate_full_topic_name import validate_full_topic_name
from std_msgs.msg import String

from ..errors import TopRewardError
from ..stream.update import RewardUpdate, UpdateRecordError
from .services import SERVICE_TIMEOUT, EpisodeStarter, answer
from .update_listener import UPDATE_QOS

KEPT_UPDATES = 3600  # the updates a client keeps to answer from: half an hour at the node's default 2 Hz
READY_POLL_SECONDS = 0.1  # how often wait_until_ready asks the node's lifecycle state
STATE_CALL_TIMEOUT = 2.0  # seconds wait_until_ready waits for one answer before asking again
# Two computations of one header stamp in seconds may differ by float rounding (0.2 us near 1.7e9 s); camera
# frames are never this close.
SAME_STAMP = 1e-6


class RewardTimeout(TopRewardError, TimeoutError):
    """No update covering the stamp came in time, or the node did not become ready in time."""


@dataclasses.dataclass(frozen=True)
class TransitionReward:
    """The answer for one stamp: the update that covers it, and how it relates to the previous answer."""

    stamp: float            # the camera stamp asked about (s)
    update: RewardUpdate    # the update that covers it: the first stamped at or after it
    new_episode: bool       # its episode is not the previous answer's (or the one the last ``reset`` started):
                            # the episode was reset between the two stamps (a reset, a task change, the node's
                            # own restart on stamps that went back or jumped)
    repeated: bool          # the previous answer had this same update (both stamps in one sampling interval)

    @property
    def reward(self) -> float:
        """The update's reward (the node's ``reward_type``)."""
        return self.update.reward


class RewardClient:
    """Rewards by stamp from the reward node ``node`` (its fully qualified name: the launch file's ``/topreward``,
    or ``/robot1/topreward`` under ``namespace:=/robot1``; its topics and services are ``node``/update etc.)."""

    def __init__(self, node: str = "/topreward", kept_updates: int = KEPT_UPDATES):
        if kept_updates < 1:
            raise TopRewardError(f"kept_updates must be at least 1, got {kept_updates}")
        self.node_name = "/" + node.strip("/")
        self.update_topic = f"{self.node_name}/update"
        try:
            validate_full_topic_name(self.update_topic)
        except InvalidTopicNameException:
            raise TopRewardError(f"{node!r} is not a node's name (the reward node's is /topreward, or "
                                 "/robot1/topreward under namespace:=/robot1)") from None
        self._updates: deque[RewardUpdate] = deque(maxlen=kept_updates)
        self._received = 0
        self._error: UpdateRecordError | None = None
        self._previous: RewardUpdate | None = None   # the last answer's update
        self._episode: int | None = None             # the episode the last answer (or reset) was in
        self._arrived = threading.Condition()
        self._context = rclpy.Context()
        rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)  # leave signals alone
        self._node = rclpy.create_node(f"topreward_reward_client_{os.getpid()}_{id(self):x}", context=self._context,
                                       start_parameter_services=False)
        self._subscription = self._node.create_subscription(String, self.update_topic, self._on_update, UPDATE_QOS)
        self._get_state: Client[GetState.Request, GetState.Response] = self._node.create_client(
            GetState, f"{self.node_name}/get_state")
        self._start_episode = EpisodeStarter(self._node, self.node_name)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, name="topreward-reward-client", daemon=True)
        self._thread.start()

    def _on_update(self, msg: String) -> None:
        with self._arrived:
            try:
                self._updates.append(RewardUpdate.from_json(msg.data))
                self._received += 1
            except UpdateRecordError as exc:  # raised here it would end the spin: reward_at raises it
                self._error = self._error or exc
            self._arrived.notify_all()

    # -- the learner's calls ---------------------------------------------------------------
    def wait_until_ready(self, timeout: float = SERVICE_TIMEOUT) -> None:
        """Wait until the node is active and its ``~/update`` publisher has matched this client (then no update
        it publishes is missed); a RewardTimeout naming what is missing if that takes over ``timeout`` s."""
        deadline = time.monotonic() + timeout
        state = "silent (its get_state service did not answer)"
        while True:
            left = deadline - time.monotonic()
            if self._get_state.service_is_ready():
                state = self._lifecycle_state(min(max(left, 0.0), STATE_CALL_TIMEOUT)) or state
            matched = self._subscription.get_publisher_count() > 0
            if state == "active" and matched:
                return
            if time.monotonic() >= deadline:
                why = f"it is {state}" if state != "active" else f"no publisher of {self.update_topic} matched"
                raise RewardTimeout(f"the reward node {self.node_name} is not ready within {timeout:g} s: {why}")
            time.sleep(READY_POLL_SECONDS)

    def _lifecycle_state(self, timeout: float) -> str | None:
        """The node's lifecycle state, or None without an answer within ``timeout`` s. While discovery completes
        an answer can be lost (the request reached the node before its reply could reach this client); the
        question is harmless to repeat, so wait_until_ready asks again."""
        response = answer(self._get_state, GetState.Request(), timeout)
        return None if response is None else response.current_state.label

    def reset(self, task: str | None = None, timeout: float = SERVICE_TIMEOUT) -> int:
        """Start a new episode on the node (with ``task``, set as its ``task`` parameter, if given), as
        topreward-replay does at a marker; the new episode's id. Answers of that episode are not ``new_episode``;
        frames the node sampled and had not scored yet are discarded (it says so in /diagnostics)."""
        episode = self._start_episode(task, timeout)
        with self._arrived:
            self._episode, self._previous = episode, None
        return episode

    def reward_at(self, stamp, timeout: float) -> TransitionReward:
        """The reward of the transition that ended at camera ``stamp`` (s, or a header's builtin_interfaces/Time):
        the first update stamped at or after it, once it has arrived; a RewardTimeout if it has not within
        ``timeout`` s (the camera must go on past ``stamp``: the node scores frames only as they come)."""
        stamp = stamp.sec + stamp.nanosec * 1e-9 if hasattr(stamp, "nanosec") else float(stamp)  # as the node does
        deadline = time.monotonic() + timeout
        with self._arrived:
            while (update := self._covering(stamp)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RewardTimeout(f"no update covers stamp {stamp:.6f} within {timeout:g} s "
                                        f"(last seen: {self._last_seen()})")
                self._arrived.wait(left)
            answer = TransitionReward(stamp, update, new_episode=self._episode not in (None, update.episode),
                                      repeated=update == self._previous)
            self._episode, self._previous = update.episode, update
            return answer

    def _covering(self, stamp: float) -> RewardUpdate | None:
        """The update after the last one stamped before ``stamp``; None until it arrives."""
        if self._error is not None:
            raise self._error
        updates = self._updates
        later = len(updates)
        while later > 0 and updates[later - 1].stamp >= stamp - SAME_STAMP:
            later -= 1
        if later == len(updates):
            return None
        if later == 0 and self._received > len(updates):
            raise TopRewardError(f"stamp {stamp:.6f} is older than the {len(updates)} updates this client keeps "
                                 f"(oldest stamp {updates[0].stamp:.6f}); ask in order, or keep more (kept_updates)")
        if later == 0 and updates[0].frames > updates[0].added:
            # the oldest update seen is not its episode's first: one this client never received may cover stamp
            raise TopRewardError(f"stamp {stamp:.6f} is older than the first update this client received (episode "
                                 f"{updates[0].episode}, stamp {updates[0].stamp:.6f}): ask about stamps after "
                                 "wait_until_ready, or reset() first")
        return updates[later]

    def _last_seen(self) -> str:
        if not self._updates:
            return f"no update on {self.update_topic} yet"
        last = self._updates[-1]
        return f"episode {last.episode}, stamp {last.stamp:.6f}, {self._received} updates"

    # -- shutdown --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the executor thread, destroy the node, shut the client's context down; again, nothing happens."""
        if not self._context.ok():
            return
        self._executor.shutdown()
        self._thread.join()
        self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
