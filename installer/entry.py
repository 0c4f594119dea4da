"""The frozen app's entry point (PyInstaller): the ``labeltune`` command, GUI when run without arguments."""

import multiprocessing

if __name__ == "__main__":
    # First, before anything imports torch: a frozen child process (DataLoader workers, spawn) must run
    # the worker it was started for instead of a second copy of the app.
    multiprocessing.freeze_support()
    import sys

    if sys.argv[1:2] == ["torchrun"]:  # the app's multi-GPU run: PyTorch's launcher, with no Python to -m
        from torch.distributed.run import main as torchrun

        torchrun(sys.argv[2:])  # it starts this executable again per GPU (--no-python)
        raise SystemExit(0)
    from labeltune.cli import main

    raise SystemExit(main())
