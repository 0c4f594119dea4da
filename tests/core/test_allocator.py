"""glibc keeps freed NumPy temporaries mapped after ``keep_freed_memory`` (ADR 0072)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labeltune.core.allocator import keep_freed_memory

CHILD = """
import resource, sys
import numpy as np
from labeltune.core.allocator import keep_freed_memory
from labeltune.core.xrd.peak_profile import pseudo_voigt_parts
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
rng = np.random.default_rng(0)  # a many-peak phase (alite: ~1 700 peaks with Kα2) on a 4 501-point scan
x = np.linspace(10.0, 100.0, 4501)
centres, fwhm, area = np.sort(rng.uniform(10, 100, 1700)), rng.uniform(0.05, 0.2, 1700), rng.random(1700)
pseudo_voigt_parts(x, centres, fwhm, area)  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    pseudo_voigt_parts(x, centres, fwhm, area)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_temporaries_are_reused_instead_of_faulting_in_fresh_pages() -> None:
    default, tuned = _page_faults("default"), _page_faults("tuned")
    assert default > 20 * 500  # the peak sums' temporaries (MBs each) fault in fresh 4 KB pages
    assert tuned < default / 20, (default, tuned)


def test_elsewhere_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
