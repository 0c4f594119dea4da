"""Processes that label (or identify) in a loop until they are killed: ``python kill_drivers.py MODE ...``.

Each prints ``press KEY<TAB>LABEL`` before a change and ``done KEY<TAB>LABEL`` once the call that makes it
has returned (the CLI's ``main``, a key press the app has handled, ``XrdProject.set_label``), flushed at
once: a ``done`` line is a label the user was told is saved.  tests/reliability/test_kill_labels.py kills
them with SIGKILL and checks every ``done`` label is in the store.

Modes: ``cli PROJECT SEED`` (``labeltune label`` in-process, one item per call, so each call opens,
checks and backs up the store), ``app PROJECT SEED`` (the real main window offscreen, number and arrow
keys sent to the gallery from the event loop), ``xrd PROJECT SEED`` (phase ticks: one phase toggled per
change), ``identify PROJECT`` (each pattern identified with the project's model and saved as the app
saves it, ``done KEY<TAB>phases``).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

STEPS = 100_000  # a bound, never reached: the test kills the driver first


def say(kind: str, key: object, label: str) -> None:
    """One line of the protocol, flushed so that a kill right after cannot lose it."""
    sys.stdout.write(f"{kind} {key}\t{label}\n")
    sys.stdout.flush()


def cli_loop(folder: str, seed: int) -> None:
    """``labeltune label PROJECT ITEM --as CLASS``, item and class drawn at random, one per call."""
    from labeltune.cli import main
    from labeltune.core.project import Project

    with Project.open(folder) as project:
        keys = [project.stored_path(sample.path) for sample in project.samples()]
        classes = project.classes
    rng = random.Random(seed)
    for _ in range(STEPS):
        key, label = rng.choice(keys), rng.choice(classes)
        say("press", key, label)
        status = main(["label", folder, str(Path(folder) / key), "--as", label])
        if status != 0:
            raise SystemExit(f"labeltune label exited {status}")
        say("done", key, label)


def app_loop(folder: str, seed: int) -> None:
    """The real main window on ``folder``; a key every event-loop turn: 1..n label, arrows move."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from labeltune.core.settings import Settings
    from labeltune.ui.main_window import MainWindow
    from labeltune.workers.gc_guard import collect_in_gui_thread

    app = QApplication(sys.argv[:1])
    collect_in_gui_thread(app)
    window = MainWindow(Settings())
    window.show()
    window.open_project(folder)
    project = window.session.require()
    classes = project.classes
    page = window.label_page
    rng = random.Random(seed)

    def press() -> None:
        sample_id = window.session.current_id
        if sample_id is None or rng.random() < 0.2:
            QTest.keyClick(page.gallery, rng.choice([Qt.Key.Key_Right, Qt.Key.Key_Left, Qt.Key.Key_Down]))
        else:
            number = rng.randrange(len(classes))
            say("press", sample_id, classes[number])
            QTest.keyClick(page.gallery, Qt.Key(Qt.Key.Key_1.value + number))
            say("done", sample_id, classes[number])
        QTimer.singleShot(1, press)  # the event loop runs between presses, as with a person typing

    QTimer.singleShot(0, press)
    app.exec()


def xrd_loop(folder: str, seed: int) -> None:
    """Phase ticks: each change toggles one phase of a random pattern's label (``A;B``; empty: none)."""
    from labeltune.core.xrd.xrd_project import XrdProject

    project = XrdProject.open(folder)
    patterns = project.patterns()
    phases = ["Mn2O3", "LiF", "MnO", "NiO"]
    rng = random.Random(seed)
    for _ in range(STEPS):
        path, phase = rng.choice(patterns), rng.choice(phases)
        now = list(project.labels(path).phases)
        after = [p for p in now if p != phase] if phase in now else [*now, phase]
        key = project.key(path)
        say("press", key, ";".join(after))
        project.set_label(path, after)
        say("done", key, ";".join(after))


def identify_loop(folder: str) -> None:
    """Identify each pattern with the project's model, saving after each as the app's Identify does."""
    from labeltune.core.xrd.inference import load_xrd_model
    from labeltune.core.xrd.xrd_project import XrdProject

    project = XrdProject.open(folder)
    assert project.model_dir is not None
    model = load_xrd_model(project.model_dir)
    for _ in range(STEPS):
        for path in project.patterns():
            key = project.key(path)
            say("press", key, "")
            prediction = model.predict(project.read(path), fit=False)
            project.save_predictions([prediction])
            say("done", key, ";".join(call.name for call in prediction.phases))


if __name__ == "__main__":
    mode, target, *rest = sys.argv[1:]
    if mode == "cli":
        cli_loop(target, int(rest[0]))
    elif mode == "app":
        app_loop(target, int(rest[0]))
    elif mode == "xrd":
        xrd_loop(target, int(rest[0]))
    elif mode == "identify":
        identify_loop(target)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
