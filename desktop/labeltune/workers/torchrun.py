"""A multi-GPU run from the app: ``torchrun`` in a child process, its progress lines turned into signals.

The worker thread starts the command of :func:`~labeltune.core.torchrun_launch.torchrun_command`, reads
rank 0's ``@labeltune`` lines from the child's stderr and reports them as the in-process
:class:`~labeltune.workers.training.TrainWorker` does (:class:`Progress`, :class:`TrainingStarted`,
:class:`EpochRecord`, :class:`TrainingNotice`), so the same panel and monitor show it. Stop sends SIGTERM
to torchrun, which passes it to every rank; they stop at the same step and rank 0 keeps the checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Any

from labeltune.core.errors import LabelTuneError
from labeltune.core.progress import StoppedError
from labeltune.core.run_files import METRICS_FILE, RunResult
from labeltune.core.torchrun_launch import PROGRESS_ENV, load_run_result, read_line, torchrun_command
from labeltune.core.train_config import TrainConfig
from labeltune.workers.tasks import Worker
from labeltune.workers.training import TrainingNotice, TrainingStarted


class TorchrunWorker(Worker):
    """Trains ``config`` (or continues the run, ``resume``) on ``gpus`` GPUs through torchrun."""

    def __init__(
        self, data_source: Path, config: TrainConfig | None, run_dir: Path, gpus: int, resume: bool = False
    ) -> None:
        super().__init__()
        self.data_source = Path(data_source)
        self.config = config
        self.run_dir = Path(run_dir)
        self.gpus = gpus
        self.resume = resume

    def command(self) -> list[str]:
        """The child's command line."""
        config = None if self.resume else self.config
        return torchrun_command(self.data_source, self.run_dir, config, self.gpus)

    def work(self) -> RunResult:
        """Run the child to its end; the run's result, read back from its folder."""
        env = {**os.environ, PROGRESS_ENV: "json"}
        process = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            errors="replace",
        )
        watcher = threading.Thread(target=self._stop_when_asked, args=(process,), daemon=True)
        watcher.start()
        output: list[str] = []
        reader = threading.Thread(
            target=lambda: output.append(process.stdout.read() if process.stdout else "")
        )
        reader.start()
        last: deque[str] = deque(maxlen=20)  # the child's last other lines, for a failure's message
        assert process.stderr is not None
        for line in process.stderr:
            event = read_line(line.rstrip("\n"))
            if event is None:
                if line.strip():
                    last.append(line.rstrip())
                continue
            self._report(*event)
        code = process.wait()
        reader.join()
        watcher.join()
        if (self.run_dir / METRICS_FILE).is_file() and (code == 0 or self.stop_event.is_set()):
            return load_run_result(self.run_dir)
        if self.stop_event.is_set():
            raise StoppedError()
        raise LabelTuneError(_failure_message(code, list(last)))

    def _report(self, kind: str, value: Any) -> None:
        if kind == "progress":
            self.report(value)
        elif kind == "started":
            self.reported.emit(TrainingStarted(int(value["epochs"]), int(value["batches"])))
        elif kind == "epoch":
            self.reported.emit(value)
        elif kind == "notice":
            self.reported.emit(TrainingNotice(str(value)))

    def _stop_when_asked(self, process: subprocess.Popen[str]) -> None:
        while process.poll() is None:
            if self.stop_event.wait(0.2):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)  # torchrun passes it on to every rank
                return


def _failure_message(code: int, lines: list[str]) -> str:
    """The child's own one-line error (``labeltune: error: ...``), else its last line and exit status."""
    for line in reversed(lines):
        if "labeltune: error:" in line:
            return line.split("labeltune: error:", 1)[1].strip()
    tail = lines[-1] if lines else "no output"
    return f"the multi-GPU run ended with exit status {code}: {tail}"
