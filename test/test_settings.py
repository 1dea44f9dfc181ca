"""RewardSettings is the one place the reward pipeline's settings are defined (issue 18).

Defaults agree: config/reward.yaml, the node's parameter descriptors, the launch arguments, every tool's options
and the README's parameter table are checked against RewardSettings by ``disagreements``; the mutation tests show
that changing one default in any one of those places is caught. Same resolution: the node and the offline tools
resolve the same quantization, dtype and device, on the CPU and on a CUDA machine (faked at the one function that
asks the machine, ``method.model.cuda_available``)."""

import argparse
import importlib
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

import launch_standins
from test_options import parsers
from topreward_ros.method import model as model_module
from topreward_ros.method.model import resolve
from topreward_ros.options import Number, Size
from topreward_ros.stream.settings import RewardSettings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "reward.yaml"
SETTINGS = dict((field.name, (field, spec)) for field, spec in RewardSettings.specs())


def readme_row(param) -> str:
    """The README table row of a node parameter, as the table prints it."""
    text = param.description + (f" One of: {', '.join(param.choices)}." if param.choices else "")
    if param.float_range:
        text += " Range {:g}..{:g}.".format(*param.float_range)
    if param.int_range:
        low, high, step = param.int_range
        text += f" Range {low}..{high}" + (f", step {step}." if step > 1 else ".")
    if not param.structural:
        text += " Can change at run time."
    return f"| `{param.name}` | `{json.dumps(param.default)}` | {text} |"


def option_default(action: argparse.Action):
    return action.type(action.default) if isinstance(action.default, str) and isinstance(action.type, Size) \
        else action.default


def disagreements(config_text: str, readme_text: str, tool_parsers: dict) -> list[str]:
    """Every place a default, range or choice list differs from RewardSettings (empty: they all agree)."""
    from topreward_ros.ros.parameters import PARAMETERS, parameter_values

    found = []
    defaults = parameter_values(RewardSettings())
    declared = {p.name: p for p in PARAMETERS}
    config = yaml.safe_load(config_text)["/**"]["ros__parameters"]
    for name, value in defaults.items():
        if declared[name].default != value:
            found.append(f"node parameter {name}: {declared[name].default!r} != {value!r}")
        if config.get(name) != value:
            found.append(f"config/reward.yaml {name}: {config.get(name)!r} != {value!r}")
    for param in PARAMETERS:
        if readme_row(param) not in readme_text.splitlines():
            found.append(f"README row of {param.name} is not: {readme_row(param)}")
    for program, parser in tool_parsers.items():
        for action in parser._actions:
            if action.dest not in SETTINGS:
                continue
            field, spec = SETTINGS[action.dest]
            where = f"{program} {action.option_strings[0]}"
            if option_default(action) != field.default:
                found.append(f"{where} default {option_default(action)!r} != {field.default!r}")
            if tuple(action.choices or ()) != tuple(spec.choices or ()):
                found.append(f"{where} choices {action.choices} != {spec.choices}")
            if isinstance(action.type, (Number, Size)) and (action.type.low, action.type.high) != spec.bounds:
                found.append(f"{where} range {action.type.low}..{action.type.high} != {spec.bounds}")
    declared_arguments, _ = launch_standins.launch()
    for name, argument in declared_arguments.items():
        if name in SETTINGS and SETTINGS[name][1].choices:
            listed = [word.split()[0] for word in argument.description.split(";")[0].split(" | ")]
            if listed != list(SETTINGS[name][1].choices):
                found.append(f"launch argument {name} lists {listed}, not {SETTINGS[name][1].choices}")
    return found


@pytest.fixture(scope="module")
def tool_parsers():
    return {p.values[0]: importlib.import_module(p.values[1]).build_parser() for p in parsers()}


def test_every_front_door_agrees_with_reward_settings(tool_parsers):
    assert disagreements(CONFIG.read_text(), (ROOT / "README.md").read_text(), tool_parsers) == []
    covered = {action.dest for parser in tool_parsers.values() for action in parser._actions}
    assert set(SETTINGS) <= covered, "a setting no tool offers"


@pytest.mark.parametrize("place", ["config", "readme", "tool"])
def test_changing_one_default_in_one_place_is_caught(tool_parsers, place):
    config, readme = CONFIG.read_text(), (ROOT / "README.md").read_text()
    if place == "config":
        config = config.replace("sample_fps: 2.0", "sample_fps: 3.0")
    elif place == "readme":
        readme = readme.replace('| `max_frames` | `64` |', '| `max_frames` | `32` |')
    else:
        parser = importlib.import_module("topreward_ros.tools.eval_bag").build_parser()
        parser.set_defaults(max_stamp_gap=5.0)
        tool_parsers = {**tool_parsers, "topreward-eval-bag": parser}
    assert len(disagreements(config, readme, tool_parsers)) == 1


@pytest.mark.parametrize("cuda", [False, True], ids=["cpu", "cuda-faked"])
def test_node_and_offline_tools_resolve_the_same_precision(monkeypatch, cuda):
    from topreward_ros.ros.parameters import PARAMETERS, settings_from
    from topreward_ros.tools import common, eval_video

    monkeypatch.setattr(model_module, "cuda_available", lambda: cuda)
    node = settings_from({p.name: p.default for p in PARAMETERS})
    offline = common.settings_from(eval_video.build_parser().parse_args(["clip.mp4", "--task", "t"]))
    assert node == offline
    live, tool = resolve(node.model_config()), resolve(offline.model_config())
    assert live == tool
    expected = (torch.device("cuda"), torch.bfloat16, "4bit") if cuda else (torch.device("cpu"), torch.float32, "none")
    assert (live.device, live.dtype, live.quantization) == expected


def test_settings_refuse_bad_values_with_one_line(tmp_path):
    for changes, message in [({"sample_fps": 0.0}, "sample_fps must be from 0.1 to 30"),
                             ({"max_frames": 63}, "max_frames must be a multiple of 2"),
                             ({"quantization": "3bit"}, "quantization must be one of auto, none"),
                             ({"contrastive": "yes"}, "contrastive must be true or false"),
                             ({"resolution": (500, 384)}, "resolution must be a multiple of 32"),
                             ({"ensemble_size": 11}, "ensemble size must be between 1 and 10"),
                             ({"prompts_file": str(tmp_path / "missing.yaml")}, "missing.yaml")]:
        with pytest.raises(SettingsError, match=re.escape(message)) as caught:
            RewardSettings(**changes)
        assert "\n" not in str(caught.value)
    assert RewardSettings(sample_fps=3).sample_fps == 3.0 and isinstance(RewardSettings(sample_fps=3).sample_fps,
                                                                         float)
