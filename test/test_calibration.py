import math

import numpy as np
import pytest
import yaml

from topreward_ros.evaluation.calibration import (Calibration, CalibrationError, ThresholdRow, calibrate, format_table,
                                       params_yaml, roc_auc, threshold_table)
from topreward_ros.errors import TopRewardError

# Hand-built overlapping classes: successes 0.9, 0.6, 0.4; failures 0.6, 0.3, 0.1 (a tie at 0.6).
OVERLAP_SCORES = [0.9, 0.6, 0.4, 0.6, 0.3, 0.1]
OVERLAP_LABELS = [True, True, True, False, False, False]


def predicts_all(threshold: float, scores, labels) -> bool:
    return all((score >= threshold) == label for score, label in zip(scores, labels))


def test_planted_threshold_is_recovered():
    T = -1.3
    rng = np.random.default_rng(1234)
    # The innermost episodes sit exactly at T +- 0.05, the rest are uniform over [T+0.05, T+2] and
    # [T-2, T-0.05]; so the gap between the classes is (T-0.05, T+0.05), symmetric about T, and its
    # midpoint (the only threshold with F1 = J = 1 that is not on an observed score) is T up to rounding.
    successes = np.concatenate(([T + 0.05], rng.uniform(T + 0.05, T + 2, 39)))
    failures = np.concatenate(([T - 0.05], rng.uniform(T - 2, T - 0.05, 39)))
    scores = np.concatenate((successes, failures)).tolist()
    labels = [True] * 40 + [False] * 40

    result = calibrate(scores, labels)

    assert result.auc == 1.0
    assert (result.n_success, result.n_failure) == (40, 40)
    for best in (result.best_f1, result.best_youden):
        assert failures.max() < best.threshold < successes.min()
        assert predicts_all(best.threshold, scores, labels)
        assert (best.tp, best.fp, best.tn, best.fn) == (40, 0, 40, 0)
        assert best.f1 == 1.0 and best.youden_j == 1.0
    assert abs(result.best_f1.threshold - T) < 0.1
    assert result.best_f1.threshold == pytest.approx(T, abs=1e-12)


def test_overlapping_classes_by_hand():
    table = threshold_table(OVERLAP_SCORES, OVERLAP_LABELS)
    # Distinct scores 0.1 0.3 0.4 0.6 0.9, spread 0.8: candidates -0.7, the four midpoints, 1.7.
    assert [row.threshold for row in table] == pytest.approx([-0.7, 0.2, 0.35, 0.5, 0.75, 1.7])
    # (tp, fp, tn, fn), precision, recall, F1 = 2tp / (2tp + fp + fn), J = tp/3 - fp/3.
    expected = [
        ((3, 3, 0, 0), 3 / 6, 1.0, 6 / 9, 0.0),
        ((3, 2, 1, 0), 3 / 5, 1.0, 6 / 8, 1 / 3),
        ((3, 1, 2, 0), 3 / 4, 1.0, 6 / 7, 2 / 3),
        ((2, 1, 2, 1), 2 / 3, 2 / 3, 4 / 6, 1 / 3),   # the tied 0.6 pair: both predicted success
        ((1, 0, 3, 2), 1.0, 1 / 3, 2 / 4, 1 / 3),
        ((0, 0, 3, 3), 0.0, 0.0, 0.0, 0.0),           # nothing predicted: precision 0 by convention
    ]
    for row, (counts, precision, recall, f1, youden) in zip(table, expected):
        assert (row.tp, row.fp, row.tn, row.fn) == counts
        assert (row.precision, row.recall, row.f1, row.youden_j) == (precision, recall, f1, youden)
        assert all(isinstance(n, int) for n in counts) and isinstance(row.threshold, float)

    # Pairs (success, failure) with the success higher: 0.9 beats 3, 0.6 beats 2 and ties 1 (0.5), 0.4 beats 2.
    assert roc_auc(OVERLAP_SCORES, OVERLAP_LABELS) == (3 + 2.5 + 2) / 9

    result = calibrate(OVERLAP_SCORES, OVERLAP_LABELS)
    assert result.auc == 7.5 / 9
    assert result.table == table
    assert result.best_f1 == result.best_youden == table[2]
    assert result.best_f1.threshold == pytest.approx(0.35)


def test_inverted_scores():
    # Every success scores below every failure.
    scores = [-5.0, -4.0, -3.0, -1.0, -0.5]
    labels = [True, True, True, False, False]
    result = calibrate(scores, labels)
    assert result.auc == 0.0
    # No threshold separates anything: the best F1 is "everything is a success" (the candidate below
    # the minimum, F1 = 2*3 / (2*3 + 2) = 0.75) and the best Youden J is 0, reached only by the two
    # trivial thresholds outside the observed range (equal margins: the lower one wins). Every
    # threshold inside the range has J < 0.
    lowest, highest = result.table[0], result.table[-1]
    assert lowest.threshold == -5.0 - 4.5 and highest.threshold == -0.5 + 4.5
    assert result.best_f1 == lowest
    assert (lowest.tp, lowest.fp, lowest.tn, lowest.fn) == (3, 2, 0, 0) and lowest.f1 == 0.75
    assert result.best_youden == lowest and lowest.youden_j == 0.0 and highest.youden_j == 0.0
    assert all(row.youden_j < 0 for row in result.table[1:-1])


def test_ties_go_to_the_larger_margin_then_the_lower_threshold():
    # Failure 0, success 1, failure 2, success 4: J = 0.5 at 0.5 (margin 0.5) and at 3.0 (margin 1.0).
    result = calibrate([0.0, 1.0, 2.0, 4.0], [False, True, False, True])
    assert [row.youden_j for row in result.table] == [0.0, 0.5, 0.0, 0.5, 0.0]
    assert result.best_youden.threshold == 3.0
    # The same with equal gaps (success at 3): both margins 0.5, the lower threshold wins.
    result = calibrate([0.0, 1.0, 2.0, 3.0], [False, True, False, True])
    assert [row.youden_j for row in result.table] == [0.0, 0.5, 0.0, 0.5, 0.0]
    assert result.best_youden.threshold == 0.5
    # Equal J as fractions are equal floats (tp/3 - fp/3 in floats would give 1 - 2/3 != 1/3):
    # successes 3, 5, 6, failures 1, 2, 4 give J = 2/3 at 2.5 and 4.5; with margins 0.5 each the lower wins.
    result = calibrate([1, 2, 3, 4, 5, 6], [False, False, True, False, True, True])
    js = [row.youden_j for row in result.table]
    assert js == [0.0, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 1 / 3, 0.0]
    assert result.best_youden.threshold == 2.5


def test_candidates_never_sit_on_an_observed_score():
    rng = np.random.default_rng(7)
    scores = np.round(rng.normal(-3.0, 1.5, 60), 1).tolist()   # rounding creates repeated scores
    labels = (rng.random(60) < 0.5).tolist()
    table = threshold_table(scores, labels)
    thresholds = [row.threshold for row in table]
    assert len(set(scores)) < len(scores)
    assert len(table) == len(set(scores)) + 1
    assert thresholds == sorted(thresholds)
    assert not set(thresholds) & set(scores)
    assert table[0].threshold < min(scores) and table[-1].threshold > max(scores)
    for row in table:
        predicted = [score >= row.threshold for score in scores]
        assert row.tp == sum(p and label for p, label in zip(predicted, labels))
        assert row.fp == sum(p and not label for p, label in zip(predicted, labels))
        assert row.tp + row.fp + row.tn + row.fn == len(scores)


def test_constant_scores_and_adjacent_floats():
    # One distinct score: spread 0 becomes 1, so the candidates are score -+ 1.
    table = threshold_table([-2.0, -2.0], [True, False])
    assert [row.threshold for row in table] == [-3.0, -1.0]
    assert roc_auc([-2.0, -2.0], [True, False]) == 0.5
    # No float lies strictly between adjacent floats: the split takes the upper one, still classifying right.
    low, high = 1.0, math.nextafter(1.0, 2.0)
    table = threshold_table([low, high], [False, True])
    assert table[1].threshold == high and (table[1].tp, table[1].fp) == (1, 0)
    assert table[0].threshold < low < high < table[2].threshold


@pytest.mark.parametrize("scores, labels, message", [
    ([1.0, 2.0], [True], "got 2 scores but 1 labels"),
    ([1.0, 2.0], [True, True], "need at least one success and one failure episode, got 2 successes and 0 failures"),
    ([1.0, 2.0], [False, False], "need at least one success and one failure episode, got 0 successes and 2 failures"),
    ([], [], "need at least one success and one failure episode, got 0 successes and 0 failures"),
    ([1.0, math.nan], [True, False], "scores must be finite, got nan at episode 1 (1 non-finite in all)"),
    ([math.inf, -math.inf, 0.0], [True, False, True],
     "scores must be finite, got inf at episode 0 (2 non-finite in all)"),
])
def test_errors(scores, labels, message):
    for function in (calibrate, threshold_table, roc_auc):
        with pytest.raises(CalibrationError) as error:
            function(scores, labels)
        assert str(error.value) == message
        assert isinstance(error.value, TopRewardError) and isinstance(error.value, ValueError)


@pytest.mark.parametrize("threshold", [-1.3, -0.693, 0.1 + 0.2, -6.283185307179586, 1e-7, -2.5e16, 0.0, 1000.0])
def test_params_yaml_round_trips(threshold):
    params = yaml.safe_load(params_yaml(threshold))["/**"]["ros__parameters"]
    assert params == {"success_threshold": threshold}
    assert type(params["success_threshold"]) is float

    text = params_yaml(threshold, consecutive=3)
    assert text.startswith("# written by topreward-calibrate")
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert params == {"success_threshold": threshold, "success_consecutive": 3}
    assert type(params["success_threshold"]) is float and type(params["success_consecutive"]) is int


def test_params_yaml_of_a_numpy_float_and_bad_values():
    value = np.float64(-1.2999999999999998)
    assert yaml.safe_load(params_yaml(value))["/**"]["ros__parameters"]["success_threshold"] == value
    with pytest.raises(CalibrationError, match="success_threshold must be finite, got nan"):
        params_yaml(math.nan)
    with pytest.raises(CalibrationError, match="success_consecutive must be at least 1, got 0"):
        params_yaml(-1.0, consecutive=0)


def test_format_table():
    result = calibrate(OVERLAP_SCORES, OVERLAP_LABELS)
    text = format_table(result)
    lines = text.splitlines()
    assert lines[0] == "ROC AUC 0.8333 over 3 success and 3 failure episodes"
    assert lines[2] == "| threshold | TP | FP | TN | FN | precision | recall | F1 | Youden J | best |"
    rows = lines[4:]
    assert len(rows) == len(result.table) == 6
    assert rows[2] == "| 0.35 | 3 | 1 | 2 | 0 | 0.750 | 1.000 | 0.857 | 0.667 | best F1, best Youden J |"
    assert sum("best F1" in line for line in lines) == 1 and sum("best Youden J" in line for line in lines) == 1


def test_format_table_marks_different_best_rows():
    # Failure 0, success 1, failure 3, successes 4 and 5: F1 peaks at 0.5 (tp 3, fp 1: 6/7), J at 3.5 (tp 2, fp 0: 2/3).
    result = calibrate([0.0, 1.0, 3.0, 4.0, 5.0], [False, True, False, True, True])
    assert isinstance(result, Calibration) and isinstance(result.best_f1, ThresholdRow)
    assert (result.best_f1.threshold, result.best_f1.f1) == (0.5, 6 / 7)
    assert (result.best_youden.threshold, result.best_youden.youden_j) == (3.5, 2 / 3)
    lines = format_table(result).splitlines()
    assert "| 0.5 | 3 | 1 | 1 | 0 | 0.750 | 1.000 | 0.857 | 0.500 | best F1 |" in lines
    assert "| 3.5 | 2 | 0 | 2 | 1 | 1.000 | 0.667 | 0.800 | 0.667 | best Youden J |" in lines
