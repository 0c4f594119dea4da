"""What a grouping spec would do to the labeled images, before training: the Group-by dialog's preview.

From file names only (no image is read), cheap enough to run on every edit: how the labeled images would
split, a few example names with the part that forms their group, warnings, and a ready-made file-name
pattern worth offering when the user chose no grouping. The spec itself is :mod:`labeltune.core.grouping`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labeltune.core.errors import UnusableInputError
from labeltune.core.grouping import FOLDER, NAME_PRESETS, PATTERN, GroupingSpec, NamePreset, group_ids
from labeltune.core.splits import split_indices

__all__ = ["GroupExample", "GroupingPreview", "GroupingSuggestion", "preview_grouping", "suggest_grouping"]


@dataclass(frozen=True)
class GroupExample:
    """One file name and its group; ``span`` is the part of ``name`` that forms the group, if it is one."""

    name: str
    group: str | None
    span: tuple[int, int] | None = None


@dataclass
class GroupingPreview:
    """How a grouping would split the labeled images (computed from names, no image is read)."""

    description: str
    groups: int
    alone: int  # labeled images without a group (each a group of its own)
    train: int
    val: int
    per_class: dict[str, tuple[int, int]] = field(default_factory=dict)  # class -> (train, val)
    examples: list[GroupExample] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _examples(spec: GroupingSpec, paths: Sequence[Path], groups: Sequence[str | None]) -> list[GroupExample]:
    """Up to three images from different groups, spread over the list."""
    grouped = [i for i, g in enumerate(groups) if g is not None]
    picked: list[int] = []
    seen: set[str | None] = set()
    for i in grouped[:: max(1, len(grouped) // 6)] + grouped:
        if groups[i] not in seen:
            seen.add(groups[i])
            picked.append(i)
        if len(picked) == 3:
            break
    regex = re.compile(spec.pattern) if spec.kind == PATTERN else None
    examples = []
    for i in picked:
        path = Path(paths[i])
        name, span = path.name, None
        if regex is not None:
            match = regex.search(name)
            if match is not None:
                span = match.span(1 if regex.groups else 0)
        elif spec.kind == FOLDER:
            folder = str(groups[i])
            name, span = f"{folder}/{path.name}", (0, len(folder))
        examples.append(GroupExample(name, groups[i], span))
    return examples


def preview_grouping(
    spec: GroupingSpec | str | None,
    paths: Sequence[Path],
    labels: Sequence[str | None],
    imported: Sequence[str | None] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    source_csv: Path | None = None,
) -> GroupingPreview:
    """Split the labeled images as training would, from their names, and say how it went.

    Training ranks single images by their content hash, the preview by their path, so where some images
    have no group the counts can differ by an image or two per class; grouped images split identically.
    Raises :class:`UnusableInputError` like :func:`group_ids`.
    """
    spec = spec if isinstance(spec, GroupingSpec) else GroupingSpec.parse(spec)
    chosen = [i for i, label in enumerate(labels) if label is not None]
    kept = [paths[i] for i in chosen]
    names = [str(labels[i]) for i in chosen]
    own = [imported[i] for i in chosen] if imported is not None else None
    groups = group_ids(spec, kept, own, source_csv)
    use = any(g is not None for g in groups)
    train, val = split_indices(
        names, val_fraction, seed, groups if use else None, keys=[os.fspath(p) for p in kept]
    )
    per_class: dict[str, list[int]] = {label: [0, 0] for label in sorted(set(names))}
    for i in train:
        per_class[names[i]][0] += 1
    for i in val:
        per_class[names[i]][1] += 1
    named = Counter(g for g in groups if g is not None)
    warnings = []
    if val_fraction > 0 and not val and names:
        warnings.append("No image is left for validation: every class is a single group.")
    elif use and len(named) == 1:
        warnings.append("All grouped images form one group: check the pattern.")
    return GroupingPreview(
        description=spec.describe(),
        groups=len(named),
        alone=sum(1 for g in groups if g is None) if use else len(groups),
        train=len(train),
        val=len(val),
        per_class={label: (a, b) for label, (a, b) in per_class.items()},
        examples=_examples(spec, kept, groups) if use else [],
        warnings=warnings,
    )


@dataclass(frozen=True)
class GroupingSuggestion:
    """A ready-made file-name pattern that looks meaningful for these images, with what it would give."""

    preset: NamePreset
    groups: int
    grouped_images: int  # images that share their group with at least one other
    example: str  # one group's name


def suggest_grouping(paths: Sequence[Path], labels: Sequence[str | None]) -> GroupingSuggestion | None:
    """A file-name pattern worth offering when the user chose no grouping, or ``None``.

    Offered when it puts at least a third of the labeled images together with others, in more groups
    than twice the classes (a pattern that only finds the class in the name, ``Corn_Blight (12).jpg``,
    is no grouping) and fewer groups than images. Names only: cheap enough to run on every preview.
    """
    chosen = [paths[i] for i, label in enumerate(labels) if label is not None]
    classes = len({label for label in labels if label is not None})
    best: GroupingSuggestion | None = None
    for preset in NAME_PRESETS:
        try:
            ids = group_ids(GroupingSpec("pattern", pattern=preset.pattern), chosen)
        except UnusableInputError:  # matches no name here
            continue
        sizes = Counter(g for g in ids if g is not None)
        grouped = sum(n for n in sizes.values() if n > 1)
        if len(sizes) <= max(3, 2 * classes) or len(sizes) >= len(chosen) or 3 * grouped < len(chosen):
            continue
        if best is None or grouped > best.grouped_images:
            example = max(sizes, key=lambda g: (sizes[g], g))
            best = GroupingSuggestion(preset, len(sizes), grouped, example)
    return best
