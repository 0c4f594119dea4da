"""Deterministic, stratified, optionally grouped train/validation splits (numpy-free, stdlib only).

How a split is made:

* Every sample, or every group in a grouped split, gets a rank: a 64-bit BLAKE2b hash of the seed and its
  key. The key of a sample is ``keys[i]`` when given (use the image's relative path) and its index otherwise;
  the key of a group is its name. Ranks do not depend on the other samples, so with ``keys`` the split does
  not depend on the input order, and adding one image moves at most a few others across (those of its
  class, near its rank), instead of reshuffling everything as a seeded permutation would.
* Per class, the target is ``val_fraction`` x the class's sample count. Units (samples or groups) are taken
  into validation in rank order, each one only if the count stays within the target; then the one remaining
  unit that brings the count closest to the target is added, if it brings it closer (a tie counts as
  closer). With single samples this takes exactly ``round(val_fraction * n)`` (halves round up), the lowest
  ranks first; with groups it never lets one big group overshoot the target when smaller ones fit.
* Then, for every class with at least 2 units: if validation got none, the unit whose size is closest to the
  target goes there; if validation got all of them, the one whose removal leaves the count closest to the
  target goes back to training. A class with a single unit stays in training. ``val_fraction == 0`` puts
  everything in training.
* In a grouped split the class of a group is its most common label (ties: the label that sorts first), and
  whole groups are assigned, so the validation share of each class is approximate and a group is never
  split. A ``None`` group means the sample is a group of its own.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from labeltune.core.errors import UnusableInputError

__all__ = ["MAX_VAL_FRACTION", "fold_indices", "groups_from_regex", "split_indices"]

#: Largest accepted validation fraction: beyond it too little is left to train on.
MAX_VAL_FRACTION = 0.9
# Float slack when comparing distances to a fractional target (0.1 * 30 is 3.0000000000000004).
_EPS = 1e-9


@dataclass
class _Unit:
    """A sample or a group: what is assigned to one side as a whole."""

    key: str
    rank: tuple[int, str]
    members: list[int]
    label: str


def _rank(seed: int, key: str) -> tuple[int, str]:
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big"), key


def _check_fraction(val_fraction: float) -> float:
    try:
        fraction = float(val_fraction)
    except (TypeError, ValueError):
        raise UnusableInputError(f"validation fraction must be a number, got {val_fraction!r}") from None
    if not (0.0 <= fraction <= MAX_VAL_FRACTION):  # also rejects NaN
        raise UnusableInputError(
            f"validation fraction must be between 0 and {MAX_VAL_FRACTION}, got {val_fraction!r}"
        )
    return fraction


def _majority(labels: list[str]) -> str:
    counts = Counter(labels)
    return min(counts, key=lambda label: (-counts[label], label))


def _choose_val(units: list[_Unit], fraction: float) -> list[_Unit]:
    """Pick the validation units of one class (see the module docstring)."""
    ordered = sorted(units, key=lambda unit: unit.rank)
    target = fraction * sum(len(unit.members) for unit in ordered)
    chosen: list[_Unit] = []
    rest: list[_Unit] = []
    count = 0
    for unit in ordered:
        if count + len(unit.members) <= target + _EPS:
            chosen.append(unit)
            count += len(unit.members)
        else:
            rest.append(unit)
    if rest:
        # min() keeps the first of equals, i.e. the lowest rank.
        best = min(rest, key=lambda unit: abs(count + len(unit.members) - target))
        if abs(count + len(best.members) - target) <= abs(count - target) + _EPS:
            chosen.append(best)
            count += len(best.members)
    if len(ordered) >= 2:
        if not chosen:  # the lowest rank among equals, as above
            chosen.append(min(ordered, key=lambda unit: abs(len(unit.members) - target)))
        elif len(chosen) == len(ordered):
            # Among equals, send back the highest rank, so the lowest ranks stay in validation.
            back = min(reversed(chosen), key=lambda unit: abs(count - len(unit.members) - target))
            chosen.remove(back)
    elif chosen:
        chosen.clear()  # a class with a single unit trains on it
    return chosen


def _units(
    labels: Sequence[str], seed: int, groups: Sequence[str | None] | None, keys: Sequence[str] | None
) -> dict[str, list[_Unit]]:
    """The units (samples or groups) of each class, with their ranks."""
    n = len(labels)
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} labels")
    if keys is not None and len(keys) != n:
        raise ValueError(f"keys has {len(keys)} entries for {n} labels")
    sample_keys = [str(key) for key in keys] if keys is not None else [str(i) for i in range(n)]
    members: dict[str, list[int]] = defaultdict(list)
    for i in range(n):
        group = groups[i] if groups is not None else None
        # "\x00" keeps a sample's own group apart from any user group of the same name.
        members[f"\x00{sample_keys[i]}" if group is None else str(group)].append(i)
    by_class: dict[str, list[_Unit]] = defaultdict(list)
    for key, indices in members.items():
        label = _majority([str(labels[i]) for i in indices])
        by_class[label].append(_Unit(key=key, rank=_rank(seed, key), members=indices, label=label))
    return by_class


def fold_indices(
    labels: Sequence[str],
    folds: int,
    fold: int,
    seed: int = 0,
    groups: Sequence[str | None] | None = None,
    *,
    keys: Sequence[str] | None = None,
) -> tuple[list[int], list[int]]:
    """Split into ``(train, val)`` for k-fold cross-validation, validating on fold ``fold`` (0-based).

    Stratified and grouped like :func:`split_indices`: per class, units (samples, or whole groups) are
    dealt in rank order, largest first among groups, to the fold holding the fewest of that class so far,
    so every sample is in exactly one fold's validation set and the folds of a class differ by at most one
    unit's size.
    """
    if folds < 2:
        raise UnusableInputError(f"cross-validation needs at least 2 folds, got {folds}")
    if not 0 <= fold < folds:
        raise UnusableInputError(f"fold {fold + 1} does not exist: choose 1 to {folds}")
    assignment = [0] * len(labels)
    by_class = _units(labels, seed, groups, keys)
    for label in sorted(by_class):
        counts = [0] * folds
        for unit in sorted(by_class[label], key=lambda unit: (-len(unit.members), unit.rank)):
            target = min(range(folds), key=lambda k: (counts[k], k))
            counts[target] += len(unit.members)
            for i in unit.members:
                assignment[i] = target
    val = [i for i, k in enumerate(assignment) if k == fold]
    train = [i for i, k in enumerate(assignment) if k != fold]
    return train, val


def split_indices(
    labels: Sequence[str],
    val_fraction: float = 0.2,
    seed: int = 0,
    groups: Sequence[str | None] | None = None,
    *,
    keys: Sequence[str] | None = None,
) -> tuple[list[int], list[int]]:
    """Split indices into ``(train, val)``, each sorted, stratified by label and never splitting a group.

    ``labels[i]`` is the class of sample ``i``. ``groups[i]``, when given, names the group of sample ``i``
    (an animal, a slide, a video trajectory...); all samples of a group land on the same side, and ``None``
    makes a sample its own group. ``keys[i]`` is an optional stable identity of sample ``i`` (its relative
    path): with it the split depends only on the set of (key, label, group) and the seed, not on the order.
    Ungrouped samples with equal keys (the same file listed twice) are kept together.

    Per class, ``round(val_fraction * n)`` samples go to validation, except that every class with at least
    2 samples (grouped: 2 groups) keeps at least one in training and gets at least one in validation, and a
    class with a single sample (group) goes to training. The module docstring has the details.

    Raises :class:`UnusableInputError` when ``val_fraction`` is outside ``[0, 0.9]``, and
    :class:`ValueError` when ``groups`` or ``keys`` differ in length from ``labels``.
    """
    fraction = _check_fraction(val_fraction)
    n = len(labels)
    by_class = _units(labels, seed, groups, keys)
    if fraction == 0.0:
        return list(range(n)), []

    val: list[int] = []
    for label in sorted(by_class):
        for unit in _choose_val(by_class[label], fraction):
            val.extend(unit.members)
    val.sort()
    in_val = set(val)
    train = [i for i in range(n) if i not in in_val]
    return train, val


def groups_from_regex(names: Sequence[str], pattern: str) -> list[str | None]:
    r"""Derive a group per file name from a regular expression (the ``--group-by`` option).

    The pattern is searched anywhere in each name (:func:`re.search`). The group is the first capture group
    when the pattern has one, the whole match otherwise; ``fish_(\d+)_`` groups ``fish_0035_10625.png`` as
    ``"0035"``. A name that does not match, or whose capture is empty or did not take part in the match, gets
    ``None`` (a group of its own). Raises :class:`UnusableInputError` for an invalid pattern.
    """
    try:
        regex = re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        message = " ".join(str(exc).split())
        raise UnusableInputError(f"invalid group regex {pattern!r}: {message}") from None
    result: list[str | None] = []
    for name in names:
        match = regex.search(name)
        if match is None:
            result.append(None)
            continue
        value = match.group(1) if regex.groups else match.group(0)
        result.append(value if value else None)
    return result
