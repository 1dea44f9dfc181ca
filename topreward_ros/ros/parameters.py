"""The reward node's parameters: one table of names, defaults, ranges and descriptions.

config/reward.yaml and the README's parameter table are checked against this table by the tests.
"""

from __future__ import annotations

import dataclasses

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from ..method.model import DTYPES, QUANTIZATIONS

REWARD_TYPES = ("logprob", "progress", "delta")
RELIABILITIES = ("best_effort", "reliable")
TRANSPORTS = ("raw", "compressed")


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    read_only: bool = True            # needs a restart (or cleanup + configure) to change
    float_range: tuple[float, float] | None = None
    int_range: tuple[int, int, int] | None = None   # from, to, step
    choices: tuple[str, ...] | None = None

    def descriptor(self) -> ParameterDescriptor:
        text = self.description + (f" One of: {', '.join(self.choices)}." if self.choices else "")
        descriptor = ParameterDescriptor(description=text, read_only=self.read_only)
        if self.float_range:
            descriptor.floating_point_range = [FloatingPointRange(from_value=self.float_range[0],
                                                                  to_value=self.float_range[1])]
        if self.int_range:
            descriptor.integer_range = [IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1],
                                                     step=self.int_range[2])]
        return descriptor


PARAMETERS = (
    Param("model", "Qwen/Qwen3-VL-2B-Instruct", "Hub id or local checkpoint directory of a Qwen3-VL model."),
    Param("quantization", "4bit", "Weights: 4bit (NF4; ViT and lm_head kept), 8bit or none.",
          choices=QUANTIZATIONS),
    Param("dtype", "auto", "Compute dtype; auto = bf16 on a GPU, fp32 on the CPU.", choices=("auto", *DTYPES)),
    Param("device", "auto", "auto (GPU if present, else CPU with a warning), cpu, cuda or cuda:N."),
    Param("task", "", "Instruction the robot is given. Empty: the node waits. Changing it starts a new episode.",
          read_only=False),
    Param("image_topics", ["/camera/image_raw"], "Camera topics; several are paired by header stamp and tiled."),
    Param("transport", ["raw"], "Per topic: raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage); "
          "one entry applies to every topic."),
    Param("qos_reliability", "best_effort", "Camera subscription reliability (best_effort also hears reliable "
          "publishers).", choices=RELIABILITIES),
    Param("qos_depth", 5, "Camera subscription queue depth.", int_range=(1, 100, 1)),
    Param("camera_slop", 0.05, "Max header stamp difference (s) when pairing several cameras.",
          float_range=(0.0, 1.0)),
    Param("sample_fps", 2.0, "Frames per second taken into the episode, from header stamps (one update each).",
          float_range=(0.1, 30.0)),
    Param("resolution_width", 512, "Fixed frame width fed to the model (multiple of 32).",
          int_range=(32, 2048, 32)),
    Param("resolution_height", 384, "Fixed frame height fed to the model (multiple of 32).",
          int_range=(32, 2048, 32)),
    Param("max_frames", 64, "Frames kept per episode; past it every other frame is dropped and the rate halves.",
          int_range=(4, 1024, 2)),
    Param("prompts_file", "", "YAML file with a 'prompts:' list; empty = the 10 packaged variants."),
    Param("ensemble_size", 1, "Number of prompts averaged (the first N of the set).", int_range=(1, 64, 1)),
    Param("contrastive", False, "Score = log P(True) - log P(False) instead of log P(True)."),
    Param("bare_prompt", False, "Render without role markers."),
    Param("reward_type", "logprob", "What 'reward' holds: logprob (raw score), progress (causal min-max) or "
          "delta (score minus the previous score).", read_only=False, choices=REWARD_TYPES),
    Param("success_threshold", -0.693, "Raw score at or above which an update counts toward success "
          "(default log 0.5; calibrate per setup with topreward-calibrate).", read_only=False,
          float_range=(-1000.0, 1000.0)),
    Param("success_consecutive", 3, "Updates in a row at or above the threshold before success latches.",
          read_only=False, int_range=(1, 1000, 1)),
    Param("namespace", "/topreward", "Namespace of the output topics (reward, progress, success, update)."),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", float_range=(0.1, 60.0)),
    Param("autostart", True, "Configure and activate on start-up (false: drive the lifecycle yourself)."),
)

BY_NAME = {p.name: p for p in PARAMETERS}
