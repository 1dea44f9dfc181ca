"""The reward node's /diagnostics: one DiagnosticStatus a period, its level and message saying what
needs attention first (a failed transition, failing updates, a camera of the wrong type, no task,
no camera, messages that never become frames, a model falling behind), its values the node's
settings and the live path's counters (``stream.live.Snapshot``)."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from ..stream.live import Snapshot

STALL_SECONDS = 5.0        # frames arriving but no update (or no frames at all) this long: WARN
FAILURES_FOR_ERROR = 3     # updates failing in a row before /diagnostics says ERROR
MESSAGE_TYPES = {"raw": "sensor_msgs/msg/Image", "compressed": "sensor_msgs/msg/CompressedImage"}  # by transport


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    """What the node reports, read at once."""

    state: str                  # the lifecycle state
    error: str                  # why the last transition failed; empty once one succeeds
    model: str
    quantization: str
    device: str                 # of the loaded model; empty while none is
    max_frames: int
    topics: tuple[str, ...]     # the camera subscriptions' resolved names, while active
    transports: tuple[str, ...]
    task: str                   # in force, or to use from the next configure
    live: Snapshot | None       # while configured


class Diagnostics:
    """Publishes ``status()`` on /diagnostics every ``period`` seconds, as ``node``'s status."""

    def __init__(self, node: Node, period: float, status: Callable[[], NodeStatus]):
        self._node = node
        self._status = status
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        node.create_timer(period, self._publish)

    def _publish(self) -> None:
        report = self._status()
        status = DiagnosticStatus(name=f"{self._node.get_fully_qualified_name().lstrip('/')}: reward",
                                  hardware_id=report.model)
        status.level, status.message = self._health(report, time.monotonic())
        status.values = [KeyValue(key=k, value=str(v)) for k, v in status_values(report).items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        try:
            self._publisher.publish(array)
        except Exception:  # the context went away under a signal
            if self._node.context.ok():
                raise

    def _health(self, report: NodeStatus, now: float) -> tuple[int, str]:
        if report.error:
            return DiagnosticStatus.ERROR, report.error
        live = report.live
        if report.state != "active" or live is None:
            return DiagnosticStatus.OK, f"{report.state}: not scoring"
        if live.counters.failing_in_a_row >= FAILURES_FOR_ERROR:
            return DiagnosticStatus.ERROR, f"updates keep failing ({live.counters.failing_in_a_row} in a row)"
        mismatch = self._type_mismatch(report)
        if mismatch:
            return DiagnosticStatus.WARN, mismatch
        if not live.task:
            return DiagnosticStatus.WARN, "waiting for a task (parameter task or ~/task)"
        since = live.opened or now
        if live.last_message is None and now - since > STALL_SECONDS:
            return DiagnosticStatus.WARN, f"no camera message on {', '.join(report.topics)}"
        if live.last_message is not None and now - live.last_message < STALL_SECONDS:
            last_sample = max(live.last_sample or since, since)
            if now - last_sample > STALL_SECONDS:
                return DiagnosticStatus.WARN, ("camera messages arrive but none become frames (bad messages, "
                                               "unpaired cameras or stamps?)")
        if live.counters.backlog_dropped:
            return DiagnosticStatus.WARN, (f"the model fell {report.max_frames} frames behind: "
                                           f"{live.counters.backlog_dropped} frames dropped")
        return DiagnosticStatus.OK, f"scoring episode {live.episode}"

    def _type_mismatch(self, report: NodeStatus) -> str | None:
        """A publisher on a camera topic whose type is not the subscription's (DDS never connects them)."""
        for topic, transport in zip(report.topics, report.transports):
            wanted = MESSAGE_TYPES[transport]
            for publisher in self._node.get_publishers_info_by_topic(topic):
                if publisher.topic_type != wanted:
                    fix = next((t for t, kind in MESSAGE_TYPES.items() if kind == publisher.topic_type), None)
                    hint = (f"set transport:={fix} (the transport parameter, one entry per topic)" if fix else
                            f"publish {' or '.join(MESSAGE_TYPES.values())}")
                    return f"{topic} is published as {publisher.topic_type} but subscribed as {wanted}: {hint}"
        return None


def status_values(report: NodeStatus) -> dict:
    """The status's key-value pairs."""
    live = report.live
    last = live.last_update if live else None
    latencies = live.latencies_ms if live else ()
    episode = live.episode if live else 0
    row = {
        "state": report.state, "model": report.model, "image_topics": ", ".join(report.topics),
        "device": report.device, "quantization": report.quantization, "task": report.task, "episode": episode,
        "frames_in_episode": last.frames if last and last.episode == episode else 0,
        "frame_stride": last.stride if last else 1, "frames_waiting": live.waiting if live else 0,
        "zero_stamps": live.counters.zero_stamps if live else 0,
        "update_latency_ms_last": f"{latencies[-1]:.1f}" if latencies else "",
        "update_latency_ms_median": f"{statistics.median(latencies):.1f}" if latencies else "",
        "last_update_frames_added": last.added if last else 0,
        "last_prompt_scores": json.dumps([round(s, 4) for s in last.true_logprobs] if last else []),
    }
    if live is not None:
        counters = live.counters
        row.update({"messages_received": counters.received, "bad_messages": counters.bad_messages,
                    "frames_sampled": counters.sampled, "updates": counters.updates,
                    "merged_updates": counters.merged, "failed_updates": counters.failed_updates,
                    "frames_skipped_by_stride": counters.stride_skipped,
                    "frames_discarded_by_reset": counters.discarded,
                    "frames_dropped_backlog": counters.backlog_dropped, "stamp_restarts": counters.restarts,
                    "late_messages_dropped": counters.late})
    return row
