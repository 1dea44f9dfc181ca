"""Command-line options shared by the programs that load the model: RewardSettings fields as options."""

from __future__ import annotations

import argparse

from ..options import Size, float_between, int_between
from ..stream.settings import RewardSettings, setting_default

SETTINGS = {field.name: (field, spec) for field, spec in RewardSettings.specs()}
# The RewardSettings fields each kind of tool takes as options (--field-name, the node's parameter name).
MODEL_SETTINGS = ("model", "quantization", "dtype", "device")
SCORING_SETTINGS = ("prompts_file", "ensemble_size", "contrastive", "bare_prompt", "resolution")
SAMPLING_SETTINGS = ("sample_fps", "max_frames", "max_stamp_gap", "stamp_tolerance", "camera_slop")
REWARD_SETTINGS = ("reward_type", "success_threshold", "success_consecutive")
ALIASES = {"ensemble_size": ("--ensemble",), "bare_prompt": ("--bare",)}  # the tools' names before RewardSettings


def add_settings_arguments(parser: argparse.ArgumentParser, title: str, names, aliases: dict | None = None) -> None:
    """One option per RewardSettings field in ``names``, with the field's default, range or choices and doc;
    ``aliases``: further option strings of a field in this tool."""
    group = parser.add_argument_group(title)
    for name in names:
        field, spec = SETTINGS[name]
        flags = [f"--{name.replace('_', '-')}", *ALIASES.get(name, ()), *(aliases or {}).get(name, ())]
        default = setting_default(field)
        kwargs: dict = {"dest": name, "default": default}
        if field.type == "bool":
            kwargs["action"] = "store_true"
        elif spec.choices:
            kwargs["choices"] = spec.choices
        elif field.type == "float":
            kwargs["type"] = float_between(*spec.limits)
        elif field.type == "int":
            kwargs["type"] = int_between(*spec.limits, even=spec.step == 2)
        elif field.type == "tuple[int, int]":
            kwargs.update(type=Size(*spec.limits, spec.step), default="x".join(map(str, default)),
                          metavar="WIDTHxHEIGHT")
        shown = "" if field.type == "bool" or default == "" else " (default %(default)s)"
        group.add_argument(*flags, help=spec.doc.replace("%", "%%") + shown, **kwargs)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and how it scores: the options of every program that loads the model."""
    add_settings_arguments(parser, "model", MODEL_SETTINGS)
    add_settings_arguments(parser, "scoring", SCORING_SETTINGS)


def settings_from(args: argparse.Namespace) -> RewardSettings:
    """The RewardSettings a tool's parsed options give (the fields it has no option for keep their defaults)."""
    return RewardSettings(**{name: getattr(args, name) for name in SETTINGS if hasattr(args, name)})


def settings_of(settings: RewardSettings, reward_model) -> dict:
    """The settings of a run as it ran (auto resolved), for reports."""
    return {**settings.record(), "device": str(reward_model.device),
            "dtype": str(reward_model.dtype).removeprefix("torch."), "quantization": reward_model.quantization}

