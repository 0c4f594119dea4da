"""What the ADR 0043 check costs when a project opens: 100 000 rows outside the project folder.

Run: ``.venv/bin/python bench/bench_untrusted_open.py [--n 100000] [--quick]``. Not a test: prints figures.

The rows are absolute paths under a folder imported on this computer (the common case: images left where
they were); the check reads those rows and compares their folders with the imported ones. Printed: the
seconds of ``Project.open`` with the check and of the check alone, and of a refused open (one foreign row).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from labeltune.core.datasets import Sample
from labeltune.core.project import DB_FILE, Project, _refuse_foreign_rows


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10 000 rows")
    args = parser.parse_args()
    n = 10_000 if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ["LABELTUNE_DATA_DIR"] = str(base / "user-data")
        os.environ["LABELTUNE_CONFIG_DIR"] = str(base / "config")
        data = base / "images"
        folder = base / "project"
        with Project.create(folder) as project:
            project.add_source(data)
            project.add_samples(Sample(data / f"class{i % 23}" / f"img{i:06d}.jpg", None) for i in range(n))
        start = time.perf_counter()
        Project.open(folder).close()
        opened = time.perf_counter() - start
        with Project.open(folder) as project:
            start = time.perf_counter()
            _refuse_foreign_rows(project._db(), project._meta, folder)
            check = time.perf_counter() - start
        with sqlite3.connect(folder / DB_FILE) as conn:
            conn.execute("INSERT INTO samples (path, added) VALUES ('/etc/passwd', 0)")
        refused = float("nan")
        start = time.perf_counter()
        try:
            Project.open(folder).close()
        except Exception as error:  # the refusal is what is timed
            refused = time.perf_counter() - start
            print(f"refused: {str(error)[:90]}...")
        print(f"{n} rows outside the project folder, under an imported folder")
        print(f"  Project.open            {opened * 1000:8.1f} ms")
        print(f"  of which the check      {check * 1000:8.1f} ms")
        print(f"  refused open (1 foreign) {refused * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
