"""The TOPReward lifecycle node: camera topics in, reward / progress / success / diagnostics out.

A thin adapter around the ROS-free engine. Threads: the executor runs the subscriptions
(convert, pair cameras, sample by header stamp) and the diagnostics timer; one worker
thread runs the model. Between them is a one-slot mailbox: the latest sampled frame wins,
so a slow model never builds a queue (each overwritten frame is counted as dropped).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import statistics
import sys
import threading
from collections import deque
from functools import partial

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.event_handler import SubscriptionEventCallbacks
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from ..method.engine import StreamingEngine
from ..stream.episode_stream import EpisodeStream
from ..errors import TopRewardError
from ..stream.online import CausalProgress, SuccessDetector
from ..method.model import ModelConfig, load_reward_model
from ..method.scoring import ScoringConfig
from ..sources.image_messages import ImageConversionError, compressed_to_rgb, image_to_rgb
from .parameters import BY_NAME, PARAMETERS, RELIABILITIES, TRANSPORTS

NODE_NAME = "topreward"
LATENCY_WINDOW = 50


@dataclasses.dataclass
class Sample:
    """A sampled frame waiting for the worker."""

    episode: int
    task: str
    time: float       # seconds since the episode's first frame
    stamp: float      # header stamp (seconds)
    frame: np.ndarray


@dataclasses.dataclass
class Counters:
    received: int = 0
    bad_messages: int = 0
    dropped_frames: int = 0
    updates: int = 0


class RewardNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._mutex = threading.Condition()
        self._counters = Counters()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._episode = 0
        self._task = self.get_parameter("task").value.strip()
        self._mailbox: Sample | None = None
        self._last_scores: list[float] = []
        self._last_stride = 1
        self._frames_in_episode = 0
        self._lifecycle_label = "unconfigured"
        self._error = ""
        self._reward_model = None
        self._engine: StreamingEngine | None = None
        self._worker: threading.Thread | None = None
        self._running = False
        self._camera_subscriptions = []
        self._stream: EpisodeStream | None = None
        self._outputs = {}
        self._qos_warned: set[str] = set()

        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(self.get_parameter("diagnostics_period").value,
                                                    self._publish_diagnostics)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_subscription(String, "~/task", self._on_task, 10)
        if self.get_parameter("autostart").value:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # -- lifecycle ------------------------------------------------------------------------
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self._value
        try:
            topics, transports = self._camera_topics()
            scoring = ScoringConfig.from_options(
                prompts_file=p("prompts_file") or None, ensemble_size=p("ensemble_size"),
                contrastive=p("contrastive"), role_markers=not p("bare_prompt"),
                resolution=(p("resolution_width"), p("resolution_height")))
            model = ModelConfig(model=p("model"), dtype=p("dtype"), quantization=p("quantization"),
                                device=p("device"))
            self.get_logger().info(f"loading {model.model} ({model.quantization}) ...")
            self._reward_model = load_reward_model(model)
            self._engine = StreamingEngine(self._reward_model, scoring, max_frames=p("max_frames"))
        except TopRewardError as exc:
            self._error = str(exc)
            self.get_logger().error(f"configure failed: {exc}")
            self._release_model()
            return TransitionCallbackReturn.FAILURE
        self._topics, self._transports = topics, transports
        self._stream = EpisodeStream(len(topics), p("sample_fps"), p("camera_slop"))
        namespace = p("namespace").rstrip("/")
        outputs = {"reward": Float32, "progress": Float32, "success": Bool, "update": String}
        self._outputs = {name: self.create_lifecycle_publisher(kind, f"{namespace}/{name}", 10)
                            for name, kind in outputs.items()}
        self._error = ""
        self._lifecycle_label = "inactive"
        self.get_logger().info(f"configured: {self._reward_model.describe()}, cameras {topics}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        qos = QoSProfile(depth=self._value("qos_depth"), history=HistoryPolicy.KEEP_LAST,
                         durability=DurabilityPolicy.VOLATILE,
                         reliability=(ReliabilityPolicy.RELIABLE if self._value("qos_reliability") == "reliable"
                                      else ReliabilityPolicy.BEST_EFFORT))
        for index, (topic, transport) in enumerate(zip(self._topics, self._transports)):
            kind = CompressedImage if transport == "compressed" else Image
            events = SubscriptionEventCallbacks(incompatible_qos=partial(self._on_incompatible_qos, topic))
            self._camera_subscriptions.append(self.create_subscription(
                kind, topic, partial(self._on_image, index), qos, event_callbacks=events))
        self._new_episode()
        self._running = True
        self._worker = threading.Thread(target=self._work, name="topreward-inference", daemon=True)
        self._worker.start()
        self._lifecycle_label = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        for subscription in self._camera_subscriptions:
            self.destroy_subscription(subscription)
        self._camera_subscriptions = []
        self._lifecycle_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        self._release_model()
        self._lifecycle_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release_model()
        self._lifecycle_label = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _release_model(self) -> None:
        """Drop the engine and the model, and give the GPU memory back."""
        self._engine = None
        self._reward_model = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _stop_worker(self) -> None:
        with self._mutex:
            self._running = False
            self._mailbox = None
            self._mutex.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    # -- parameters and control -----------------------------------------------------------
    def _value(self, name: str):
        return self.get_parameter(name).value

    def _camera_topics(self) -> tuple[list[str], list[str]]:
        topics = list(self._value("image_topics"))
        transports = list(self._value("transport"))
        if not topics or not all(t.strip() for t in topics):
            raise TopRewardError("image_topics is empty: give at least one camera topic")
        if len(transports) == 1:
            transports *= len(topics)
        if len(transports) != len(topics):
            raise TopRewardError(f"transport has {len(transports)} entries for {len(topics)} image_topics: "
                                 "give one per topic, or one for all")
        bad = [t for t in transports if t not in TRANSPORTS]
        if bad:
            raise TopRewardError(f"unknown transport {bad[0]!r}: use raw or compressed")
        if self._value("qos_reliability") not in RELIABILITIES:
            raise TopRewardError(f"qos_reliability must be one of {', '.join(RELIABILITIES)}")
        return topics, transports

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            spec = BY_NAME.get(param.name)
            if spec and spec.choices and param.value not in spec.choices:
                return SetParametersResult(successful=False,
                                           reason=f"{param.name} must be one of {', '.join(spec.choices)}")
        for param in params:
            if param.name == "task":
                self._set_task(param.value, "parameter")
        return SetParametersResult(successful=True)

    def _on_task(self, msg: String) -> None:
        self._set_task(msg.data, "topic")

    def _set_task(self, task: str, source: str) -> None:
        task = task.strip()
        with self._mutex:
            changed = task != self._task
            self._task = task
        if changed:
            self.get_logger().info(f"task from {source}: {task!r}; new episode" if task else "task cleared; waiting")
            self._new_episode()

    def _on_reset(self, request, response):
        episode = self._new_episode()
        response.success = True
        response.message = f"episode {episode} started"
        return response

    def _new_episode(self) -> int:
        with self._mutex:
            self._episode += 1
            self._mailbox = None
            self._frames_in_episode = 0
            if self._stream is not None:
                self._stream.reset()
            return self._episode

    # -- input ----------------------------------------------------------------------------
    def _on_incompatible_qos(self, topic: str, event) -> None:
        if topic not in self._qos_warned:
            self._qos_warned.add(topic)
            self.get_logger().warning(
                f"{topic}: a publisher's QoS is incompatible with this subscription "
                f"(qos_reliability={self._value('qos_reliability')}); the camera is probably best effort: "
                "set qos_reliability:=best_effort")

    def _on_image(self, camera: int, msg) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        try:
            frame = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        except ImageConversionError as exc:
            with self._mutex:
                self._counters.bad_messages += 1
            self.get_logger().warning(f"{self._topics[camera]}: dropped a message: {exc}",
                                      throttle_duration_sec=5.0)
            return
        with self._mutex:
            self._counters.received += 1
            if not self._task or not self._running:
                return
            for sampled in self._stream.add(camera, stamp, frame):
                if sampled.new_episode:
                    self._episode += 1
                    self.get_logger().info(f"header stamps went backwards: episode {self._episode}")
                if self._mailbox is not None:
                    self._counters.dropped_frames += 1
                self._mailbox = Sample(self._episode, self._task, sampled.time, sampled.stamp, sampled.frame)
                self._mutex.notify_all()

    # -- inference ------------------------------------------------------------------------
    def _work(self) -> None:
        episode = None
        progress = CausalProgress()
        success = SuccessDetector(self._value("success_threshold"), self._value("success_consecutive"))
        previous = None
        while True:
            with self._mutex:
                while self._running and self._mailbox is None:
                    self._mutex.wait()
                if not self._running:
                    return
                sample, self._mailbox = self._mailbox, None
            if sample.episode != episode:
                episode = sample.episode
                self._engine.reset()
                progress.reset()
                success.reset()
                previous = None
            try:
                update = self._engine.push(sample.frame, sample.time, sample.task)
            except TopRewardError as exc:
                self.get_logger().error(f"update failed: {exc}", throttle_duration_sec=5.0)
                continue
            score = update.score.value
            success.threshold = self._value("success_threshold")
            success.consecutive = self._value("success_consecutive")
            normalised = progress.update(score)
            succeeded = success.update(score)
            reward = {"logprob": score, "progress": normalised,
                      "delta": 0.0 if previous is None else score - previous}[self._value("reward_type")]
            previous = score
            with self._mutex:
                if sample.episode != self._episode or not self._running:
                    self._counters.dropped_frames += 1
                    continue
                self._counters.updates += 1
                self._latencies.append(update.total_ms)
                self._last_scores = list(update.score.true_logprobs)
                self._last_stride = update.stride
                self._frames_in_episode = update.num_frames
            self._publish(sample, update, reward, normalised, succeeded)

    def _publish(self, sample: Sample, update, reward: float, progress: float, success: bool) -> None:
        self._outputs["reward"].publish(Float32(data=float(reward)))
        self._outputs["progress"].publish(Float32(data=float(progress)))
        self._outputs["success"].publish(Bool(data=bool(success)))
        self._outputs["update"].publish(String(data=json.dumps({
            "episode": sample.episode, "task": sample.task, "stamp": sample.stamp, "time": sample.time,
            "reward": reward, "score": update.score.value, "progress": progress, "success": success,
            "true_logprobs": list(update.score.true_logprobs), "false_logprobs": list(update.score.false_logprobs),
            "frames": update.num_frames, "stride": update.stride, "latency_ms": update.total_ms})))

    # -- diagnostics ----------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        with self._mutex:
            counters = dataclasses.replace(self._counters)
            latencies = list(self._latencies)
            task, episode, scores = self._task, self._episode, list(self._last_scores)
            frames, stride = self._frames_in_episode, self._last_stride
        status = DiagnosticStatus(name=f"{self.get_name()}: reward", hardware_id=str(self._value("model")))
        if self._error:
            status.level, status.message = DiagnosticStatus.ERROR, f"configure failed: {self._error}"
        elif self._lifecycle_label != "active":
            status.level, status.message = DiagnosticStatus.WARN, f"{self._lifecycle_label}: not scoring"
        elif not task:
            status.level, status.message = DiagnosticStatus.WARN, "waiting for a task (parameter task or ~/task)"
        else:
            status.level, status.message = DiagnosticStatus.OK, f"scoring episode {episode}"
        model = self._reward_model
        values = {
            "state": self._lifecycle_label, "model": self._value("model"),
            "device": str(model.device) if model else "", "quantization": self._value("quantization"),
            "task": task, "episode": episode, "frames_in_episode": frames, "frame_stride": stride,
            "updates": counters.updates, "messages_received": counters.received,
            "dropped_frames": counters.dropped_frames, "bad_messages": counters.bad_messages,
            "update_latency_ms_last": f"{latencies[-1]:.1f}" if latencies else "",
            "update_latency_ms_median": f"{statistics.median(latencies):.1f}" if latencies else "",
            "last_prompt_scores": json.dumps([round(s, 4) for s in scores]),
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)


def main(args=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="[topreward] %(levelname)s: %(message)s")
    rclpy.init(args=args)
    try:
        node = RewardNode()
    except ParameterException as exc:
        print(f"reward_node: error: bad parameter: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop_worker()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
