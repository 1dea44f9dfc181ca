"""Prompt sets: data (YAML), not code. A prompt is a template with one ``{task}`` field."""

from __future__ import annotations

from ..errors import TopRewardError

from importlib import resources
from pathlib import Path

import yaml

ANSWER_LEAD = "The answer is:"
MAX_ENSEMBLE = 64    # prompts averaged at most (a prompts file may hold more than the 10 packaged)
MAX_TASK_CHARS = 1000  # an instruction is a sentence; 1000 characters is ~250 tokens, ample


class PromptError(TopRewardError, ValueError):
    """A prompt file or a prompt selection that cannot be used."""


def load_prompt_set(path: str | Path | None = None) -> list[str]:
    """Prompt templates from a YAML file with a ``prompts:`` list (default: the packaged set)."""
    if path is None:
        text = resources.files(__package__).joinpath("prompts.yaml").read_text(encoding="utf-8")
        source = "packaged prompts.yaml"
    else:
        path = Path(path)
        if not path.is_file():
            raise PromptError(f"prompt file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise PromptError(f"cannot read prompt file {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                              f"at offset {exc.start})") from exc
        except OSError as exc:
            raise PromptError(f"cannot read prompt file {path}: {exc.strerror or exc}") from exc
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PromptError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from exc
    prompts = data.get("prompts") if isinstance(data, dict) else None
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise PromptError(f"{source}: expected a non-empty 'prompts:' list of strings")
    for i, template in enumerate(prompts):
        if "{task}" not in template:
            raise PromptError(f"{source}: prompt {i} has no {{task}} field")
        if not template.rstrip().endswith(ANSWER_LEAD):
            raise PromptError(f"{source}: prompt {i} must end with '{ANSWER_LEAD}'")
    return prompts


def select_prompts(templates: list[str], ensemble_size: int) -> list[str]:
    """The first ``ensemble_size`` templates of a set."""
    if not 1 <= ensemble_size <= len(templates):
        raise PromptError(f"ensemble size must be between 1 and {len(templates)}, got {ensemble_size}")
    return templates[:ensemble_size]


def fill_prompt(template: str, task: str) -> str:
    """The prompt text for one task (the task is stripped; an empty or over-long task is an error)."""
    task = task.strip()
    if not task:
        raise PromptError("the task instruction is empty")
    if len(task) > MAX_TASK_CHARS:
        raise PromptError(f"the task instruction has {len(task)} characters; at most {MAX_TASK_CHARS} are accepted "
                          "(an instruction is a sentence)")
    return template.replace("{task}", task)
