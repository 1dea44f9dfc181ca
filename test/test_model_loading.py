import subprocess
import sys
import textwrap

import bitsandbytes as bnb
import pytest
import torch

from topreward_ros.method.config import ModelConfig, ModelLoadError
from topreward_ros.method.model import load_reward_model, single_token_id
from topreward_ros.method.reference import ReferenceScorer
from topreward_ros.method.config import ScoringConfig

from conftest import SMALL_RESOLUTION


def test_answer_tokens_are_single_tokens(reward_model):
    tokenizer = reward_model.tokenizer
    assert tokenizer.encode(" True", add_special_tokens=False) == [reward_model.true_id]
    assert tokenizer.encode(" False", add_special_tokens=False) == [reward_model.false_id]
    assert reward_model.true_id != reward_model.false_id
    assert tokenizer.decode([reward_model.true_id]) == " True"


def test_multi_token_answer_is_rejected(reward_model):
    with pytest.raises(ModelLoadError, match="exactly one"):
        single_token_id(reward_model.tokenizer, " Truely not one token")


def test_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model directory not found"):
        load_reward_model(ModelConfig(model=str(tmp_path / "nope"), device="cpu"))


def test_unreachable_hub_id_says_what_to_do():
    with pytest.raises(ModelLoadError, match="hub is unreachable.*download it"):
        load_reward_model(ModelConfig(model="nobody-here/no-such-model", device="cpu"))


@pytest.mark.parametrize("field,value,message", [
    ("dtype", "fp8", "unknown dtype"), ("quantization", "3bit", "unknown quantization"), ("model", " ", "no model"),
])
def test_bad_options_are_rejected(field, value, message):
    with pytest.raises(ModelLoadError, match=message):
        ModelConfig(**{field: value})


def test_cuda_without_gpu_is_rejected(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        load_reward_model(ModelConfig(model=str(tiny_model_dir), device="cuda"))


def test_4bit_loading_quantizes_language_model_only(tiny_model_dir, reward_model, random_frames):
    quantized = load_reward_model(ModelConfig(model=str(tiny_model_dir), device="cpu", quantization="4bit"))
    language = quantized.model.model.language_model
    assert isinstance(language.layers[0].mlp.up_proj, bnb.nn.Linear4bit)
    assert isinstance(language.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert language.layers[0].mlp.up_proj.quant_state.quant_type == "nf4"
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in quantized.model.model.visual.modules())
    assert type(quantized.model.lm_head) is torch.nn.Linear
    frames, times = random_frames
    config = ScoringConfig(resolution=SMALL_RESOLUTION)
    score = ReferenceScorer(quantized, config).score(frames[:4], times[:4], "open the drawer").value
    full = ReferenceScorer(reward_model, config).score(frames[:4], times[:4], "open the drawer").value
    assert torch.isfinite(torch.tensor(score)) and score < 0
    assert score != full  # the weights really are quantised


def test_4bit_without_bitsandbytes_is_one_clear_error(tmp_path, tiny_model_dir):
    # Stand-in for a machine without a bitsandbytes backend (a Jetson with the PyPI wheel):
    # a bitsandbytes package that fails to import, placed first on the path.
    fake = tmp_path / "bitsandbytes"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no CUDA backend for this platform')\n")
    code = textwrap.dedent(f"""
        from topreward_ros.method.config import ModelConfig, ModelLoadError
        from topreward_ros.method.model import load_reward_model
        try:
            load_reward_model(ModelConfig(model={str(tiny_model_dir)!r}, device="cpu", quantization="4bit"))
        except ModelLoadError as exc:
            print("ERROR:", exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    lines = [line for line in result.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1, result.stdout + result.stderr
    assert "4bit quantization needs bitsandbytes" in lines[0] and "quantization none" in lines[0]
