"""User preferences: a typed, human-readable JSON file in the platform's user config dir.

Window geometry and dock state live in ``QSettings`` (Qt's own business); everything a user chooses lives
here, so it can be read, diffed and reset (docs/adr/0006-settings.md).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from labeltune.core.atomic import write_text_atomic
from labeltune.core.file_problems import storage_error

log = logging.getLogger(__name__)

MAX_RECENT = 10


def config_dir() -> Path:
    """``$LABELTUNE_CONFIG_DIR``, else the platform's user config dir for LabelTune."""
    env = os.environ.get("LABELTUNE_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("labeltune"))


def projects_dir() -> Path:
    """Where new projects go unless the user picks another place.

    ``$LABELTUNE_PROJECTS_DIR``, else ``LabelTune`` in the user's documents folder.  Each project is a
    folder of its own inside it.
    """
    env = os.environ.get("LABELTUNE_PROJECTS_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_documents_dir()) / "LabelTune"


_UNSAFE_IN_NAMES = frozenset('<>:"/\\|?*')


def project_folder_name(name: str) -> str:
    """A folder name for a project called ``name`` that works on Windows, macOS and Linux."""
    cleaned = "".join("-" if ch in _UNSAFE_IN_NAMES or ord(ch) < 32 else ch for ch in name)
    cleaned = cleaned.strip().rstrip(". ")
    return cleaned if cleaned and cleaned not in {".", ".."} else "project"


@dataclass
class Settings:
    """Preferences that outlive a session."""

    recent_projects: list[str] = field(default_factory=list)
    auto_advance: bool = True
    backbone: str = ""  # "": the most accurate network whose ImageNet weights are here
    strategy: str = "features"
    epochs: int = 0  # 0: the strategy's default
    batch_size: int = 32
    learning_rate: float = 0.0  # 0: the strategy's default
    augment: bool = True
    device: str = "auto"
    weights: str = "imagenet"
    thumbnail_size: int = 128
    thumbnail_cache_mb: int = 500  # each project's thumbnail cache; least recently used go beyond it (ADR 44)
    gallery_order: str = "name"  # "name", "folder" or "added": the Label tab's thumbnail order
    projects_folder: str = ""  # "": projects_dir(); else the "Save in" folder last used for a new project

    @classmethod
    def path(cls) -> Path:
        """Where the settings file lives."""
        return config_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        """Read the settings file; unknown keys are ignored and a damaged file gives the defaults."""
        path = cls.path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable settings file %s: %s", path, exc)
            return cls()
        known = {f.name: f for f in fields(cls)}
        values = {}
        defaults = cls()
        for key, value in data.items() if isinstance(data, dict) else ():
            if key in known and isinstance(value, type(getattr(defaults, key))):
                values[key] = value
        return cls(**values)

    def save(self) -> None:
        """Write the settings atomically (core/atomic.py): a failure keeps the previous file, whole.

        Raises :class:`~labeltune.core.errors.StorageError` (an ``OSError``) naming the file and the reason
        (disk full, read-only, ...); the settings in memory stay as they are for this session.
        """
        path = self.path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, path.parent, "create") from exc
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    def new_projects_folder(self) -> Path:
        """The folder the next new project is proposed in."""
        return Path(self.projects_folder) if self.projects_folder else projects_dir()

    def add_recent(self, project: Path | str) -> None:
        """Put ``project`` first in the recent projects list."""
        text = str(Path(project).resolve())
        self.recent_projects = [text, *(p for p in self.recent_projects if p != text)][:MAX_RECENT]
