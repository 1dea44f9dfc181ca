"""Randomly initialised Qwen3-VL checkpoints built offline from the real transformers classes.

Used by the tests, the offline demo and the benchmarks where no real weights can be
downloaded. Scores from these models are meaningless; the code path is the one the
real Qwen3-VL-2B takes (same config class, processor classes and special tokens).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from ..method.prompts import load_prompt_set
from ..method.vision import LEGACY_TRANSFORMERS  # 4.x: Qwen2TokenizerFast, rope settings as rope_scaling

# Qwen's special tokens, in Qwen's order (their ids follow the BPE vocabulary, as in Qwen).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
# Qwen2/Qwen3 pre-tokenizer pattern (words keep their leading space, digits are split).
QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Model shapes: "tiny" for tests, "small" for CPU benchmarks, "qwen3-vl-2b" = the real 2B config.
SHAPES: dict[str, dict] = {
    "tiny": {"vocab_size": None,  # the trained test tokenizer's own
             "text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=16, mrope_section=[4, 2, 2]),
             "vision": dict(depth=3, hidden_size=32, intermediate_size=64, num_heads=2,
                            deepstack_visual_indexes=[0, 1, 2])},
    "small": {"vocab_size": 32768,
              "text": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8,
                           num_key_value_heads=4, head_dim=32, mrope_section=[6, 5, 5]),
              "vision": dict(depth=4, hidden_size=128, intermediate_size=512, num_heads=4,
                             deepstack_visual_indexes=[1, 2, 3])},
    "qwen3-vl-2b": {"vocab_size": 151936,
                    "text": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                                 num_key_value_heads=8, head_dim=128, mrope_section=[24, 20, 20]),
                    "vision": dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16,
                                   deepstack_visual_indexes=[5, 11, 17])},
}

# The real Qwen3-VL processor settings (preprocessor_config.json / video_preprocessor_config.json).
IMAGE_PROCESSOR_CONFIG = dict(
    patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    size={"longest_edge": 16777216, "shortest_edge": 65536},
)
VIDEO_PROCESSOR_CONFIG = dict(
    patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    size={"longest_edge": 25165824, "shortest_edge": 4096},
)


def _training_corpus() -> list[str]:
    tasks = ["put the red block in the bowl", "open the drawer", "pick up the cup", "fold the towel",
             "stack the green cube on the blue cube", "push the button", "close the lid"]
    lines = [template.replace("{task}", task) + " True" for template in load_prompt_set() for task in tasks]
    lines += [template.replace("{task}", task) + " False" for template in load_prompt_set() for task in tasks]
    lines += [f"<{t / 10:.1f} seconds>" for t in range(0, 1000, 7)]
    lines += ["user\n", "assistant\n", "system\n", "You are a helpful assistant."] + ["True", "False"] * 20
    return lines


def build_tokenizer(vocab_size: int = 1024) -> Qwen2Tokenizer:
    """A small byte-level BPE with Qwen's pre-tokenizer and special tokens; " True"/" False" are single tokens."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(_training_corpus(), trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tokenizer = _qwen2_tokenizer(trained["vocab"], merges)
    tokenizer.add_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS],
                         special_tokens=True)
    for word in (" True", " False", "True", "False"):
        ids = tokenizer.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise RuntimeError(f"test tokenizer splits {word!r} into {len(ids)} tokens")
    return tokenizer


def _qwen2_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Qwen2Tokenizer:
    """Qwen2Tokenizer from a vocabulary and merges; on transformers 4.x the same tokenizers pipeline that
    transformers 5's Qwen2Tokenizer builds, wrapped in Qwen2TokenizerFast (the class 4.x loads it back as)."""
    if not LEGACY_TRANSFORMERS:
        return Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=262144)
    from transformers import Qwen2TokenizerFast

    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                                   continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False,
                                   byte_fallback=False))
    backend.decoder = decoders.ByteLevel()
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    return Qwen2TokenizerFast(tokenizer_object=backend, model_max_length=262144)


def build_processor(tokenizer: Qwen2Tokenizer) -> Qwen3VLProcessor:
    return Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**IMAGE_PROCESSOR_CONFIG),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**VIDEO_PROCESSOR_CONFIG),
    )


def _rope_settings(mrope_section: list[int]) -> dict:
    """Qwen3-VL's interleaved MRoPE: rope_parameters on transformers 5, rope_theta + rope_scaling on 4.x
    (the form of the real checkpoints' config.json)."""
    mrope = {"rope_type": "default", "mrope_section": mrope_section, "mrope_interleaved": True}
    if LEGACY_TRANSFORMERS:
        return {"rope_theta": 5000000.0, "rope_scaling": mrope}
    return {"rope_parameters": {**mrope, "rope_theta": 5000000.0}}


def build_config(shape: str, tokenizer: Qwen2Tokenizer) -> Qwen3VLConfig:
    if shape not in SHAPES:
        raise ValueError(f"unknown model shape {shape!r}; choose one of {', '.join(SHAPES)}")
    spec = SHAPES[shape]
    text = dict(spec["text"])
    mrope_section = text.pop("mrope_section")
    vocab_size = spec["vocab_size"] or len(tokenizer)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in [
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]}
    return Qwen3VLConfig(
        text_config=dict(
            **text, vocab_size=vocab_size, max_position_embeddings=262144, rms_norm_eps=1e-6,
            **_rope_settings(mrope_section),
            bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        ),
        vision_config=dict(
            **spec["vision"], out_hidden_size=spec["text"]["hidden_size"], patch_size=16, spatial_merge_size=2,
            temporal_patch_size=2, in_channels=3, num_position_embeddings=2304, hidden_act="gelu_pytorch_tanh",
        ),
        tie_word_embeddings=True,
        **ids,
    )


def build_model(shape: str, tokenizer: Qwen2Tokenizer, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> Qwen3VLForConditionalGeneration:
    """A randomly initialised Qwen3-VL of the given shape (in memory)."""
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(build_config(shape, tokenizer))
    return model.to(dtype).eval()


def write_test_model(directory: str | Path, shape: str = "tiny", seed: int = 0) -> Path:
    """Write a complete checkpoint directory (config, weights, tokenizer, processor configs)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(shape, tokenizer, seed=seed)
    model.save_pretrained(directory)
    build_processor(tokenizer).save_pretrained(directory)
    return directory
