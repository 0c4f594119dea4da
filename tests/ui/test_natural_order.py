"""The gallery's natural file-name order: ``img2`` before ``img10``, as one fast string key."""

from __future__ import annotations

import random
import re

from labeltune.ui.gallery_filters import natural_key


def _reference(text: str) -> tuple[tuple[int, int | str], ...]:
    """The plain definition: text runs and numbers in turn, numbers compared as numbers."""
    parts = re.split(r"(\d+)", text.casefold())
    return tuple((1, int(p)) if i % 2 else (0, p) for i, p in enumerate(parts) if p)


def test_the_string_key_orders_as_the_plain_definition() -> None:
    rng = random.Random(0)
    alphabet = "ab_.-Z0912"
    for _ in range(5000):
        a, b = ("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(2))
        if _reference(a) != _reference(b):
            assert (_reference(a) < _reference(b)) == (natural_key(a) < natural_key(b)), (a, b)


def test_names_a_person_would_sort() -> None:
    names = ["img10.jpg", "img2.jpg", "Img1.jpg", "img.jpg", "IMG_20230101_12.jpg", "IMG_20230101_1.jpg"]
    assert sorted(names, key=natural_key) == [
        "Img1.jpg",
        "img2.jpg",
        "img10.jpg",
        "img.jpg",
        "IMG_20230101_1.jpg",
        "IMG_20230101_12.jpg",
    ]
