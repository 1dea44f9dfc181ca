"""RewardSettings: every setting of the reward pipeline, defined once.

The node's parameters (ros/parameters.py, config/reward.yaml), the launch arguments, every tool's options
(tools/common.py) and the README's parameter table are derived from these fields or checked against them by
test/test_settings.py. Each field carries its default, its range or choices and a one-line doc
(``RewardSettings.specs()``). A front door builds the pipeline from the settings alone: ``RewardStream.from_settings``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from ..errors import TopRewardError
from ..method.frames import DEFAULT_RESOLUTION, FRAME_MULTIPLE, MAX_FRAME_SIDE
from ..method.config import (DEFAULT_MAX_FRAMES, DEFAULT_MODEL, DTYPES, MAX_FRAMES_RANGE, QUANTIZATIONS, ModelConfig,
                             ScoringConfig)
from ..method.prompts import MAX_ENSEMBLE
from .episode_stream import (CAMERA_SLOP_RANGE, DEFAULT_CAMERA_SLOP, DEFAULT_MAX_GAP, DEFAULT_SAMPLE_FPS,
                             DEFAULT_STAMP_TOLERANCE, MAX_GAP_RANGE, SAMPLE_FPS_RANGE, STAMP_TOLERANCE_RANGE)
from .online import (DEFAULT_SUCCESS_CONSECUTIVE, DEFAULT_SUCCESS_THRESHOLD, SUCCESS_CONSECUTIVE_RANGE,
                     SUCCESS_THRESHOLD_RANGE)

REWARD_TYPES = ("logprob", "progress", "delta")


class SettingsError(TopRewardError, ValueError):
    """A setting outside its range or choices."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a setting accepts and means. ``live``: it may change while a stream runs (the node's
    non-structural parameters); the others fix the pipeline when it is built."""

    doc: str
    bounds: tuple[float, float] | None = None   # inclusive
    step: int = 1                                # integers (and each side of the resolution): a multiple of it
    choices: tuple[str, ...] | None = None
    live: bool = False

    @property
    def limits(self) -> tuple[float, float]:
        """The inclusive range of a number: ``bounds``, or unbounded without them."""
        return self.bounds or (-math.inf, math.inf)


def _setting(default, doc: str, **spec):
    return dataclasses.field(default=default, metadata={"spec": Spec(doc, **spec)})


def setting_default(field: dataclasses.Field) -> Any:
    """The default of a RewardSettings field (``_setting`` gives every field one)."""
    default = field.default
    assert default is not dataclasses.MISSING, field.name
    return default


@dataclasses.dataclass(frozen=True)
class RewardSettings:
    """The reward pipeline: model, scoring, sampling, and what the published reward and success mean."""

    model: str = _setting(DEFAULT_MODEL, "Hub id or local checkpoint directory of a Qwen3-VL model.")
    quantization: str = _setting(
        "auto", "Weights: auto (4bit on a CUDA GPU, none on the CPU), none, 4bit (NF4; ViT and lm_head kept) "
        "or 8bit.", choices=("auto", *QUANTIZATIONS))
    dtype: str = _setting("auto", "Compute dtype; auto = bf16 on a GPU, fp32 on the CPU.", choices=("auto", *DTYPES))
    device: str = _setting("auto", "auto (GPU if present, else CPU with a warning), cpu, cuda or cuda:N.")
    prompts_file: str = _setting("", "YAML file with a 'prompts:' list; empty = the 10 packaged variants.")
    ensemble_size: int = _setting(1, "Number of prompts averaged (the first N of the set).",
                                  bounds=(1, MAX_ENSEMBLE))
    contrastive: bool = _setting(False, "Score = log P(True) - log P(False) instead of log P(True).")
    bare_prompt: bool = _setting(False, "Render without role markers.")
    resolution: tuple[int, int] = _setting(
        DEFAULT_RESOLUTION, f"Fixed frame size (width, height) fed to the model, multiples of {FRAME_MULTIPLE}.",
        bounds=(FRAME_MULTIPLE, MAX_FRAME_SIDE), step=FRAME_MULTIPLE)
    sample_fps: float = _setting(
        DEFAULT_SAMPLE_FPS, "Frames per second taken into the episode, from header stamps (one update each; a "
        "slow model merges several into one update).", bounds=SAMPLE_FPS_RANGE)
    max_frames: int = _setting(DEFAULT_MAX_FRAMES, "Frames kept per episode; past it every other frame is "
                               "dropped and the rate halves.", bounds=MAX_FRAMES_RANGE, step=2)
    max_stamp_gap: float = _setting(
        DEFAULT_MAX_GAP, "A header stamp this many seconds after the previous one (or before it, beyond "
        "stamp_tolerance) starts a new episode.", bounds=MAX_GAP_RANGE)
    stamp_tolerance: float = _setting(
        DEFAULT_STAMP_TOLERANCE, "A header stamp at most this many seconds before the previous one (reordered "
        "transport, camera jitter) is dropped and counted; one further back starts a new episode.",
        bounds=STAMP_TOLERANCE_RANGE)
    camera_slop: float = _setting(DEFAULT_CAMERA_SLOP, "Max header stamp difference (s) when pairing several "
                                  "cameras.", bounds=CAMERA_SLOP_RANGE)
    reward_type: str = _setting(
        REWARD_TYPES[0], "What 'reward' holds: logprob (raw score), progress (causal min-max) or delta (score "
        "minus the previous score).", choices=REWARD_TYPES, live=True)
    success_threshold: float = _setting(
        DEFAULT_SUCCESS_THRESHOLD, "Raw score at or above which an update counts toward success (default "
        "log 0.5; calibrate per setup with topreward-calibrate).", bounds=SUCCESS_THRESHOLD_RANGE, live=True)
    success_consecutive: int = _setting(
        DEFAULT_SUCCESS_CONSECUTIVE, "Updates in a row at or above the threshold before success latches.",
        bounds=SUCCESS_CONSECUTIVE_RANGE, live=True)

    def __post_init__(self):
        for field, spec in self.specs():
            object.__setattr__(self, field.name, _checked(field, spec, getattr(self, field.name)))
        try:  # the prompts are read once, here: a worker elsewhere gets them with the settings
            scoring = ScoringConfig.from_options(
                prompts_file=self.prompts_file or None, ensemble_size=self.ensemble_size,
                contrastive=self.contrastive, role_markers=not self.bare_prompt, resolution=self.resolution)
        except TopRewardError as exc:
            raise SettingsError(str(exc)) from exc
        object.__setattr__(self, "_scoring", scoring)

    @classmethod
    def specs(cls) -> Iterator[tuple[dataclasses.Field, Spec]]:
        for field in dataclasses.fields(cls):
            yield field, field.metadata["spec"]

    @property
    def scoring(self) -> ScoringConfig:
        """What is scored: the prompts (read from ``prompts_file``), contrastive, rendering, resolution."""
        return self._scoring  # type: ignore[attr-defined]

    def model_config(self) -> ModelConfig:
        return ModelConfig(model=self.model, dtype=self.dtype, quantization=self.quantization, device=self.device)

    def replace(self, **changes) -> "RewardSettings":
        return dataclasses.replace(self, **changes)

    def record(self) -> dict:
        """The settings as plain JSON values, for reports and run records."""
        return {**dataclasses.asdict(self), "resolution": list(self.resolution)}


LIVE_SETTINGS = tuple(field.name for field, spec in RewardSettings.specs() if spec.live)


def checked_live(changes: dict) -> dict:
    """``changes`` (name -> value) of settings that may change while a stream runs (``LIVE_SETTINGS``),
    each checked as RewardSettings checks it; else a SettingsError."""
    specs = {field.name: (field, spec) for field, spec in RewardSettings.specs() if spec.live}
    fixed = [name for name in changes if name not in specs]
    if fixed:
        raise SettingsError(f"{fixed[0]} cannot change while the stream runs (live: {', '.join(LIVE_SETTINGS)})")
    return {name: _checked(*specs[name], value) for name, value in changes.items()}


def _checked(field: dataclasses.Field, spec: Spec, value):
    """``value`` if the field accepts it (ints given for floats become floats); else a SettingsError."""
    name, kind = field.name, field.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{name} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise SettingsError(f"{name} must be a string, got {value!r}")
        if spec.choices and value not in spec.choices:
            raise SettingsError(f"{name} must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    if kind == "tuple[int, int]":
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise SettingsError(f"{name} must be (width, height), got {value!r}")
        return tuple(_number(name, spec, side, int) for side in value)
    return _number(name, spec, value, int if kind == "int" else float)


def _number(name: str, spec: Spec, value, kind: type):
    whole = isinstance(value, (int, float)) and float(value).is_integer()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not whole):
        raise SettingsError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    value = kind(value)
    low, high = spec.limits
    if not (math.isfinite(value) and low <= value <= high) or (kind is int and value % spec.step):
        multiple = f"a multiple of {spec.step} " if kind is int and spec.step > 1 else ""
        raise SettingsError(f"{name} must be {multiple}from {low:g} to {high:g}, got {value!r}")
    return value
