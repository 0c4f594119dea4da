from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltune.core.errors import UnusableInputError
from labeltune.core.splits import groups_from_regex, split_indices

FISH_MANIFEST = Path("/work/shared/data/fish4knowledge/MANIFEST.csv")


def _imbalanced() -> list[str]:
    counts = {"a": 100, "b": 10, "c": 3, "d": 2, "e": 1}
    labels = [label for label, n in counts.items() for _ in range(n)]
    random.Random(1).shuffle(labels)
    return labels


def _check_partition(n: int, train: list[int], val: list[int]) -> None:
    assert train == sorted(train)
    assert val == sorted(val)
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(n))


# --- stratified ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_stratified_proportions_on_imbalanced_data(seed: int) -> None:
    labels = _imbalanced()
    train, val = split_indices(labels, val_fraction=0.2, seed=seed)
    _check_partition(len(labels), train, val)
    in_val = Counter(labels[i] for i in val)
    in_train = Counter(labels[i] for i in train)
    # a: round(20) = 20; b: round(2) = 2; c: round(0.6) = 1; d: round(0.4) = 0 -> raised to 1;
    # e: a single sample -> train
    assert in_val == {"a": 20, "b": 2, "c": 1, "d": 1}
    assert in_train == {"a": 80, "b": 8, "c": 2, "d": 1, "e": 1}


def test_rounding_and_clamping() -> None:
    # 0.25 * 10 = 2.5 rounds half up to 3; 0.9 * 2 = 1.8 rounds to 2, clamped to keep 1 in train.
    _, val = split_indices(["x"] * 10, val_fraction=0.25)
    assert len(val) == 3
    _, val = split_indices(["x"] * 2, val_fraction=0.9)
    assert len(val) == 1
    _, val = split_indices(["x"] * 30, val_fraction=0.1)
    assert len(val) == 3
    _, val = split_indices(["x"] * 10, val_fraction=0.9)
    assert len(val) == 9


def test_zero_fraction_and_empty() -> None:
    assert split_indices(["a", "b", "b"], val_fraction=0.0) == ([0, 1, 2], [])
    assert split_indices(["a", "a"], val_fraction=0.0, groups=["g", None]) == ([0, 1], [])
    assert split_indices([], val_fraction=0.2) == ([], [])


@pytest.mark.parametrize("fraction", [-0.1, 0.95, 1.0, float("nan"), float("inf")])
def test_bad_fraction_rejected(fraction: float) -> None:
    with pytest.raises(UnusableInputError, match="validation fraction"):
        split_indices(["a", "a", "b", "b"], val_fraction=fraction)


def test_length_mismatch_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        split_indices(["a", "b"], groups=["g"])
    with pytest.raises(ValueError):
        split_indices(["a", "b"], keys=["k"])


def test_deterministic_by_seed_and_different_across_seeds() -> None:
    labels = _imbalanced()
    assert split_indices(labels, seed=3) == split_indices(labels, seed=3)
    splits = {tuple(split_indices(labels, seed=seed)[1]) for seed in range(10)}
    assert len(splits) == 10


def test_keys_make_split_independent_of_order() -> None:
    labels = _imbalanced()
    keys = [f"img_{i:04d}.png" for i in range(len(labels))]
    _, val = split_indices(labels, seed=5, keys=keys)
    val_keys = {keys[i] for i in val}

    order = list(range(len(labels)))
    random.Random(9).shuffle(order)
    _, val2 = split_indices([labels[i] for i in order], seed=5, keys=[keys[i] for i in order])
    assert {keys[order[j]] for j in val2} == val_keys


def test_adding_one_sample_moves_few_others() -> None:
    labels = ["a"] * 200
    keys = [f"img_{i:04d}.png" for i in range(200)]
    _, val = split_indices(labels, seed=0, keys=keys)
    _, val2 = split_indices([*labels, "a"], seed=0, keys=[*keys, "new.png"])
    before = {keys[i] for i in val}
    after = {([*keys, "new.png"])[i] for i in val2}
    # 40 -> round(40.2) = 40: the new sample displaces at most one old one, nothing else moves.
    assert len(before ^ (after - {"new.png"})) <= 1


# --- grouped -------------------------------------------------------------------------------------------


def test_grouped_split_keeps_groups_together_and_stratifies() -> None:
    # Class a: 10 groups of 5; class b: 4 groups of 2; class c: 2 groups of 1; class d: 1 group.
    labels: list[str] = []
    groups: list[str | None] = []
    for label, n_groups, size in (("a", 10, 5), ("b", 4, 2), ("c", 2, 1), ("d", 1, 3)):
        for g in range(n_groups):
            labels += [label] * size
            groups += [f"{label}{g}"] * size
    train, val = split_indices(labels, val_fraction=0.2, seed=0, groups=groups)
    _check_partition(len(labels), train, val)
    val_groups = {groups[i] for i in val}
    train_groups = {groups[i] for i in train}
    assert not val_groups & train_groups
    in_val = Counter(labels[i] for i in val)
    assert in_val["a"] == 10  # 2 groups of 5 = 20% of 50
    assert in_val["b"] == 2  # 1 group of 2: 0.2 * 8 = 1.6, closest reachable is 2
    assert in_val["c"] == 1  # 2 groups: one each side
    assert in_val["d"] == 0  # a single group stays in training


@pytest.mark.parametrize("seed", range(20))
def test_big_group_does_not_overshoot(seed: int) -> None:
    # Fish4Knowledge's Scolopsis bilineata: 36 images in trajectories of 14, 7, 4, 5 and 6; target 7.2.
    sizes = {"t14": 14, "t7": 7, "t4": 4, "t5": 5, "t6": 6}
    groups: list[str | None] = [g for g, size in sizes.items() for _ in range(size)]
    labels = ["fish"] * len(groups)
    _, val = split_indices(labels, val_fraction=0.2, seed=seed, groups=groups)
    val_groups = {groups[i] for i in val}
    assert "t14" not in val_groups
    assert 4 <= len(val) <= 11


def test_none_groups_are_singletons() -> None:
    labels = ["a"] * 10
    groups: list[str | None] = [None] * 10
    assert split_indices(labels, seed=4, groups=groups) == split_indices(labels, seed=4)


def test_group_class_is_majority_label() -> None:
    # Group g1 is mostly "a" (one "b" rides along); the "b" singletons form their own class units.
    labels = ["a", "a", "b", "a", "a", "b", "b", "b"]
    groups: list[str | None] = ["g1", "g1", "g1", "g2", "g2", None, None, None]
    for seed in range(20):
        train, val = split_indices(labels, val_fraction=0.3, seed=seed, groups=groups)
        side = {i in val for i in (0, 1, 2)}
        assert len(side) == 1
        assert {0, 3} & set(val)
        assert {0, 3} & set(train)  # class a: one group each side


@st.composite
def _grouped_data(draw: st.DrawFn) -> tuple[list[str], list[str | None]]:
    n = draw(st.integers(1, 80))
    labels = draw(st.lists(st.sampled_from("abcde"), min_size=n, max_size=n))
    groups = draw(
        st.lists(st.one_of(st.none(), st.sampled_from([f"g{i}" for i in range(15)])), min_size=n, max_size=n)
    )
    return labels, groups


@given(_grouped_data(), st.floats(0.01, 0.9), st.integers(0, 2**32))
@settings(max_examples=300, deadline=None)
def test_grouped_split_never_splits_a_group(
    data: tuple[list[str], list[str | None]], fraction: float, seed: int
) -> None:
    labels, groups = data
    train, val = split_indices(labels, val_fraction=fraction, seed=seed, groups=groups)
    _check_partition(len(labels), train, val)
    val_set = set(val)
    sides: dict[str, set[bool]] = defaultdict(set)
    for i, group in enumerate(groups):
        if group is not None:
            sides[group].add(i in val_set)
    assert all(len(s) == 1 for s in sides.values())

    # Each class (the majority label of its groups) with >= 2 groups has a group on each side.
    unit_labels: dict[str, list[str]] = defaultdict(list)
    for i, (label, group) in enumerate(zip(labels, groups, strict=True)):
        unit_labels[group if group is not None else f"#{i}"].append(label)
    unit_class: dict[str, str] = {}
    for unit, members in unit_labels.items():
        counts = Counter(members)
        unit_class[unit] = min(counts, key=lambda lab: (-counts[lab], lab))
    units_of: dict[str, list[str]] = defaultdict(list)
    for unit, label in unit_class.items():
        units_of[label].append(unit)
    unit_in_val = {
        (group if group is not None else f"#{i}"): (i in val_set) for i, group in enumerate(groups)
    }
    for label, units in units_of.items():
        flags = {unit_in_val[u] for u in units}
        if len(units) >= 2:
            assert flags == {True, False}, label
        else:
            assert flags == {False}, label

    assert split_indices(labels, val_fraction=fraction, seed=seed, groups=groups) == (train, val)


@given(st.lists(st.sampled_from("abc"), min_size=1, max_size=60), st.floats(0.05, 0.9), st.integers(0, 1000))
@settings(max_examples=200, deadline=None)
def test_stratified_counts_property(labels: list[str], fraction: float, seed: int) -> None:
    train, val = split_indices(labels, val_fraction=fraction, seed=seed)
    _check_partition(len(labels), train, val)
    totals = Counter(labels)
    in_val = Counter(labels[i] for i in val)
    for label, n in totals.items():
        if n == 1:
            assert in_val[label] == 0
        else:
            expected = min(max(int(fraction * n + 0.5 + 1e-9), 1), n - 1)
            assert in_val[label] == expected


# --- regex groups --------------------------------------------------------------------------------------


FISH_NAMES = [
    "fish_003510805403_10625.png",
    "fish_003510805403_10631.png",
    "fish_003798666092_16076.png",
    "README.txt",
]


def test_groups_from_regex_capture_group() -> None:
    assert groups_from_regex(FISH_NAMES, r"fish_(\d+)_") == [
        "003510805403",
        "003510805403",
        "003798666092",
        None,
    ]


def test_groups_from_regex_whole_match_without_groups() -> None:
    assert groups_from_regex(FISH_NAMES, r"fish_\d+") == [
        "fish_003510805403",
        "fish_003510805403",
        "fish_003798666092",
        None,
    ]


def test_groups_from_regex_empty_or_missing_capture_is_own_group() -> None:
    assert groups_from_regex(["a_.png", "b.png", "x7.png"], r"a_(\d*)|x(\d)") == [None, None, None]
    assert groups_from_regex(["a.png"], r"z*") == [None]
    assert groups_from_regex(["dir/fish_12_3.png"], r"fish_(\d+)_") == ["12"]  # searched anywhere


@pytest.mark.parametrize("pattern", [r"fish_(\d+", r"[a-", r"*x", "a{2,1}"])
def test_bad_regex_rejected_in_one_line(pattern: str) -> None:
    with pytest.raises(UnusableInputError) as info:
        groups_from_regex(FISH_NAMES, pattern)
    message = str(info.value)
    assert "\n" not in message
    assert pattern in message or repr(pattern) in message


def test_regex_groups_feed_split() -> None:
    names = [f"fish_{t:012d}_{f:05d}.png" for t in range(12) for f in range(3)]
    labels = ["a" if t < 6 else "b" for t in range(12) for _ in range(3)]
    groups = groups_from_regex(names, r"fish_(\d+)_")
    train, val = split_indices(labels, val_fraction=0.3, seed=2, groups=groups)
    assert not {groups[i] for i in train} & {groups[i] for i in val}
    assert {labels[i] for i in val} == {"a", "b"}


# --- real data -----------------------------------------------------------------------------------------


@pytest.mark.skipif(not FISH_MANIFEST.is_file(), reason="Fish4Knowledge manifest not available")
def test_fish4knowledge_grouped_split_by_trajectory() -> None:
    with FISH_MANIFEST.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = [row["path"] for row in rows]
    labels = [row["species"] for row in rows]
    groups = groups_from_regex([Path(p).name for p in paths], r"fish_(\d+)_")
    assert groups == [row["trajectory_id"] for row in rows]

    train, val = split_indices(labels, val_fraction=0.2, seed=0, groups=groups, keys=paths)
    _check_partition(len(rows), train, val)
    assert not {groups[i] for i in train} & {groups[i] for i in val}

    trajectories: dict[str, set[str]] = defaultdict(set)
    for label, group in zip(labels, groups, strict=True):
        assert group is not None
        trajectories[label].add(group)
    val_labels = {labels[i] for i in val}
    for label, trajs in trajectories.items():
        if len(trajs) >= 2:
            assert label in val_labels, label
    # Roughly 20% overall even though whole trajectories move.
    assert 0.15 < len(val) / len(rows) < 0.25


# ------------------------------------------------------------------------------------------ k-fold


def test_folds_cover_every_sample_once_stratified() -> None:
    from labeltune.core.splits import fold_indices

    labels = ["a"] * 10 + ["b"] * 7 + ["c"] * 3
    seen: list[int] = []
    for fold in range(3):
        train, val = fold_indices(labels, 3, fold, seed=1)
        assert sorted(train + val) == list(range(len(labels)))
        counts = Counter(labels[i] for i in val)
        assert counts["a"] in (3, 4) and counts["b"] in (2, 3) and counts["c"] == 1
        seen += val
    assert sorted(seen) == list(range(len(labels)))


def test_folds_keep_groups_together() -> None:
    from labeltune.core.splits import fold_indices

    labels = ["a"] * 12 + ["b"] * 12
    groups = [f"g{i // 3}" for i in range(24)]  # 8 groups of 3
    for fold in range(4):
        _, val = fold_indices(labels, 4, fold, seed=0, groups=groups)
        in_val = {groups[i] for i in val}
        assert all(groups[i] not in in_val for i in range(24) if i not in val)
        assert len(val) == 6


def test_folds_reject_bad_numbers() -> None:
    from labeltune.core.splits import fold_indices

    with pytest.raises(UnusableInputError):
        fold_indices(["a", "b"], 1, 0)
    with pytest.raises(UnusableInputError, match="fold 4"):
        fold_indices(["a", "b"], 3, 3)
