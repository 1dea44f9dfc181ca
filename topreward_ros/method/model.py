"""Loading a Qwen3-VL reward model (hub id or local path; dtype, quantization, device) and start-up checks."""

from __future__ import annotations

from .config import ModelConfig, ModelLoadError
from .rendering import Renderer

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

ANSWER_TRUE = " True"
ANSWER_FALSE = " False"
# The torch dtype of each ModelConfig dtype name.
TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclasses.dataclass(frozen=True)
class Precision:
    """Where and how a ModelConfig runs once ``auto`` is resolved on this machine."""

    device: torch.device
    dtype: torch.dtype
    quantization: str


@dataclasses.dataclass
class RewardModel:
    """A loaded Qwen3-VL with its processor and the answer token ids."""

    model: torch.nn.Module
    processor: object
    config: ModelConfig
    device: torch.device
    dtype: torch.dtype
    quantization: str    # as loaded (auto resolved)
    true_id: int
    false_id: int

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def describe(self) -> str:
        return f"{self.config.model} ({self.quantization}, {str(self.dtype).removeprefix('torch.')}, {self.device})"


def cuda_available() -> bool:
    """Whether a CUDA GPU is usable: the one place the machine is asked (tests fake it here)."""
    return torch.cuda.is_available()


def resolve(config: ModelConfig) -> Precision:
    """The device, dtype and quantization ``config`` means on this machine: every front door loads through this."""
    device = resolve_device(config.device)
    quantization = config.quantization
    if quantization == "auto":
        quantization = "4bit" if device.type == "cuda" else "none"
    return Precision(device, resolve_dtype(config.dtype, device), quantization)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if cuda_available():
            return torch.device("cuda")
        log.warning("no GPU found: running the reward model on the CPU (slow; fine for tests and the tiny model)")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ModelLoadError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not cuda_available():
        raise ModelLoadError(f"device {device!r} asked for but no CUDA GPU is available: use device auto or cpu")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return TORCH_DTYPES[dtype]


def quantization_config(quantization: str):
    """bitsandbytes settings; the vision tower and lm_head stay unquantised (the skip list replaces the default)."""
    if quantization == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise ModelLoadError(
            f"{quantization} quantization needs bitsandbytes, which failed to import ({exc}): "
            "pip install bitsandbytes (on Jetson use NVIDIA's build), or use quantization none") from exc
    skip = ["model.visual", "visual", "lm_head"]
    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


def load_reward_model(config: ModelConfig) -> RewardModel:
    """Load model and processor, then run the start-up checks. Raises ModelLoadError with one clear line."""
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    precision = resolve(config)
    device, dtype, quantization = precision.device, precision.dtype, precision.quantization
    source = config.model
    if _looks_like_path(source) and not Path(source).is_dir():
        raise ModelLoadError(f"model directory not found: {source} (give a checkpoint directory or a hub id)")
    quant = quantization_config(quantization)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else {"": "cpu"}
    try:
        processor = AutoProcessor.from_pretrained(source)
        model = Qwen3VLForConditionalGeneration.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise ModelLoadError(
            f"cannot load model {source!r}: not a local checkpoint and the hub is unreachable or has no such "
            "repository; download it on a connected machine (hf download ID --local-dir DIR) and pass DIR") from exc
    except (ImportError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if quantization != "none":
            raise ModelLoadError(
                f"{quantization} loading failed ({first}): this device has no working bitsandbytes backend; "
                "install a bitsandbytes build for it (NVIDIA's on Jetson) or use quantization none") from exc
        raise ModelLoadError(f"cannot load model {source!r}: {first}") from exc
    if quant is None:
        model = model.to(device)
    model.eval()
    true_id = single_token_id(processor.tokenizer, ANSWER_TRUE)
    false_id = single_token_id(processor.tokenizer, ANSWER_FALSE)
    renderer = Renderer(processor.tokenizer)
    renderer.check_no_assistant_turn(renderer.full([0.0], 1, "The task is done. The answer is:"))
    return RewardModel(model=model, processor=processor, config=config, device=device, dtype=dtype,
                       quantization=quantization, true_id=true_id, false_id=false_id)


def single_token_id(tokenizer, text: str) -> int:
    """The id of ``text`` if it encodes to exactly one token (the answer must be one token to score it)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ModelLoadError(f"tokenizer encodes {text!r} as {len(ids)} tokens {ids}; TOPReward needs exactly one")
    return ids[0]


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.count("/") != 1 or Path(source).exists()
