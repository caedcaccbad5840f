"""Photo files as the database records them: which ones a decoder already refused, so that
neither `classify` nor training decodes them again until the file changes."""

from __future__ import annotations

import os


def file_stamp(path: str) -> str | None:
    """The size and modification time of the file at *path* (None if there is none): a
    photo recorded as unreadable is decoded again only once its file changed, as when a
    re-crawl wrote it anew after finding it cut short or gone."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def known_unreadable(row, stamp: str | None) -> bool:
    """Whether *row* (with unreadable_reason and unreadable_file) was refused by a decoder
    and its file, stamped *stamp* now, is the one refused."""
    return row["unreadable_reason"] is not None and row["unreadable_file"] == stamp
