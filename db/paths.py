"""File paths as the database keeps them: relative to the home (the folder of the database
file), so a home moved elsewhere keeps its photos, models and crawl-error snapshots.

Every path column (images.path, models.path, crawl_errors.screenshot_path and html_path) is
written through `stored_path` and read through `resolved_path`; nothing else joins them.
"""

from __future__ import annotations

import os
from pathlib import Path


def stored_path(home: Path, path: str | Path | None) -> str | None:
    """*path* as the database keeps it: relative to *home* (with '/') when the file is in
    it, else absolute (a model trained elsewhere stays where it is)."""
    if path is None:
        return None
    absolute, home = Path(os.path.abspath(path)), Path(os.path.abspath(home))
    try:
        return absolute.relative_to(home).as_posix()
    except ValueError:
        pass
    try:  # the home reached through a symlink
        return absolute.resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def resolved_path(home: Path, stored: str | None) -> str | None:
    """A path read from the database as a file name to open: a relative one is in *home*;
    an absolute one (outside the home, or one migration 6 could not place) is used as is."""
    if stored is None or os.path.isabs(stored):
        return stored
    return str(Path(home) / stored)


def cut_at_home_folder(path: str | None, folder: str) -> str | None:
    """An absolute path cut at its last *folder* component ('/old/home/images/ab/c.png' ->
    'images/ab/c.png'): how migration 6 makes the paths written before it relative. The
    last one, as a home may itself lie under a folder of that name. Others are kept."""
    if not path or not os.path.isabs(path):
        return path
    at = path.rfind(f"/{folder}/")
    return path if at < 0 else path[at + 1 :]
