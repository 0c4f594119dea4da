"""``labeltune train ARGS`` that stops at an exact moment and waits there to be killed (kill -9 tests).

Run as ``python train_until_killed.py MARK MOMENT N -- ARGS``: when the moment comes, the process writes
the file ``MARK`` and sleeps; the test waits for ``MARK`` and sends SIGKILL. Moments:

- ``pass N``: inside the N-th training forward pass (mid-epoch, between optimiser steps);
- ``checkpoint N``: in the middle of writing the N-th checkpoint, half of its bytes in the temporary file.

Without this the kill would race the training (a tiny run's epoch takes milliseconds); with it the test
is exact and needs no timing.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path
from typing import Any


def wait_to_be_killed(mark: Path) -> None:
    """Tell the test we are at the moment, then wait for its SIGKILL (exit after a minute, as a failure)."""
    mark.write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(60)
    os._exit(3)


def main(argv: list[str]) -> int:
    """Arm the moment, then run the CLI with the arguments after ``--``."""
    mark, moment, n = Path(argv[0]), argv[1], int(argv[2])
    args = argv[argv.index("--") + 1 :]
    import torch

    from labeltune import cli
    from labeltune.core import image_task

    if moment == "pass":
        original_loss = image_task.ClassificationTask.loss
        passes = [0]

        def loss(self: Any, model: Any, batch: Any) -> Any:
            passes[0] += 1
            if passes[0] == n:
                wait_to_be_killed(mark)
            return original_loss(self, model, batch)

        image_task.ClassificationTask.loss = loss  # type: ignore[method-assign]
    elif moment == "checkpoint":
        original_save = torch.save
        saves = [0]

        def save(obj: Any, f: Any, *rest: Any, **kwargs: Any) -> None:
            saves[0] += 1
            if saves[0] != n:
                original_save(obj, f, *rest, **kwargs)
                return
            buffer = io.BytesIO()
            original_save(obj, buffer, *rest, **kwargs)
            data = buffer.getvalue()
            with open(f, "wb") as handle:  # half of it on disk, as a kill during a slow write leaves it
                handle.write(data[: len(data) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            wait_to_be_killed(mark)

        torch.save = save
    else:
        raise SystemExit(f"unknown moment {moment!r}")
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
