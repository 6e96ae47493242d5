"""igm's cache directory, where derived files live (trained judges, decoded image folders)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """igm's cache directory: ``IGM_CACHE_DIR``, else the platform's user cache dir + ``/igm``."""
    if os.environ.get("IGM_CACHE_DIR"):
        return Path(os.environ["IGM_CACHE_DIR"]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "igm"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "igm"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "igm"
