"""A synthetic manipulation clip (a red block carried into a blue bowl) for demos and tests."""

from __future__ import annotations

import cv2
import numpy as np


def render_scene(progress: float, width: int = 320, height: int = 240) -> np.ndarray:
    """RGB frame of the task at ``progress`` in [0, 1] (0: block at the start, 1: block in the bowl)."""
    progress = float(np.clip(progress, 0.0, 1.0))
    frame = np.full((height, width, 3), (200, 190, 170), np.uint8)
    cv2.rectangle(frame, (0, int(height * 0.6)), (width, height), (120, 90, 60), -1)
    bowl = (int(width * 0.78), int(height * 0.62))
    cv2.ellipse(frame, bowl, (int(width * 0.12), int(height * 0.06)), 0, 0, 360, (40, 70, 200), -1)
    start = np.array([width * 0.18, height * 0.62])
    lift = np.array([0.0, -height * 0.25 * np.sin(np.pi * progress)])
    centre = start + (np.array(bowl) - start) * progress + lift
    half = max(2, int(width * 0.04))
    x, y = int(centre[0]), int(centre[1])
    cv2.rectangle(frame, (x - half, y - 2 * half), (x + half, y), (210, 30, 30), -1)
    gripper_y = y - 2 * half - 4
    cv2.line(frame, (x, 0), (x, gripper_y), (60, 60, 60), 3)
    cv2.rectangle(frame, (x - half - 3, gripper_y - 4), (x + half + 3, gripper_y), (60, 60, 60), -1)
    return frame


def scene_frames(num_frames: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    """Frames of one episode with progress going linearly from 0 to 1."""
    return [render_scene(i / max(1, num_frames - 1), width, height) for i in range(num_frames)]
