"""The TOPReward lifecycle node: camera topics in, reward / progress / success / diagnostics out.

A thin adapter around the ROS-free stream layer. The executor thread runs the subscriptions:
each message's header is checked and its stamp read, and only the messages the sampler takes
are decoded (``stream.live.LiveEpisode``). One worker thread takes every frame sampled since
its last update, scores them in one update (``stream.reward_stream.RewardStream``) and
publishes it. A slow model therefore merges updates; it never loses a sampled frame.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import statistics
import sys
import threading
import time
from collections import deque
from functools import partial

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import InvalidTopicNameException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.validate_topic_name import validate_topic_name
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from ..errors import TopRewardError
from ..method.frames import resize_frame
from ..method.model import load_reward_model
from ..method.prompts import fill_prompt
from ..sources.image_messages import ImageConversionError, check_message, header_stamp, message_to_rgb
from ..stream.episode_stream import EpisodeStream, tiled
from ..stream.live import LiveEpisode
from ..stream.reward_stream import RewardStream, RewardUpdate
from .parameters import BY_NAME, PARAMETERS, RELIABILITIES, TRANSPORTS, settings_from

NODE_NAME = "topreward"
LATENCY_WINDOW = 50
STALL_SECONDS = 5.0        # frames arriving but no update (or no frames at all) this long: WARN
FAILURES_FOR_ERROR = 3     # updates failing in a row before /diagnostics says ERROR
THROTTLE_SECONDS = 5.0
MESSAGE_TYPES = {"raw": "sensor_msgs/msg/Image", "compressed": "sensor_msgs/msg/CompressedImage"}  # by transport


class ConfigError(TopRewardError, ValueError):
    """A parameter value the node cannot run with."""


class StartupInterrupted(BaseException):
    """A signal shut the context down while a transition ran (the model loading, most likely). Raised
    out of the transition, not returned: rclpy could only log a failed transition on a dead context.
    ``main`` says so in one line and exits 0. A BaseException, so that rclpy's callback handling
    (which turns an Exception into an ERROR transition) lets it through."""


class RewardNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._lock = threading.Lock()
        self._state = "unconfigured"   # the lifecycle state, as this node's transitions left it
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last_update: RewardUpdate | None = None
        self._error = ""
        self._warned_zero_stamps = False
        self._zero_stamps = 0
        self._active_since: float | None = None
        self._reward_model = None
        self._rewards: RewardStream | None = None
        self._live: LiveEpisode | None = None   # the episode's state: id, task, frames waiting, counters
        self._worker: threading.Thread | None = None
        self._camera_subscriptions = []
        self._outputs = {}
        self._topics: list[str] = []
        self._topic_names: list[str] = []   # the subscriptions' resolved names (namespace, remapping), while active
        self._last_episode = 0              # the episode id to go on from after a cleanup
        self._max_pixels = 0
        self._qos_warned: set[str] = set()
        self._pending_task = self._value("task").strip()  # the task before configure (no tokenizer yet)

        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(self._value("diagnostics_period"), self._publish_diagnostics)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_subscription(String, "~/task", self._on_task, 10)
        if self._value("autostart"):
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # -- lifecycle ------------------------------------------------------------------------
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _check_not_interrupted(self, stage: str) -> None:
        if not self.context.ok():
            raise StartupInterrupted(stage)

    def _fail(self, stage: str, exc: Exception) -> TransitionCallbackReturn:
        self._check_not_interrupted(stage)  # a signal shut the context down mid-transition: not an error
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = text if isinstance(exc, TopRewardError) else f"{type(exc).__name__}: {text}"
        self._error = f"{stage} failed: {reason}"
        self.get_logger().error(self._error)
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self._value
        try:
            topics, transports = self._camera_topics()
            settings = settings_from({param.name: p(param.name) for param in PARAMETERS})
            self.get_logger().info(f"loading {settings.model} (quantization {settings.quantization}) ...")
            self._reward_model = load_reward_model(settings.model_config())
            rewards = RewardStream.from_settings(settings, self._reward_model)
            task = rewards.check_task(self._pending_task) if self._pending_task else ""
            outputs = self._create_outputs()
        except Exception as exc:  # noqa: BLE001 - any failure is a failed transition, said once
            self._release_model()
            return self._fail("configure", exc)

        to_frame = tiled(message_to_rgb)

        def convert(messages):
            return resize_frame(to_frame(messages), settings.resolution)

        stream = EpisodeStream(len(topics), convert, settings.sample_fps, settings.camera_slop,
                               settings.max_stamp_gap, settings.stamp_tolerance)
        self._max_pixels = p("max_image_pixels")
        self._topics, self._transports = topics, transports
        self._rewards, self._outputs = rewards, outputs
        self._live = LiveEpisode(stream, task, backlog=settings.max_frames, last_episode=self._last_episode)
        self._error = ""
        self._check_not_interrupted("configure")
        self.get_logger().info(f"configured: {self._reward_model.describe()}, cameras {topics}")
        self._state = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def _create_outputs(self) -> dict:
        """Outputs relative to the node (~/reward, ...): /topreward/reward by default, and a launch
        namespace (or __ns remapping) moves them with the node's services."""
        kinds = {"reward": Float32, "progress": Float32, "success": Bool, "update": String}
        return {name: self.create_lifecycle_publisher(kind, f"~/{name}", 10) for name, kind in kinds.items()}

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            qos = QoSProfile(depth=self._value("qos_depth"), history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.VOLATILE,
                             reliability=(ReliabilityPolicy.RELIABLE if self._value("qos_reliability") == "reliable"
                                          else ReliabilityPolicy.BEST_EFFORT))
            for index, (topic, transport) in enumerate(zip(self._topics, self._transports)):
                kind = CompressedImage if transport == "compressed" else Image
                events = SubscriptionEventCallbacks(incompatible_qos=partial(self._on_incompatible_qos, index))
                self._camera_subscriptions.append(self.create_subscription(
                    kind, topic, partial(self._on_image, index), qos, event_callbacks=events))
        except Exception as exc:  # noqa: BLE001 - any failure is a failed transition, said once
            self._remove_subscriptions()
            return self._fail("activate", exc)
        self._topic_names = [subscription.topic_name for subscription in self._camera_subscriptions]
        self._live.open()  # a new episode: re-activation never continues the last one
        self._active_since = time.monotonic()
        self._worker = threading.Thread(target=self._work, name="topreward-inference", daemon=True)
        self._worker.start()
        self._error = ""
        self._check_not_interrupted("activate")
        self._state = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._remove_subscriptions()
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._remove_outputs()
        self._release_model()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._remove_subscriptions()
        self._remove_outputs()
        self._release_model()
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._remove_subscriptions()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def _remove_subscriptions(self) -> None:
        for subscription in self._camera_subscriptions:
            self.destroy_subscription(subscription)
        self._camera_subscriptions = []
        self._topic_names = []

    def _remove_outputs(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}

    def _release_model(self) -> None:
        """Drop the engine and the model, and give the GPU memory back."""
        if self._live is not None:
            self._pending_task = self._live.task or self._pending_task
            self._last_episode = self._live.episode
        self._rewards = None
        self._live = None
        self._reward_model = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def stop(self) -> None:
        """Stop scoring at once (shutdown, signals): the worker ends before the context goes."""
        self._stop_worker()

    def _stop_worker(self) -> None:
        if self._live is not None:
            self._live.close()
        worker, self._worker = self._worker, None
        if worker is not None and worker.ident is not None and worker is not threading.current_thread():
            worker.join()

    # -- parameters and control -----------------------------------------------------------
    def _value(self, name: str):
        return self.get_parameter(name).value

    def _camera_topics(self) -> tuple[list[str], list[str]]:
        topics = [t.strip() for t in self._value("image_topics")]
        transports = [t.strip() for t in self._value("transport")]
        if not topics or not all(topics):
            raise ConfigError("image_topics is empty: give at least one camera topic")
        for topic in topics:
            try:
                validate_topic_name(topic)
            except InvalidTopicNameException as exc:
                raise ConfigError(f"image topic {topic!r} is not a valid ROS topic name: {exc}") from exc
        if not transports:
            raise ConfigError("transport is empty: give raw or compressed (one for all topics, or one per topic)")
        if len(transports) == 1:
            transports *= len(topics)
        if len(transports) != len(topics):
            raise ConfigError(f"transport has {len(transports)} entries for {len(topics)} image_topics: "
                              "give one per topic, or one for all")
        bad = [t for t in transports if t not in TRANSPORTS]
        if bad:
            raise ConfigError(f"unknown transport {bad[0]!r}: use raw or compressed")
        if self._value("qos_reliability") not in RELIABILITIES:
            raise ConfigError(f"qos_reliability must be one of {', '.join(RELIABILITIES)}")
        return topics, transports

    def _on_set_parameters(self, params) -> SetParametersResult:
        configured = self._state in ("inactive", "active")
        for param in params:
            spec = BY_NAME.get(param.name)
            if spec is None:
                continue
            if spec.choices and param.value not in spec.choices:
                return SetParametersResult(successful=False,
                                           reason=f"{param.name} must be one of {', '.join(spec.choices)}")
            if spec.structural and configured and param.value != self._value(param.name):
                return SetParametersResult(successful=False, reason=(
                    f"{param.name} is read at configure: clean up the node (ros2 lifecycle set ... cleanup), "
                    "set it, then configure again"))
            if param.name == "task":
                try:
                    self._check_task(param.value)
                except TopRewardError as exc:
                    return SetParametersResult(successful=False, reason=f"task refused: {exc}")
        for param in params:
            if param.name == "task":
                self._set_task(param.value)
            elif self._rewards is not None and param.name == "reward_type":
                self._rewards.reward_type = param.value
            elif self._rewards is not None and param.name == "success_threshold":
                self._rewards.success.threshold = param.value
            elif self._rewards is not None and param.name == "success_consecutive":
                self._rewards.success.consecutive = param.value
        return SetParametersResult(successful=True)

    def _check_task(self, task: str) -> str:
        """The stripped task; raises if it is too long or holds special tokens (checked fully once configured)."""
        task = task.strip()
        if not task:
            return task
        if self._rewards is not None:
            return self._rewards.check_task(task)
        fill_prompt("{task}", task)  # the length check; special tokens need the tokenizer (at configure)
        return task

    def _on_task(self, msg: String) -> None:
        """A task on ~/task sets the task parameter (checked and applied by ``_on_set_parameters``),
        so that `ros2 param get` shows the task in force."""
        result = self.set_parameters([Parameter("task", Parameter.Type.STRING, msg.data.strip())])[0]
        if not result.successful:
            self.get_logger().error(f"task on ~/task refused: {result.reason.removeprefix('task refused: ')}",
                                    throttle_duration_sec=THROTTLE_SECONDS)

    def _set_task(self, task: str) -> None:
        task = task.strip()
        live = self._live
        current = live.task if live is not None else self._pending_task
        if task == current:
            return
        self._pending_task = task
        if live is not None:
            live.reset(task)
        summary = task if len(task) <= 80 else task[:77] + "..."
        self.get_logger().info(f"task {summary!r}; new episode" if task else "task cleared; waiting")

    def _on_reset(self, request, response):
        live = self._live
        if live is None:
            response.success = False
            response.message = "not configured: nothing to reset"
            return response
        episode = live.reset()
        response.success = True
        response.message = f"episode {episode} started"
        return response

    # -- input ----------------------------------------------------------------------------
    def _on_incompatible_qos(self, camera: int, event) -> None:
        topic = self._topic_names[camera] if camera < len(self._topic_names) else self._topics[camera]
        if topic not in self._qos_warned:
            self._qos_warned.add(topic)
            self.get_logger().warning(
                f"{topic}: a publisher's QoS is incompatible with this subscription "
                f"(qos_reliability={self._value('qos_reliability')}); the camera is probably best effort: "
                "set qos_reliability:=best_effort")

    def _on_image(self, camera: int, msg) -> None:
        live = self._live
        if live is None:
            return
        live.note_message()
        topic = self._topic_names[camera]
        try:
            stamp, fell_back = header_stamp(msg, self.get_clock().now().nanoseconds * 1e-9)
            check_message(msg, self._max_pixels)
        except ImageConversionError as exc:
            live.note_bad_message()
            self.get_logger().warning(f"{topic}: dropped a message: {exc}", throttle_duration_sec=THROTTLE_SECONDS)
            return
        if fell_back:
            self._zero_stamps += 1
            if not self._warned_zero_stamps:
                self._warned_zero_stamps = True
                self.get_logger().warning(f"{topic}: header stamps are zero (the driver does not set them); "
                                          "using the receive time instead")
        added = live.add(camera, stamp, msg)
        for error in added.errors:
            self.get_logger().warning(f"{topic}: dropped a message: {error}", throttle_duration_sec=THROTTLE_SECONDS)
        if added.restarted:
            self.get_logger().info("header stamps went backwards or jumped: new episode",
                                   throttle_duration_sec=THROTTLE_SECONDS)

    # -- inference ------------------------------------------------------------------------
    def _work(self) -> None:
        live, rewards = self._live, self._rewards
        while (batch := live.take()) is not None:
            if batch.index != rewards.episode:
                rewards.reset(batch.index)
            try:
                update = rewards.update(batch.sampled(), batch.task)
            except Exception as exc:  # noqa: BLE001 - an update must never take the thread down
                live.record_failure()
                self.get_logger().error(f"update failed ({type(exc).__name__}): {exc}",
                                        throttle_duration_sec=THROTTLE_SECONDS)
                continue
            if update is None:  # the stride skipped these frames: the episode is unchanged, nothing is new
                live.record_skipped(len(batch.frames))
                continue
            if not live.is_current(update.episode):
                continue  # the user reset the episode while it was scored
            live.record_update(update.merged)
            with self._lock:
                self._latencies.append(update.latency_ms)
                self._last_update = update
            if not self._publish(update):
                return

    def _publish(self, update: RewardUpdate) -> bool:
        """Publish one update; False once the context is shut down (a signal arrived)."""
        try:
            self._outputs["reward"].publish(Float32(data=float(update.reward)))
            self._outputs["progress"].publish(Float32(data=float(update.progress)))
            self._outputs["success"].publish(Bool(data=bool(update.success)))
            self._outputs["update"].publish(String(data=json.dumps(update.as_dict())))
        except Exception:  # publishers die with the context on shutdown
            if not self.context.ok():
                return False
            raise
        return True

    # -- diagnostics ----------------------------------------------------------------------
    def _type_mismatch(self) -> str | None:
        """A publisher on a camera topic whose type is not the subscription's (DDS never connects them)."""
        for topic, transport in zip(self._topic_names, self._transports):
            wanted = MESSAGE_TYPES[transport]
            for publisher in self.get_publishers_info_by_topic(topic):
                if publisher.topic_type != wanted:
                    fix = next((t for t, kind in MESSAGE_TYPES.items() if kind == publisher.topic_type), None)
                    hint = (f"set transport:={fix} (the transport parameter, one entry per topic)" if fix else
                            f"publish {' or '.join(MESSAGE_TYPES.values())}")
                    return f"{topic} is published as {publisher.topic_type} but subscribed as {wanted}: {hint}"
        return None

    def _health(self, live: LiveEpisode | None, counters, task: str, episode: int, now: float) -> tuple[int, str]:
        if self._error:
            return DiagnosticStatus.ERROR, self._error
        if self._state != "active" or live is None:
            return DiagnosticStatus.OK, f"{self._state}: not scoring"
        if counters.failing_in_a_row >= FAILURES_FOR_ERROR:
            return DiagnosticStatus.ERROR, f"updates keep failing ({counters.failing_in_a_row} in a row)"
        mismatch = self._type_mismatch()
        if mismatch:
            return DiagnosticStatus.WARN, mismatch
        if not task:
            return DiagnosticStatus.WARN, "waiting for a task (parameter task or ~/task)"
        since = self._active_since or now
        if live.last_message is None and now - since > STALL_SECONDS:
            return DiagnosticStatus.WARN, f"no camera message on {', '.join(self._topic_names)}"
        if live.last_message is not None and now - live.last_message < STALL_SECONDS:
            last_sample = max(live.last_sample or since, since)
            if now - last_sample > STALL_SECONDS:
                return DiagnosticStatus.WARN, ("camera messages arrive but none become frames (bad messages, "
                                               "unpaired cameras or stamps?)")
        if counters.backlog_dropped:
            return DiagnosticStatus.WARN, f"the model fell {self._value('max_frames')} frames behind: " \
                                          f"{counters.backlog_dropped} frames dropped"
        return DiagnosticStatus.OK, f"scoring episode {episode}"

    def _publish_diagnostics(self) -> None:
        live = self._live
        with self._lock:
            latencies = list(self._latencies)
            last = self._last_update
        if live is not None:
            counters, task, episode, waiting = live.snapshot()
        else:
            counters, task, episode, waiting = None, self._pending_task, 0, 0
        now = time.monotonic()
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name().lstrip('/')}: reward",
                                  hardware_id=str(self._value("model")))
        status.level, status.message = self._health(live, counters, task, episode, now)
        model = self._reward_model
        values = {
            "state": self._state, "model": self._value("model"), "image_topics": ", ".join(self._topic_names),
            "device": str(model.device) if model else "", "quantization": self._value("quantization"),
            "task": task, "episode": episode,
            "frames_in_episode": last.frames if last and last.episode == episode else 0,
            "frame_stride": last.stride if last else 1, "frames_waiting": waiting,
            "zero_stamps": self._zero_stamps,
            "update_latency_ms_last": f"{latencies[-1]:.1f}" if latencies else "",
            "update_latency_ms_median": f"{statistics.median(latencies):.1f}" if latencies else "",
            "last_update_frames_added": last.added if last else 0,
            "last_prompt_scores": json.dumps([round(s, 4) for s in last.true_logprobs] if last else []),
        }
        if counters is not None:
            values.update({"messages_received": counters.received, "bad_messages": counters.bad_messages,
                           "frames_sampled": counters.sampled, "updates": counters.updates,
                           "merged_updates": counters.merged, "failed_updates": counters.failed_updates,
                           "frames_skipped_by_stride": counters.stride_skipped,
                           "frames_discarded_by_reset": counters.discarded,
                           "frames_dropped_backlog": counters.backlog_dropped, "stamp_restarts": counters.restarts,
                           "late_messages_dropped": counters.late})
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        try:
            self._diagnostics.publish(array)
        except Exception:  # the context went away under a signal
            if self.context.ok():
                raise


def main(args=None) -> int:
    """Run the node until SIGINT or SIGTERM, then end cleanly with status 0.

    A signal never raises into the running code: an exception raised by a Python signal handler can
    surface inside a C++ call (rclpy, torch) and abort the process. rclpy's own handlers shut the
    context down, which ends the executor once the callback in progress (a model load, a transition)
    returns; the handler below only notes the request, for a signal that comes before rclpy.init.
    A second signal leaves at once."""
    logging.basicConfig(level=logging.WARNING, format="[topreward] %(levelname)s: %(message)s")
    stopping = threading.Event()

    def request_stop(signum, frame):
        if stopping.is_set():
            os._exit(0)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)  # rclpy.init chains its handlers to these
    node = None
    try:
        rclpy.init(args=args)
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
        executor.spin()
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
