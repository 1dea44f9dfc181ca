"""The wrappers' own options (the pipeline itself is RewardSettings) and their error."""

from __future__ import annotations

import dataclasses
import math

from ..errors import TopRewardError
from ..stream.settings import REWARD_TYPES, RewardSettings

REWARD_MODES = ("potential", *REWARD_TYPES)
POTENTIALS = ("score", "progress")
COMBINES = ("replace", "add")
DEFAULT_SETTINGS = RewardSettings()  # frozen: one shared default for both wrappers


class WrapperError(TopRewardError, ValueError):
    """A wrapper that cannot score its environment: no frames, bad images, no usable task, bad options."""


@dataclasses.dataclass(frozen=True)
class RewardOptions:
    """What a wrapper hands the learner, and which steps take a frame.

    ``reward``: ``potential`` (gamma * Phi(s') - Phi(s), Phi the raw score or the causal progress, held between
    frames), or the node's ``logprob``, ``progress`` or ``delta`` at the steps that take a frame (0 at the others).
    ``combine``: ``replace`` the environment's reward by ``weight`` * ours, or ``add`` ``weight`` * ours to it.
    ``every``: take a frame every ``every`` steps instead of at the settings' sample_fps of environment time.
    ``dt``: seconds per step, if the environment has neither ``unwrapped.dt`` nor ``metadata["render_fps"]``.
    """

    reward: str = "potential"
    potential: str = "score"
    gamma: float = 0.99
    combine: str = "replace"
    weight: float = 1.0
    every: int | None = None
    dt: float | None = None
    terminate_on_success: bool = False

    def __post_init__(self):
        for name, choices in (("reward", REWARD_MODES), ("potential", POTENTIALS), ("combine", COMBINES)):
            if getattr(self, name) not in choices:
                raise WrapperError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if not (isinstance(self.gamma, (int, float)) and 0 <= self.gamma <= 1):
            raise WrapperError(f"gamma must be from 0 to 1, got {self.gamma!r}")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight)):
            raise WrapperError(f"weight must be a finite number, got {self.weight!r}")
        if self.every is not None and not (isinstance(self.every, int) and self.every >= 1):
            raise WrapperError(f"every must be a whole number of steps of at least 1, got {self.every!r}")
        if self.dt is not None and not (isinstance(self.dt, (int, float)) and 0 < self.dt < math.inf):
            raise WrapperError(f"dt must be a positive number of seconds, got {self.dt!r}")
        if not isinstance(self.terminate_on_success, bool):
            raise WrapperError(f"terminate_on_success must be true or false, got {self.terminate_on_success!r}")

    @classmethod
    def of(cls, settings: RewardSettings, options: dict) -> "RewardOptions":
        """The options from a wrapper's keyword arguments, once its settings are checked; an unknown option or
        settings that are not a RewardSettings are a WrapperError."""
        if not isinstance(settings, RewardSettings):
            raise WrapperError(f"settings must be a RewardSettings, got {type(settings).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise WrapperError(f"unknown wrapper option {unknown[0]!r} (options: {', '.join(sorted(known))})")
        return cls(**options)
