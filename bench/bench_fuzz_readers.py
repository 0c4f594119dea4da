"""Reader robustness benchmark: the bad-XRD corpus and a long mutation fuzz of every reader (issue 13).

Run: ``.venv/bin/python bench/bench_fuzz_readers.py [--quick] [--n 2000] [--seed 0]``. Not a test: prints
figures only (the tests, tests/reliability/test_fuzz_readers.py, run 100 examples per reader).

First the corpus of tests/reliability/corpus_xrd.py: how many pattern and CIF kinds, used or refused, and
the slowest read. Then ``--n`` damaged copies (bits flipped, bytes inserted or replaced, cut short) of
real fixtures per reader (images, XRD patterns, CIFs): how many were read, how many refused with the
documented error, how many raised anything else (should be 0) and the slowest call.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from corpus_xrd import (  # noqa: E402 - the corpus lives beside the tests
    GOOD_CIF,
    GOOD_PATTERN,
    good_columns,
    rasx_bytes,
    write_cif_corpus,
    write_pattern_corpus,
    xrdml_text,
)

from labeltune.core import imaging  # noqa: E402
from labeltune.core.errors import ImageDecodeError  # noqa: E402
from labeltune.core.xrd.crystal import CrystalError  # noqa: E402
from labeltune.core.xrd.library import compute_peaks  # noqa: E402
from labeltune.core.xrd.pattern import PatternReadError  # noqa: E402
from labeltune.core.xrd.readers import read_pattern  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one to six random bit flips, insertions, replacements or a cut."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            break
        i = rng.randrange(len(out))
        op = rng.randrange(4)
        if op == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            del out[i:]
        elif op == 2:
            out[i:i] = rng.randbytes(rng.randint(1, 8))
        else:
            out[i] = rng.choice(b"0123456789.-eE+ \n,;'_")
    return bytes(out)


def fixtures() -> dict[str, dict[str, bytes]]:
    """Real and generated files per reader."""
    x, y = good_columns()
    profile = "".join(f"{a:.4f} {b:g} 1\n" for a, b in zip(x[:400], y[:400], strict=True))
    xrd = {
        "demo.xy": GOOD_PATTERN.read_bytes()[:6000],
        "scan.xrdml": xrdml_text(x[:400], y[:400]).encode(),
        "scan.rasx": rasx_bytes(profile),
    }
    for relative in ("formats/xylib/empyrean.xrdml", "formats/bruker.raw", "formats/data.cif"):
        if (SHARED / "xrd" / relative).is_file():
            xrd[Path(relative).name] = (SHARED / "xrd" / relative).read_bytes()[:30000]
    pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    images: dict[str, bytes] = {}
    for name, fmt, mode in (
        ("a.png", "PNG", "P"), ("a.jpg", "JPEG", "RGB"), ("a.gif", "GIF", "P"), ("a.tif", "TIFF", "RGB"),
        ("a.webp", "WEBP", "RGB"), ("a.bmp", "BMP", "RGB"),
    ):  # fmt: skip
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, fmt)
        images[name] = buffer.getvalue()
    cifs = {"rutile.cif": GOOD_CIF.read_bytes()}
    if (SHARED / "xrd" / "cod_cifs" / "1000017.cif").is_file():
        cifs["corundum.cif"] = (SHARED / "xrd" / "cod_cifs" / "1000017.cif").read_bytes()
    return {"xrd": xrd, "image": images, "cif": cifs}


def timed(read: Callable[[], object], allowed: type[Exception]) -> tuple[str, float]:
    """("read" | "refused" | the exception type's name, seconds)."""
    start = time.perf_counter()
    try:
        read()
        outcome = "read"
    except allowed:
        outcome = "refused"
    except Exception as exc:
        outcome = type(exc).__name__
    return outcome, time.perf_counter() - start


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="200 damaged files per reader")
    parser.add_argument("--n", type=int, default=2000, help="damaged files per reader")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = 200 if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kinds = write_pattern_corpus(work / "patterns")
        cifs = [k for k in write_cif_corpus(work / "cifs") if k.expected == "refused"]
        slowest = 0.0
        outcomes: dict[str, int] = {}
        for kind in kinds:
            outcome, seconds = timed(lambda k=kind: read_pattern(k.path), PatternReadError)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            slowest = max(slowest, seconds)
        for kind in cifs:
            outcome, seconds = timed(lambda k=kind: compute_peaks(k.path), CrystalError)
            outcomes["cif " + outcome] = outcomes.get("cif " + outcome, 0) + 1
            slowest = max(slowest, seconds)
        print(f"corpus: {len(kinds)} pattern kinds + {len(cifs)} bad CIFs = {len(kinds) + len(cifs)} kinds")
        print(f"  outcomes {dict(sorted(outcomes.items()))}, slowest read {slowest:.2f} s")

        rng = random.Random(args.seed)
        readers: dict[str, tuple[Callable[[Path], object], type[Exception]]] = {
            "xrd": (read_pattern, PatternReadError),
            "image": (lambda p: imaging.decode_rgb(p, 64), ImageDecodeError),
            "cif": (compute_peaks, CrystalError),
        }
        for group, files in fixtures().items():
            read, allowed = readers[group]
            counts: dict[str, int] = {}
            worst = 0.0
            start = time.perf_counter()
            for i in range(n):
                name = rng.choice(sorted(files))
                path = work / f"fuzz-{group}-{name}"
                path.write_bytes(mutate(files[name], rng))
                outcome, seconds = timed(lambda p=path, r=read: r(p), allowed)  # type: ignore[misc]
                counts[outcome] = counts.get(outcome, 0) + 1
                worst = max(worst, seconds)
                if outcome not in ("read", "refused"):
                    print(f"  {group} #{i} {name}: {outcome}")
            others = sum(v for k, v in counts.items() if k not in ("read", "refused"))
            took = time.perf_counter() - start
            print(
                f"fuzz {group:<6}{n} damaged files of {len(files)} fixtures in {took:.1f} s: "
                f"{counts.get('read', 0)} read, {counts.get('refused', 0)} refused, {others} other errors, "
                f"slowest {worst:.2f} s"
            )


if __name__ == "__main__":
    main()
