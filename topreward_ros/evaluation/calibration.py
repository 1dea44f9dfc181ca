"""Success-threshold calibration from labelled episodes: ROC AUC, a threshold table, the best thresholds.

Each episode contributes its final raw score and a label (success or not); a threshold ``t``
predicts success when ``score >= t``, as ``SuccessDetector`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from ..errors import TopRewardError


Scores = Sequence[float] | np.ndarray   # one final raw score per episode
Labels = Sequence[bool] | np.ndarray    # whether each episode succeeded


class CalibrationError(TopRewardError, ValueError):
    """The labelled episodes cannot be calibrated (mismatched, one-class or non-finite input)."""


@dataclass(frozen=True)
class ThresholdRow:
    """Confusion counts and metrics of the prediction ``score >= threshold``."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float   # 0 when nothing is predicted a success
    recall: float      # true-positive rate
    f1: float
    youden_j: float    # true-positive rate minus false-positive rate


@dataclass(frozen=True)
class Calibration:
    auc: float
    best_f1: ThresholdRow
    best_youden: ThresholdRow
    table: list[ThresholdRow]
    n_success: int
    n_failure: int


def _validated(scores: Scores, labels: Labels) -> tuple[np.ndarray, np.ndarray]:
    """Scores as floats and labels as bools, after checking lengths, finiteness and both classes."""
    if len(scores) != len(labels):
        raise CalibrationError(f"got {len(scores)} scores but {len(labels)} labels")
    values = np.asarray(scores, dtype=float).reshape(-1)
    flags = np.asarray(labels, dtype=bool).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise CalibrationError(f"scores must be finite, got {values[bad[0]]} at episode {bad[0]} "
                               f"({bad.size} non-finite in all)")
    n_success = int(flags.sum())
    n_failure = len(flags) - n_success
    if n_success < 1 or n_failure < 1:
        raise CalibrationError("need at least one success and one failure episode, "
                               f"got {n_success} successes and {n_failure} failures")
    return values, flags


def _candidates(distinct: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct scores, plus one below the minimum and one above the maximum."""
    low, high = distinct[:-1], distinct[1:]
    middle = (low + high) / 2
    # Between two adjacent floats the midpoint rounds onto one of them; the upper one keeps the split right.
    middle = np.where(middle > low, middle, high)
    step = float(distinct[-1] - distinct[0]) or 1.0
    return np.concatenate(([distinct[0] - step], middle, [distinct[-1] + step]))


def threshold_table(scores: Scores, labels: Labels) -> list[ThresholdRow]:
    """One row per candidate threshold (between observed scores, never on one), ascending by threshold."""
    values, flags = _validated(scores, labels)
    thresholds = _candidates(np.unique(values))
    positives = np.sort(values[flags])
    negatives = np.sort(values[~flags])
    n_pos, n_neg = len(positives), len(negatives)
    tps = n_pos - np.searchsorted(positives, thresholds, side="left")
    fps = n_neg - np.searchsorted(negatives, thresholds, side="left")
    rows = []
    for threshold, tp, fp in zip(thresholds.tolist(), tps.tolist(), fps.tolist()):
        fn, tn = n_pos - tp, n_neg - fp
        # Each metric is one division of integers, so equal ratios give equal floats (ties stay exact).
        rows.append(ThresholdRow(
            threshold=threshold, tp=tp, fp=fp, tn=tn, fn=fn,
            precision=tp / (tp + fp) if tp + fp else 0.0,
            recall=tp / n_pos,
            f1=2 * tp / (2 * tp + fp + fn),
            youden_j=(tp * n_neg - fp * n_pos) / (n_pos * n_neg),
        ))
    return rows


def roc_auc(scores: Scores, labels: Labels) -> float:
    """ROC AUC: the probability that a success outscores a failure, ties counting one half."""
    values, flags = _validated(scores, labels)
    positives, negatives = values[flags], values[~flags]
    u = mannwhitneyu(positives, negatives, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (len(positives) * len(negatives))


def _best(table: list[ThresholdRow], metric: str, margins: np.ndarray) -> ThresholdRow:
    """Highest ``metric``; ties go to the larger margin, then to the lower threshold."""
    index = max(range(len(table)),
                key=lambda i: (getattr(table[i], metric), margins[i], -table[i].threshold))
    return table[index]


def calibrate(scores: Scores, labels: Labels) -> Calibration:
    """AUC, threshold table and the F1-best and Youden-best thresholds of labelled final scores."""
    values, flags = _validated(scores, labels)
    table = threshold_table(values, flags)
    distinct = np.unique(values)
    thresholds = np.array([row.threshold for row in table])
    # Candidate i lies between distinct[i - 1] and distinct[i]: its margin is the nearer of the two.
    below = thresholds - np.concatenate(([-np.inf], distinct))
    above = np.concatenate((distinct, [np.inf])) - thresholds
    margins = np.minimum(below, above)
    n_success = int(flags.sum())
    return Calibration(
        auc=roc_auc(values, flags),
        best_f1=_best(table, "f1", margins),
        best_youden=_best(table, "youden_j", margins),
        table=table,
        n_success=n_success,
        n_failure=len(flags) - n_success,
    )


def format_table(calibration: Calibration) -> str:
    """The AUC and counts on one line, then the threshold table in markdown with the best rows marked."""
    lines = [
        f"ROC AUC {calibration.auc:.4f} over {calibration.n_success} success and "
        f"{calibration.n_failure} failure episodes",
        "",
        "| threshold | TP | FP | TN | FN | precision | recall | F1 | Youden J | best |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in calibration.table:
        marks = [name for name, best in (("best F1", calibration.best_f1), ("best Youden J", calibration.best_youden))
                 if row == best]
        lines.append(f"| {row.threshold:.6g} | {row.tp} | {row.fp} | {row.tn} | {row.fn} | {row.precision:.3f} | "
                     f"{row.recall:.3f} | {row.f1:.3f} | {row.youden_j:.3f} | {', '.join(marks)} |")
    return "\n".join(lines) + "\n"


def _yaml_float(value: float) -> str:
    """Shortest exact repr, with a '.' in the mantissa so YAML 1.1 (yaml.safe_load) reads a float, not a string."""
    text = repr(float(value))
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0{e}{exponent}" if e and "." not in mantissa else text


def params_yaml(threshold: float, consecutive: int | None = None) -> str:
    """A ROS 2 params file (``--ros-args --params-file FILE``) setting the reward node's success detection."""
    if not math.isfinite(threshold):
        raise CalibrationError(f"success_threshold must be finite, got {threshold}")
    if consecutive is not None and consecutive < 1:
        raise CalibrationError(f"success_consecutive must be at least 1, got {consecutive}")
    lines = [
        "# written by topreward-calibrate; load with: --ros-args --params-file THIS_FILE",
        "/**:",
        "  ros__parameters:",
        f"    success_threshold: {_yaml_float(threshold)}",
    ]
    if consecutive is not None:
        lines.append(f"    success_consecutive: {int(consecutive)}")
    return "\n".join(lines) + "\n"
