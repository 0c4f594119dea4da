"""The frozen app's entry point (PyInstaller): the ``labeltune`` command, GUI when run without arguments."""

import multiprocessing

if __name__ == "__main__":
    # First, before anything imports torch: a frozen child process (DataLoader workers, spawn) must run
    # the worker it was started for instead of a second copy of the app.
    multiprocessing.freeze_support()
    from labeltune.cli import main

    raise SystemExit(main())
