from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltune.core.errors import UnusableInputError
from labeltune.core.metrics import classification_metrics, confusion_matrix, top_k


def _assert_builtins(value: Any) -> None:
    """Recursively check the value holds only JSON builtins (no numpy scalars)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            _assert_builtins(item)
    elif isinstance(value, list):
        for item in value:
            _assert_builtins(item)
    else:
        assert type(value) in (int, float, str), f"{value!r} is {type(value)}"


def _reference(y_true: list[int], y_pred: list[int], num_classes: int) -> dict[str, Any]:
    """Straightforward per-class loops following scikit-learn's definitions (zero_division=0)."""
    precision, recall, f1 = [], [], []
    for c in range(num_classes):
        tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == c and p != c)
        precision.append(tp / (tp + fp) if tp + fp else 0.0)
        recall.append(tp / (tp + fn) if tp + fn else 0.0)
        f1.append(2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0)
    present_true = sorted(set(y_true))
    present_any = sorted(set(y_true) | set(y_pred))
    return {
        "accuracy": sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true),
        "balanced_accuracy": sum(recall[c] for c in present_true) / len(present_true),
        "macro_f1": sum(f1[c] for c in present_any) / len(present_any),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


# --- hand-computed examples ------------------------------------------------------------------------------


def test_three_class_hand_computed() -> None:
    # true:  0 0 0 1 1 2
    # pred:  0 1 0 1 2 2
    # confusion (rows true): [[2,1,0],[0,1,1],[0,0,1]]
    # precision: 2/2, 1/2, 1/2; recall: 2/3, 1/2, 1/1
    # F1: 2*1*(2/3)/(5/3) = 0.8; 0.5; 2*0.5*1/1.5 = 2/3
    m = classification_metrics([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2], ["cat", "dog", "eel"])
    assert m["n"] == 6
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # 13/18
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)  # 59/90
    expected = [
        {"class": "cat", "precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3},
        {"class": "dog", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        {"class": "eel", "precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1},
    ]
    assert len(m["per_class"]) == 3
    for got, want in zip(m["per_class"], expected, strict=True):
        assert got["class"] == want["class"]
        assert got["support"] == want["support"]
        for key in ("precision", "recall", "f1"):
            assert got[key] == pytest.approx(want[key]), (want["class"], key)
    _assert_builtins(m)
    json.dumps(m)


def test_absent_classes_follow_sklearn_conventions() -> None:
    # Classes a, b are true; c is only predicted; d appears nowhere.
    # sklearn: f1_score([0,0,1,1],[0,2,1,1], average="macro") == (2/3 + 1 + 0) / 3 == 5/9
    #          balanced_accuracy_score(...) == mean(recall_a=0.5, recall_b=1) == 0.75
    m = classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1]), ["a", "b", "c", "d"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx(5 / 9)
    c, d = m["per_class"][2], m["per_class"][3]
    assert c == {"class": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert d == {"class": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"] == [[1, 0, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    _assert_builtins(m)


def test_class_never_predicted_has_zero_precision() -> None:
    # Class 1 has true samples but is never predicted: precision 0/0 -> 0.0, recall 0, F1 0.
    m = classification_metrics([0, 1, 1], [0, 0, 0], ["x", "y"])
    y = m["per_class"][1]
    assert (y["precision"], y["recall"], y["f1"], y["support"]) == (0.0, 0.0, 0.0, 2)
    # x: precision 1/3, recall 1, F1 = 2/(2+2+0) = 0.5
    assert m["per_class"][0]["f1"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(0.25)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(1 / 3)


def test_single_sample() -> None:
    m = classification_metrics([1], [1], ["a", "b"])
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    assert m["per_class"][0]["support"] == 0


def test_empty_input_is_unusable() -> None:
    with pytest.raises(UnusableInputError):
        classification_metrics([], [], ["a", "b"])
    with pytest.raises(UnusableInputError):
        classification_metrics(np.array([], dtype=np.int64), np.array([], dtype=np.int64), ["a"])


def test_bad_inputs_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="length"):
        classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 2], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, -1], [0, 1], 2)
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 2)


def test_confusion_matrix_basic() -> None:
    cm = confusion_matrix([0, 1, 2, 2, 2], [0, 2, 2, 2, 1], 4)
    assert cm.dtype == np.int64
    assert cm.shape == (4, 4)
    assert cm.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 2, 0], [0, 0, 0, 0]]
    assert confusion_matrix([], [], 3).tolist() == [[0] * 3] * 3


# --- top_k ---------------------------------------------------------------------------------------------


def test_top_k_single_and_batch() -> None:
    idx, val = top_k(np.array([0.1, 0.5, 0.15, 0.25], dtype=np.float32), 3)
    assert idx.tolist() == [1, 3, 2]
    assert idx.dtype == np.int64
    assert val.dtype == np.float32
    np.testing.assert_allclose(val, [0.5, 0.25, 0.15])

    batch = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    idx, val = top_k(batch, 2)
    assert idx.tolist() == [[0, 1], [2, 1]]
    np.testing.assert_allclose(val, [[0.7, 0.2], [0.6, 0.3]])


def test_top_k_ties_clipping_and_errors() -> None:
    idx, _ = top_k(np.array([0.25, 0.5, 0.25]), 3)
    assert idx.tolist() == [1, 0, 2]  # ties: lower index first
    idx, val = top_k(np.array([0.2, 0.8]), 5)  # k > C is clipped
    assert idx.tolist() == [1, 0]
    assert val.tolist() == [0.8, 0.2]
    idx, _ = top_k(np.array([0.2, np.nan, 0.8]), 3)
    assert idx.tolist() == [2, 0, 1]  # NaN last
    with pytest.raises(ValueError):
        top_k(np.array([0.5, 0.5]), 0)
    with pytest.raises(ValueError):
        top_k(np.zeros((2, 2, 2)), 1)


@given(st.lists(st.lists(st.floats(0, 1), min_size=5, max_size=5), min_size=1, max_size=8), st.integers(1, 5))
def test_top_k_matches_sorting(rows: list[list[float]], k: int) -> None:
    probs = np.array(rows)
    idx, val = top_k(probs, k)
    assert idx.shape == val.shape == (len(rows), k)
    for r, row in enumerate(rows):
        assert val[r].tolist() == sorted(row, reverse=True)[:k]
        assert [row[i] for i in idx[r]] == val[r].tolist()
        assert len(set(idx[r].tolist())) == k


# --- properties ----------------------------------------------------------------------------------------


@st.composite
def _labelled(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    num_classes = draw(st.integers(1, 6))
    n = draw(st.integers(1, 60))
    label = st.integers(0, num_classes - 1)
    y_true = draw(st.lists(label, min_size=n, max_size=n))
    y_pred = draw(st.lists(label, min_size=n, max_size=n))
    return y_true, y_pred, num_classes


@given(_labelled())
@settings(max_examples=200)
def test_accuracy_is_trace_over_total(data: tuple[list[int], list[int], int]) -> None:
    y_true, y_pred, k = data
    cm = confusion_matrix(y_true, y_pred, k)
    assert int(cm.sum()) == len(y_true)
    m = classification_metrics(y_true, y_pred, [f"c{i}" for i in range(k)])
    assert m["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert m["confusion_matrix"] == cm.tolist()
    assert [row["support"] for row in m["per_class"]] == cm.sum(axis=1).tolist()


@given(_labelled())
@settings(max_examples=200)
def test_values_in_unit_interval_and_json_ready(data: tuple[list[int], list[int], int]) -> None:
    y_true, y_pred, k = data
    m = classification_metrics(y_true, y_pred, [f"c{i}" for i in range(k)])
    _assert_builtins(m)
    json.dumps(m)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert 0.0 <= m[key] <= 1.0
    for row in m["per_class"]:
        for key in ("precision", "recall", "f1"):
            assert 0.0 <= row[key] <= 1.0


@given(_labelled())
@settings(max_examples=200)
def test_matches_reference_implementation(data: tuple[list[int], list[int], int]) -> None:
    y_true, y_pred, k = data
    m = classification_metrics(y_true, y_pred, [f"c{i}" for i in range(k)])
    ref = _reference(y_true, y_pred, k)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert m[key] == pytest.approx(ref[key])
    for c, row in enumerate(m["per_class"]):
        for key in ("precision", "recall", "f1"):
            assert row[key] == pytest.approx(ref[key][c])


@given(st.lists(st.integers(0, 4), min_size=1, max_size=50))
def test_perfect_predictions_score_one(y: list[int]) -> None:
    m = classification_metrics(y, list(y), ["a", "b", "c", "d", "e"])
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    for c, row in enumerate(m["per_class"]):
        expected = 1.0 if c in y else 0.0  # absent classes: 0/0 -> 0.0
        assert row["precision"] == row["recall"] == row["f1"] == expected


@given(st.integers(1, 5), st.integers(1, 8), st.data())
def test_balanced_accuracy_on_balanced_set(num_classes: int, per_class: int, data: st.DataObject) -> None:
    y_true = [c for c in range(num_classes) for _ in range(per_class)]
    y_pred = data.draw(st.lists(st.integers(0, num_classes - 1), min_size=len(y_true), max_size=len(y_true)))
    m = classification_metrics(y_true, y_pred, [str(c) for c in range(num_classes)])
    mean_recall = sum(row["recall"] for row in m["per_class"]) / num_classes
    assert m["balanced_accuracy"] == pytest.approx(mean_recall)
    # With equal supports, mean recall is total correct / total, i.e. accuracy.
    assert m["balanced_accuracy"] == pytest.approx(m["accuracy"])


@given(_labelled())
def test_balanced_accuracy_is_mean_recall_over_true_classes(data: tuple[list[int], list[int], int]) -> None:
    y_true, y_pred, k = data
    m = classification_metrics(y_true, y_pred, [f"c{i}" for i in range(k)])
    recalls = [row["recall"] for row in m["per_class"] if row["support"] > 0]
    assert m["balanced_accuracy"] == pytest.approx(sum(recalls) / len(recalls))


# ------------------------------------------------------------------------------------------ honest numbers


def test_wilson_interval_known_values() -> None:
    from labeltune.core.metrics import wilson_interval

    low, high = wilson_interval(17, 19)
    assert low == pytest.approx(0.686, abs=0.002) and high == pytest.approx(0.971, abs=0.002)
    low, high = wilson_interval(19, 19)  # "100 %" from 19 images is 83-100 %
    assert low == pytest.approx(0.832, abs=0.002) and high == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(1, 1)[0] < 0.25  # one validation image proves next to nothing


def test_metrics_carry_the_accuracy_interval_and_warnings() -> None:
    from labeltune.core.metrics import headline_warnings

    m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), ["a", "b"])
    low, high = m["accuracy_interval"]
    assert low < m["accuracy"] < high
    few = headline_warnings(4, "imagenet-57934424", m["accuracy_interval"])
    assert len(few) == 1 and "Only 4 validation images" in few[0] and f"{100 * low:.0f}" in few[0]
    assert any("random weights" in w for w in headline_warnings(400, "random-seed0"))
    assert headline_warnings(400, "imagenet-57934424") == []
