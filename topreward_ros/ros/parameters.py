"""The reward node's parameters: one table of names, defaults, ranges and descriptions.

config/reward.yaml and the README's parameter table are checked against this table by the tests.
"""

from __future__ import annotations

import dataclasses

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from ..method.engine import DEFAULT_MAX_FRAMES, MAX_FRAMES_RANGE
from ..method.frames import DEFAULT_RESOLUTION, FRAME_MULTIPLE, MAX_FRAME_SIDE
from ..method.model import DEFAULT_MODEL, DTYPES, QUANTIZATIONS
from ..sources.image_messages import DEFAULT_MAX_PIXELS
from ..stream.episode_stream import (CAMERA_SLOP_RANGE, DEFAULT_CAMERA_SLOP, DEFAULT_MAX_GAP, DEFAULT_SAMPLE_FPS,
                                     DEFAULT_STAMP_TOLERANCE, MAX_GAP_RANGE, SAMPLE_FPS_RANGE, STAMP_TOLERANCE_RANGE)
from ..stream.online import (DEFAULT_SUCCESS_CONSECUTIVE, DEFAULT_SUCCESS_THRESHOLD, SUCCESS_CONSECUTIVE_RANGE,
                             SUCCESS_THRESHOLD_RANGE)
from ..stream.reward_stream import REWARD_TYPES

RELIABILITIES = ("best_effort", "reliable")
TRANSPORTS = ("raw", "compressed")


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


PARAMETERS = (
    Param("model", DEFAULT_MODEL, "Hub id or local checkpoint directory of a Qwen3-VL model."),
    Param("quantization", "4bit", "Weights: 4bit (NF4; ViT and lm_head kept), 8bit or none.",
          choices=QUANTIZATIONS),
    Param("dtype", "auto", "Compute dtype; auto = bf16 on a GPU, fp32 on the CPU.", choices=("auto", *DTYPES)),
    Param("device", "auto", "auto (GPU if present, else CPU with a warning), cpu, cuda or cuda:N."),
    Param("task", "", "Instruction the robot is given. Empty: the node waits. Changing it starts a new episode.",
          structural=False),
    Param("image_topics", ["/camera/image_raw"], "Camera topics; several are paired by header stamp and tiled."),
    Param("transport", ["raw"], "Per topic: raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage); "
          "one entry applies to every topic."),
    Param("qos_reliability", "best_effort", "Camera subscription reliability (best_effort also hears reliable "
          "publishers).", choices=RELIABILITIES),
    Param("qos_depth", 5, "Camera subscription queue depth.", int_range=(1, 100, 1)),
    Param("camera_slop", DEFAULT_CAMERA_SLOP, "Max header stamp difference (s) when pairing several cameras.",
          float_range=CAMERA_SLOP_RANGE),
    Param("sample_fps", DEFAULT_SAMPLE_FPS, "Frames per second taken into the episode, from header stamps "
          "(one update each; a slow model merges several into one update).", float_range=SAMPLE_FPS_RANGE),
    Param("max_stamp_gap", DEFAULT_MAX_GAP, "A header stamp this many seconds after the previous one (or before "
          "it, beyond stamp_tolerance) starts a new episode.", float_range=MAX_GAP_RANGE),
    Param("stamp_tolerance", DEFAULT_STAMP_TOLERANCE, "A header stamp at most this many seconds before the previous "
          "one (reordered transport, camera jitter) is dropped and counted; one further back starts a new episode.",
          float_range=STAMP_TOLERANCE_RANGE),
    Param("max_image_pixels", DEFAULT_MAX_PIXELS, "Images declaring more pixels (width x height) are dropped and "
          "counted before decoding.", int_range=(1, 1_000_000_000, 1)),
    Param("resolution_width", DEFAULT_RESOLUTION[0], "Fixed frame width fed to the model (multiple of 32).",
          int_range=(FRAME_MULTIPLE, MAX_FRAME_SIDE, FRAME_MULTIPLE)),
    Param("resolution_height", DEFAULT_RESOLUTION[1], "Fixed frame height fed to the model (multiple of 32).",
          int_range=(FRAME_MULTIPLE, MAX_FRAME_SIDE, FRAME_MULTIPLE)),
    Param("max_frames", DEFAULT_MAX_FRAMES,
          "Frames kept per episode; past it every other frame is dropped and the rate halves.",
          int_range=(*MAX_FRAMES_RANGE, 2)),
    Param("prompts_file", "", "YAML file with a 'prompts:' list; empty = the 10 packaged variants."),
    Param("ensemble_size", 1, "Number of prompts averaged (the first N of the set).", int_range=(1, 64, 1)),
    Param("contrastive", False, "Score = log P(True) - log P(False) instead of log P(True)."),
    Param("bare_prompt", False, "Render without role markers."),
    Param("reward_type", "logprob", "What 'reward' holds: logprob (raw score), progress (causal min-max) or "
          "delta (score minus the previous score).", structural=False, choices=REWARD_TYPES),
    Param("success_threshold", DEFAULT_SUCCESS_THRESHOLD, "Raw score at or above which an update counts toward success "
          "(default log 0.5; calibrate per setup with topreward-calibrate).", structural=False,
          float_range=SUCCESS_THRESHOLD_RANGE),
    Param("success_consecutive", DEFAULT_SUCCESS_CONSECUTIVE,
          "Updates in a row at or above the threshold before success latches.",
          structural=False, int_range=(*SUCCESS_CONSECUTIVE_RANGE, 1)),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", float_range=(0.1, 60.0)),
    Param("autostart", True, "Configure and activate on start-up (false: drive the lifecycle yourself)."),
)

BY_NAME = {p.name: p for p in PARAMETERS}
