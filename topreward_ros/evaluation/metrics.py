"""Curve metrics: prefix lengths, min-max progress, VOC (value-order correlation)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr


def prefix_lengths(num_frames: int, k: int) -> list[int]:
    """L = linspace(1, N, K) rounded, without repeats (fewer than K when N < K)."""
    if num_frames < 1:
        raise ValueError("no frames")
    if k < 2:
        raise ValueError(f"need at least 2 prefixes, got {k}")
    return sorted(set(int(v) for v in np.linspace(1, num_frames, k).round()))


def min_max_progress(scores: list[float]) -> list[float]:
    """Per-trajectory min-max normalisation to [0, 1]; a constant curve maps to all zeros."""
    values = np.asarray(scores, dtype=float)
    span = values.max() - values.min()
    if span == 0:
        return [0.0] * len(values)
    return ((values - values.min()) / span).tolist()


def voc(scores: list[float]) -> float:
    """Spearman rank correlation of the scores with their time order; NaN when undefined (constant curve)."""
    if len(scores) < 2 or np.ptp(np.asarray(scores, dtype=float)) == 0:
        return math.nan
    return float(spearmanr(np.arange(len(scores)), scores).statistic)


def format_voc(value: float) -> str:
    return "undefined (constant curve)" if math.isnan(value) else f"{value:.3f}"
