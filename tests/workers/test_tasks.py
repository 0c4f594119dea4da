"""Workers run in threads; the controller re-emits their outcome in the GUI thread."""

from __future__ import annotations

import threading
import time

import pytest

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, StoppedError
from labeltune.workers.tasks import FunctionWorker, TaskController

pytest.importorskip("pytestqt")


def test_result_reaches_the_gui_thread(qtbot):
    controller = TaskController()
    seen_threads: list[threading.Thread] = []

    def job(progress, stop):
        seen_threads.append(threading.current_thread())
        for i in range(5):
            progress(Progress("count", i + 1, 5))
        return 42

    progress_values: list[int] = []
    controller.progressed.connect(lambda p: progress_values.append(p.done))
    with qtbot.waitSignal(controller.finished, timeout=10000) as blocker:
        controller.start(FunctionWorker(job))
    assert blocker.args == [42]
    assert seen_threads[0] is not threading.main_thread()
    assert progress_values and progress_values[-1] == 5  # the last report always arrives
    assert not controller.is_running()


def test_errors_become_readable_messages(qtbot):
    controller = TaskController()

    def user_error(progress, stop):
        raise UnusableInputError("only one class found")

    with qtbot.waitSignal(controller.failed, timeout=10000) as blocker:
        controller.start(FunctionWorker(user_error))
    assert blocker.args[0] == "only one class found"

    def bug(progress, stop):
        return {}["missing"]

    with qtbot.waitSignal(controller.failed, timeout=10000) as blocker:
        controller.start(FunctionWorker(bug))
    message, details = blocker.args
    assert message.startswith("KeyError")
    assert "Traceback" in details and "bug" in details
    assert not controller.is_running()  # usable again


def test_stop_sets_the_event_and_emits_stopped_not_finished(qtbot):
    controller = TaskController()
    started = threading.Event()
    outcomes: list[str] = []
    controller.finished.connect(lambda result: outcomes.append(f"finished {result!r}"))
    controller.failed.connect(lambda message, _details: outcomes.append(f"failed {message}"))
    running: list[bool] = []
    controller.running_changed.connect(running.append)

    def slow(progress, stop):
        started.set()
        while not stop.is_set():
            time.sleep(0.01)
        raise StoppedError("stopped")

    with qtbot.waitSignal(controller.stopped, timeout=10000) as blocker:
        controller.start(FunctionWorker(slow))
        assert started.wait(5)
        controller.stop()
    assert blocker.args == []  # a stop carries nothing: there is no result to decode
    assert outcomes == []  # neither finished (with a stand-in None) nor failed
    assert running == [True, False] and not controller.is_running()

    with qtbot.waitSignal(controller.finished, timeout=10000) as blocker:  # usable again
        controller.start(FunctionWorker(lambda p, s: "done"))
    assert blocker.args == ["done"]


def test_a_job_that_returns_none_finishes_and_does_not_count_as_stopped(qtbot):
    controller = TaskController()
    stops: list[bool] = []
    controller.stopped.connect(lambda: stops.append(True))
    with qtbot.waitSignal(controller.finished, timeout=10000) as blocker:
        controller.start(FunctionWorker(lambda p, s: None))
    assert blocker.args == [None] and stops == []


def test_the_worker_emits_stopped_from_its_own_thread(qtbot):
    worker = FunctionWorker(lambda p, s: (_ for _ in ()).throw(StoppedError("stopped")))
    outcomes: list[str] = []
    worker.stopped.connect(lambda: outcomes.append("stopped"))
    worker.finished.connect(lambda result: outcomes.append("finished"))
    worker.run()  # called directly: the signals are emitted (and delivered) in this thread
    assert outcomes == ["stopped"]


def test_only_one_task_at_a_time(qtbot):
    controller = TaskController()
    release = threading.Event()
    with qtbot.waitSignal(controller.finished, timeout=10000):
        controller.start(FunctionWorker(lambda p, s: release.wait(5)))
        with pytest.raises(RuntimeError):
            controller.start(FunctionWorker(lambda p, s: None))
        release.set()
