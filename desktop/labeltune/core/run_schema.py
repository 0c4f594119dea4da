"""The version of a run folder's layout: ``"run_schema"`` in its ``config.json`` (images and XRD alike).

Writers put :data:`RUN_SCHEMA` there; readers call :func:`run_schema_problem` (or :func:`check_run_schema`)
on the parsed ``config.json``. A folder without the key is a legacy run (version 0, everything before the
key existed) and keeps loading; a folder of a *newer* version is refused with one line naming the folder,
since this version cannot know what changed. Raise :data:`RUN_SCHEMA` when a change of the folder's files
would mislead an older reader. No torch, no Qt: the GUI thread reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labeltune.core.errors import UnusableInputError

#: The key in ``config.json``.
RUN_SCHEMA_KEY = "run_schema"
#: The layout this version writes and the newest it reads.
RUN_SCHEMA = 1


def run_schema_version(config: Any) -> int:
    """The folder's layout version from its parsed ``config.json`` (0: legacy, written before the key)."""
    if not isinstance(config, dict):
        return 0
    value = config.get(RUN_SCHEMA_KEY, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def run_schema_problem(run_dir: str | Path, config: Any) -> str | None:
    """Why this version cannot read the run in ``run_dir`` (a newer layout), or None when it can."""
    version = run_schema_version(config)
    if version <= RUN_SCHEMA:
        return None
    return (
        f"{run_dir} was written by a newer LabelTune (run folder version {version}; this one reads up to "
        f"{RUN_SCHEMA}): update LabelTune to use it"
    )


def check_run_schema(run_dir: str | Path, config: Any) -> None:
    """Raise :class:`UnusableInputError` when the run in ``run_dir`` has a newer layout than this version."""
    problem = run_schema_problem(run_dir, config)
    if problem is not None:
        raise UnusableInputError(problem)
