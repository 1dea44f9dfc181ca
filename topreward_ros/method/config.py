"""What the method is configured with, importable without torch: the model to load (ModelConfig), what is
scored (ScoringConfig) and how many frames a session keeps. Option parsers (the tools, the node's parameters,
RewardSettings) read these; model.py, scoring.py and sessions.py compute with them."""

from __future__ import annotations

import dataclasses

from ..errors import TopRewardError
from .frames import DEFAULT_RESOLUTION, check_resolution
from .prompts import load_prompt_set, select_prompts

DTYPES = ("bf16", "fp16", "fp32")
QUANTIZATIONS = ("none", "4bit", "8bit")
DEFAULT_MODEL = "Qwen/Qwen3-VL-2B-Instruct"
DEFAULT_MAX_FRAMES = 64  # frames kept per episode before every other one is dropped
MAX_FRAMES_RANGE = (4, 1024)  # an even number in this range: past it every other frame is dropped


class ModelLoadError(TopRewardError, RuntimeError):
    """The model cannot be loaded; the message is one line saying what to do."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how.

    model: a hub id (e.g. Qwen/Qwen3-VL-2B-Instruct) or a local checkpoint directory.
    dtype: auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | fp32.
    quantization: auto (4bit on a CUDA GPU, none on the CPU) | none | 4bit (NF4, double quant, bf16 compute;
        vision tower and lm_head kept) | 8bit.
    device: auto (GPU if present, else CPU with a warning) | cpu | cuda | cuda:N.
    """

    model: str = DEFAULT_MODEL
    dtype: str = "auto"
    quantization: str = "auto"
    device: str = "auto"

    def __post_init__(self):
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ModelLoadError(f"unknown dtype {self.dtype!r}: use auto, {', '.join(DTYPES)}")
        if self.quantization != "auto" and self.quantization not in QUANTIZATIONS:
            raise ModelLoadError(f"unknown quantization {self.quantization!r}: use auto, {', '.join(QUANTIZATIONS)}")
        if not self.model.strip():
            raise ModelLoadError("no model given: pass a hub id or a local checkpoint directory")


@dataclasses.dataclass(frozen=True)
class ScoringConfig:
    """What is scored: the prompt templates (an ensemble averages them), contrastive or not,
    the rendering (role markers or bare) and the fixed frame resolution (width, height)."""

    prompts: tuple[str, ...] = ()
    contrastive: bool = False
    role_markers: bool = True
    resolution: tuple[int, int] = DEFAULT_RESOLUTION

    def __post_init__(self):
        if not self.prompts:
            object.__setattr__(self, "prompts", tuple(load_prompt_set()[:1]))
        check_resolution(self.resolution)

    @classmethod
    def from_options(cls, prompts_file=None, ensemble_size: int = 1, **kwargs) -> "ScoringConfig":
        return cls(prompts=tuple(select_prompts(load_prompt_set(prompts_file), ensemble_size)), **kwargs)
