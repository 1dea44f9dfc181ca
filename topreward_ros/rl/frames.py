"""Where a wrapper's frames come from, checked before the first step: ``env.render()`` (render_mode "rgb_array")
or one or more image keys of a dict observation, tiled side by side as the node tiles its cameras."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from ..method.frames import FrameError, check_frame
from ..stream.camera_sync import tile
from .options import WrapperError


def check_image(image: Any, what: str) -> np.ndarray:
    """``check_frame``, raising the wrapper's own error."""
    try:
        return check_frame(image, what)
    except FrameError as exc:
        raise WrapperError(str(exc)) from None


class FrameSource:
    """One environment's frames: the rendered image, or its observation's images at ``image_keys``."""

    def __init__(self, image_keys: str | Sequence[str] | None, observation_space: spaces.Space,
                 render_mode: str | None, where: str = "the environment"):
        self.image_keys: tuple[str, ...] | None = (
            None if image_keys is None else (image_keys,) if isinstance(image_keys, str) else tuple(image_keys))
        if self.image_keys is None:
            if render_mode != "rgb_array":
                raise WrapperError(f"{where} has no frames: make it with render_mode='rgb_array' (it has "
                                   f"{render_mode!r}) or give image_keys of its dict observation")
            return
        if not self.image_keys:
            raise WrapperError("image_keys names no key: give one or more, or None to use render()")
        if not isinstance(observation_space, spaces.Dict):
            raise WrapperError(f"image_keys need a dict observation; {where} observes "
                               f"{type(observation_space).__name__}")
        for key in self.image_keys:
            space = observation_space.spaces.get(key)
            if space is None:
                raise WrapperError(f"{where} has no observation key {key!r} (it has {', '.join(observation_space)})")
            if not (isinstance(space, spaces.Box) and len(space.shape) == 3 and space.shape[2] == 3
                    and space.dtype == np.uint8):
                raise WrapperError(f"observation key {key!r} must be an HxWx3 uint8 image space, got {space}")

    @property
    def renders(self) -> bool:
        return self.image_keys is None

    def frame(self, observation: Any, render: Callable[[], Any], which: str = "") -> np.ndarray:
        """The frame of one environment's ``observation`` (``render`` is called only without image keys);
        ``which`` names the environment in an error (a vector environment's sub-environment)."""
        if self.image_keys is None:
            return check_image(render(), f"{which}env.render()")
        return tile([check_image(observation[key], f"{which}observation image {key!r}") for key in self.image_keys])


def seconds_per_step(env: Any, dt: float | None) -> float:
    """``dt`` if given, else the environment's ``unwrapped.dt``, else 1 / ``metadata["render_fps"]``."""
    if dt is not None:
        return float(dt)
    step = getattr(env.unwrapped, "dt", None)
    if isinstance(step, (int, float)) and step > 0:
        return float(step)
    fps = (env.metadata or {}).get("render_fps")
    if isinstance(fps, (int, float)) and fps > 0:
        return 1.0 / fps
    raise WrapperError("the environment has no unwrapped.dt and no metadata['render_fps']: give dt=SECONDS "
                       "per step")
