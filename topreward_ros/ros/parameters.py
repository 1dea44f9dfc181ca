"""The reward node's parameters: RewardSettings' fields (stream/settings.py) plus the node's own (topics, QoS,
diagnostics, start-up), with their defaults, ranges and descriptions taken from there.

config/reward.yaml and the README's parameter table are checked against this table by the tests.
"""

from __future__ import annotations

import dataclasses

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidTopicNameException
from rclpy.validate_topic_name import validate_topic_name

from ..errors import TopRewardError
from ..sources.image_messages import DEFAULT_IMAGE_TOPIC, DEFAULT_MAX_PIXELS
from ..stream.settings import RewardSettings, setting_default

RELIABILITIES = ("best_effort", "reliable")
TRANSPORTS = ("raw", "compressed")


class ConfigError(TopRewardError, ValueError):
    """A parameter value the node cannot run with."""


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    structural: bool = True           # read at configure; refused while configured (cleanup, set, configure)
    float_range: tuple[float, float] | None = None
    int_range: tuple[int, int, int] | None = None   # from, to, step
    choices: tuple[str, ...] | None = None

    def descriptor(self) -> ParameterDescriptor:
        text = self.description + (f" One of: {', '.join(self.choices)}." if self.choices else "")
        descriptor = ParameterDescriptor(description=text)
        if self.float_range:
            descriptor.floating_point_range = [FloatingPointRange(from_value=self.float_range[0],
                                                                  to_value=self.float_range[1])]
        if self.int_range:
            descriptor.integer_range = [IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1],
                                                     step=self.int_range[2])]
        return descriptor


SETTINGS = {field.name: (field, spec) for field, spec in RewardSettings.specs()}
RESOLUTION_SIDES = ("resolution_width", "resolution_height")  # the node's two parameters of `resolution`


def setting(name: str, side: int | None = None) -> Param:
    """The node parameter of RewardSettings field ``name`` (``side`` 0/1: one side of the resolution)."""
    field, spec = SETTINGS[name]
    default = setting_default(field)
    if side is not None:
        default = default[side]
    doc = spec.doc if side is None else f"Fixed frame {('width', 'height')[side]} fed to the model " \
                                         f"(multiple of {spec.step})."
    kind = field.type if side is None else "int"
    bounds = spec.bounds
    return Param(RESOLUTION_SIDES[side] if side is not None else name, default, doc, structural=not spec.live,
                 float_range=bounds if kind == "float" else None,
                 int_range=(int(bounds[0]), int(bounds[1]), spec.step) if kind == "int" and bounds else None,
                 choices=spec.choices)


def settings_from(values: dict) -> RewardSettings:
    """The RewardSettings the node's parameter ``values`` (name -> value) give."""
    given = {name: values[name] for name in SETTINGS if name in values}
    if all(side in values for side in RESOLUTION_SIDES):
        given["resolution"] = tuple(values[side] for side in RESOLUTION_SIDES)
    return RewardSettings(**given)


def parameter_values(settings: RewardSettings) -> dict:
    """The node's parameter values (name -> value) that give ``settings``: the inverse of ``settings_from``."""
    values = {name: getattr(settings, name) for name in SETTINGS if name != "resolution"}
    values.update(zip(RESOLUTION_SIDES, settings.resolution))
    return values


PARAMETERS = (
    setting("model"),
    setting("quantization"),
    setting("dtype"),
    setting("device"),
    Param("task", "", "Instruction the robot is given. Empty: the node waits. Changing it starts a new episode.",
          structural=False),
    Param("image_topics", [DEFAULT_IMAGE_TOPIC], "Camera topics; several are paired by header stamp and tiled."),
    Param("transport", ["raw"], "Per topic: raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage); "
          "one entry applies to every topic."),
    Param("qos_reliability", "best_effort", "Camera subscription reliability (best_effort also hears reliable "
          "publishers).", choices=RELIABILITIES),
    Param("qos_depth", 5, "Camera subscription queue depth.", int_range=(1, 100, 1)),
    setting("camera_slop"),
    setting("sample_fps"),
    setting("max_stamp_gap"),
    setting("stamp_tolerance"),
    Param("max_image_pixels", DEFAULT_MAX_PIXELS, "Images declaring more pixels (width x height) are dropped and "
          "counted before decoding.", int_range=(1, 1_000_000_000, 1)),
    setting("resolution", 0),
    setting("resolution", 1),
    setting("max_frames"),
    setting("prompts_file"),
    setting("ensemble_size"),
    setting("contrastive"),
    setting("bare_prompt"),
    setting("reward_type"),
    setting("success_threshold"),
    setting("success_consecutive"),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", float_range=(0.1, 60.0)),
    Param("autostart", True, "Configure and activate on start-up (false: drive the lifecycle yourself)."),
)

BY_NAME = {p.name: p for p in PARAMETERS}


def camera_topics(image_topics: list[str], transport: list[str], qos_reliability: str) -> tuple[list[str], list[str]]:
    """The camera topics and one transport per topic, from the node's parameters of these names."""
    topics = [t.strip() for t in image_topics]
    transports = [t.strip() for t in transport]
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
    if qos_reliability not in RELIABILITIES:
        raise ConfigError(f"qos_reliability must be one of {', '.join(RELIABILITIES)}")
    return topics, transports
