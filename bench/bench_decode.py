"""Decode benchmark: LabelTune's ``load_array`` against the textbook Pillow recipe, side by side.

Run: ``.venv/bin/python bench/bench_decode.py [--images 20] [--repeats 3]``. Not a test: prints figures only.

(a) textbook: ``Image.open(p).convert("RGB").resize((s, s))`` then ``np.asarray`` (decodes every pixel);
(b) ours: ``load_array(p, s)`` (JPEG draft mode: the decoder scales by 1/2..1/8 while decoding).
Synthetic photos are 4000x3000 JPEGs, quality 90, smooth gradients plus sensor-like noise: half clean
(noise sd 3), half high-ISO (sd 12: bigger files, more entropy decoding, which draft mode cannot skip).
The real corn-leaf photos are 256 px: there draft mode cannot help and the ratio should be near 1.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from labeltune.core.imaging import is_image_file, load_array

CORN_IMAGES = Path("/work/shared/data/corn_leaf/images")
SIZES = (299, 224)


def make_photos(folder: Path, count: int, noise: float, width: int = 4000, height: int = 3000) -> list[Path]:
    """Write ``count`` camera-like JPEGs (quality 90): smooth colour fields, a dark disc, Gaussian noise.

    ``noise`` is the noise's standard deviation in grey levels: about 3 for a clean daylight photo, 12 for a
    high-ISO one. Noise sets the file size (bits per pixel), and so how much entropy decoding is left for
    draft mode, which only saves the inverse DCT and the resizing, not the Huffman decoding.
    """
    rng = np.random.default_rng(int(noise * 1000))
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    paths = []
    for i in range(count):
        phase, freq = rng.uniform(0, 2 * np.pi, 3), rng.uniform(1, 4, 3)
        image = np.empty((height, width, 3), np.float32)
        for c in range(3):  # separable, so cheap to make
            image[..., c] = 127 + 90 * np.sin(freq[c] * x / width * np.pi + phase[c]) * np.cos(
                freq[c] * y / height * np.pi
            )
        cy, cx, r = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width, rng.uniform(200, 900)
        image[((y - cy) ** 2 + (x - cx) ** 2) < r**2] *= 0.5  # a "leaf"
        image += rng.standard_normal(image.shape, dtype=np.float32) * noise
        path = folder / f"IMG_{i:04d}_noise{noise:g}.JPG"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def textbook(path: Path, size: int) -> np.ndarray:
    """Decode the way most tutorials do it."""
    return np.asarray(Image.open(path).convert("RGB").resize((size, size)))


def time_per_image(
    fn: Callable[[Path, int], np.ndarray], paths: Sequence[Path], size: int, repeats: int
) -> float:
    """Median over ``repeats`` passes of the mean milliseconds per image."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            fn(path, size)
        runs.append((time.perf_counter() - start) * 1000 / len(paths))
    return statistics.median(runs)


def compare(label: str, paths: Sequence[Path], repeats: int) -> list[tuple[str, int, float, float, float]]:
    """Time (a) and (b) interleaved for each size; print and return the rows."""
    rows = []
    for size in SIZES:
        # Warm up (file cache, lazy plugin imports), then alternate the two so drift hits both alike.
        textbook(paths[0], size)
        load_array(paths[0], size)
        plain_runs, ours_runs = [], []
        for _ in range(repeats):
            plain_runs.append(time_per_image(textbook, paths, size, 1))
            ours_runs.append(time_per_image(load_array, paths, size, 1))
        plain, ours = statistics.median(plain_runs), statistics.median(ours_runs)
        diff = np.mean(
            [np.abs(textbook(p, size).astype(np.int16) - load_array(p, size)).mean() for p in paths[:5]]
        )
        print(
            f"  {label:<36} {size:>4} px   textbook {plain:8.2f} ms   load_array {ours:8.2f} ms   "
            f"x{plain / ours:5.2f}   (mean |diff| {diff:.2f})",
            flush=True,
        )
        rows.append((label, size, plain, ours, plain / ours))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the photos, time both decoders, print per-image figures and a summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images",
        type=int,
        default=20,
        help="synthetic 4000x3000 photos, half clean, half noisy (default 20)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the median is kept")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="labeltune-bench-") as tmp:
        for noise in (3.0, 12.0):
            start = time.perf_counter()
            photos = make_photos(Path(tmp), max(1, args.images // 2), noise)
            megabytes = sum(p.stat().st_size for p in photos) / len(photos) / 1e6
            print(
                f"generated {len(photos)} 4000x3000 JPEGs (q90, noise sd {noise:g}, {megabytes:.1f} MB each) "
                f"in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
            rows += compare(f"4000x3000 q90 noise {noise:g} ({megabytes:.1f} MB)", photos, args.repeats)

    if CORN_IMAGES.is_dir():
        corn = sorted(p for p in CORN_IMAGES.rglob("*") if p.is_file() and is_image_file(p))
        print(f"real corn-leaf photos: {len(corn)} files", flush=True)
        rows += compare("corn-leaf 256 px JPEG", corn, args.repeats)
    else:
        print(f"({CORN_IMAGES} not present: real-photo comparison skipped)")

    print()
    print(f"{'images':<36} {'size':>5} {'textbook ms':>12} {'load_array ms':>14} {'speed-up':>9}")
    for label, size, plain, ours, ratio in rows:
        print(f"{label:<36} {size:>5} {plain:>12.2f} {ours:>14.2f} {ratio:>8.2f}x")


if __name__ == "__main__":
    main()
