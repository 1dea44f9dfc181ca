"""The TOPReward lifecycle node: camera topics in, reward / progress / success / diagnostics out.

A thin adapter around the ROS-free stream layer. The executor thread runs the subscriptions,
services and parameter changes: each message's header is checked and its stamp read, and only
the messages the sampler takes are decoded (``stream.live.LiveEpisode``). One worker thread
(``LiveEpisode.score``) takes every frame sampled since its last update, scores them in one
update (``stream.reward_stream.RewardStream``) and publishes it. A slow model therefore merges
updates; it never loses a sampled frame. /diagnostics: ``diagnostics``; the program: ``node_main``.
"""

from __future__ import annotations

import gc
import threading
from functools import partial

from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from ..errors import TopRewardError
from ..method.frames import resize_frame
from ..method.model import RewardModel, load_reward_model
from ..method.prompts import fill_prompt
from ..sources.image_messages import ImageConversionError, check_message, header_stamp, message_to_rgb
from ..stream.episode_stream import EpisodeStream, tiled
from ..stream.live import LiveEpisode
from ..stream.reward_stream import RewardStream
from ..stream.update import RewardUpdate
from ..stream.settings import LIVE_SETTINGS, checked_live
from .diagnostics import Diagnostics, NodeStatus
from .parameters import BY_NAME, PARAMETERS, camera_topics, settings_from
from .services import RESET_MESSAGE
from .update_listener import UPDATE_QOS

NODE_NAME = "topreward"
THROTTLE_SECONDS = 5.0


class StartupInterrupted(BaseException):
    """A signal shut the context down while a transition ran (the model loading, most likely). Raised
    out of the transition, not returned: rclpy could only log a failed transition on a dead context.
    ``node_main.main`` says so in one line and exits 0. A BaseException, so that rclpy's callback handling
    (which turns an Exception into an ERROR transition) lets it through."""


class RewardNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._state = "unconfigured"   # the lifecycle state, as this node's transitions left it
        self._error = ""
        self._warned_zero_stamps = False
        self._reward_model: RewardModel | None = None
        self._rewards: RewardStream | None = None
        self._live: LiveEpisode | None = None   # the episode's state: id, task, frames waiting, counters
        self._worker: threading.Thread | None = None
        self._camera_subscriptions: list[Subscription] = []
        self._outputs: dict[str, LifecyclePublisher] = {}
        self._topics: list[str] = []
        self._transports: list[str] = []
        self._topic_names: list[str] = []   # the subscriptions' resolved names (namespace, remapping), while active
        self._last_episode = 0              # the episode id to go on from after a cleanup
        self._max_pixels = 0
        self._qos_warned: set[str] = set()
        self._pending_task = self._value("task").strip()  # the task before configure (no tokenizer yet)

        self._diagnostics = Diagnostics(self, self._value("diagnostics_period"), self._status)
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
            topics, transports = camera_topics(p("image_topics"), p("transport"), p("qos_reliability"))
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

    def _create_outputs(self) -> dict[str, LifecyclePublisher]:
        """Outputs relative to the node (~/reward, ...): /topreward/reward by default, and a launch
        namespace (or __ns remapping) moves them with the node's services. ~/update keeps its last updates
        for a subscriber that matches late (``UPDATE_QOS``)."""
        kinds = {"reward": Float32, "progress": Float32, "success": Bool, "update": String}
        return {name: self.create_lifecycle_publisher(kind, f"~/{name}", UPDATE_QOS if name == "update" else 10)
                for name, kind in kinds.items()}

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
        live = self._live
        assert live is not None  # the lifecycle activates only a configured node
        live.open()  # a new episode: re-activation never continues the last one
        self._worker = threading.Thread(target=live.score, name="topreward-inference", daemon=True,
                                        args=(self._rewards, self._publish, self._on_failed_update))
        self._worker.start()
        self._error = ""
        self._check_not_interrupted("activate")
        self._state = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_scoring()
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unconfigure()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_scoring()
        self._unconfigure()
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_scoring()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def _stop_scoring(self) -> None:
        """Undo activate: the worker ends, the cameras are unsubscribed."""
        self._stop_worker()
        self._remove_subscriptions()

    def _unconfigure(self) -> None:
        """Undo configure: the outputs go, the model is released."""
        self._remove_outputs()
        self._release_model()

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
            try:
                if param.name == "task":
                    self._check_task(param.value)
                elif param.name in LIVE_SETTINGS:
                    checked_live({param.name: param.value})
            except TopRewardError as exc:
                return SetParametersResult(successful=False, reason=f"{param.name} refused: {exc}")
        for param in params:
            if param.name == "task":
                self._set_task(param.value)
            elif param.name in LIVE_SETTINGS and self._live is not None:
                self._live.change_setting(param.name, param.value)  # the worker applies it between updates
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
        response.message = RESET_MESSAGE.format(episode)
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
            live.note_zero_stamp()
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

    # -- output ---------------------------------------------------------------------------
    def _on_failed_update(self, exc: Exception) -> None:
        self.get_logger().error(f"update failed ({type(exc).__name__}): {exc}", throttle_duration_sec=THROTTLE_SECONDS)

    def _publish(self, update: RewardUpdate) -> bool:
        """Publish one update; False once the context is shut down (a signal arrived)."""
        try:
            self._outputs["reward"].publish(Float32(data=float(update.reward)))
            self._outputs["progress"].publish(Float32(data=float(update.progress)))
            self._outputs["success"].publish(Bool(data=bool(update.success)))
            self._outputs["update"].publish(String(data=update.to_json()))
        except Exception:  # publishers die with the context on shutdown
            if not self.context.ok():
                return False
            raise
        return True

    def _status(self) -> NodeStatus:
        live, model = self._live, self._reward_model
        snapshot = live.snapshot() if live is not None else None
        return NodeStatus(state=self._state, error=self._error, model=str(self._value("model")),
                          quantization=self._value("quantization"), device=str(model.device) if model else "",
                          max_frames=self._value("max_frames"), topics=tuple(self._topic_names),
                          transports=tuple(self._transports), task=snapshot.task if snapshot else self._pending_task,
                          live=snapshot)
