"""Writing result sets as a terminal table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console, RenderableType
from rich.highlighter import JSONHighlighter
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from crawler.text import CONTROL_CHARACTERS

FORMATS = ("table", "json", "csv")

# Tabs and newlines lay text out; every other control character would act on the terminal:
# it is shown as a JSON-style escape, which also keeps JSON output valid JSON.
_VISIBLE = {ord(c): f"\\u{ord(c):04x}" for c in CONTROL_CHARACTERS - {"\t", "\n"}}


def terminal_text(text: str) -> str:
    """*text* safe to print: control characters (ESC, which starts the sequences that clear
    the screen or plant links, and the bidi controls that reorder text) shown as "\\u001b".
    The crawler drops them when it reads a page; this covers rows stored before it did."""
    return text.translate(_VISIBLE)


def literal_markup(text: str) -> str:
    """Rich markup that prints *text* (scraped, stored or from a spec file) as written: its
    [tags] escaped, its control characters shown by `terminal_text`."""
    return escape(terminal_text(text))


def _plain(value):
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _csv_cell(value):
    """Scraped text starting with = + - @ would run as a formula in a spreadsheet; a leading
    apostrophe keeps it text (OWASP's advice for CSV injection). Booleans are written
    true/false, as JSON writes them (Python would write True/False)."""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def unique_names(columns: Sequence[str]) -> list[str]:
    """JSON object keys for *columns*: a name that repeats (``SELECT o.id, s.id``) gets _2,
    _3, ... after its first use, skipping names another column already has, so no value is
    lost: ["id", "id", "id_2"] gives ["id", "id_3", "id_2"]."""
    taken = set(columns)
    used: set[str] = set()
    names = []
    for name in columns:
        unique, n = name, 1
        while unique in used or (unique != name and unique in taken):
            n += 1
            unique = f"{name}_{n}"
        used.add(unique)
        names.append(unique)
    return names


def json_records(columns: Sequence[str], rows: Sequence[Sequence]) -> list[dict]:
    """One object per row, keyed by `unique_names`."""
    keys = unique_names(columns)
    return [dict(zip(keys, map(_plain, row), strict=True)) for row in rows]


def write_csv(out: TextIO, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    # Every text cell quoted: a spreadsheet that splits comma files on ";" (de, fr locales)
    # would otherwise split "x;=1+1" and run the second half as a formula
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(columns)
    writer.writerows([[_csv_cell(v) for v in row] for row in rows])


def write_rows_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Write atomically, so a reader never sees half a report."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        write_csv(handle, columns, rows)
    tmp.replace(path)


def rows_text(columns: Sequence[str], rows: Sequence[Sequence], fmt: str) -> str:
    """JSON (a list of objects) or CSV as one string, for writing to a file."""
    if fmt == "json":
        records = json_records(columns, rows)
        return json.dumps(records, ensure_ascii=False, default=str, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        write_csv(out, columns, rows)
        return out.getvalue()
    raise ValueError(f"rows_text cannot write {fmt!r}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(path)


def print_whole(console: Console, renderable: RenderableType) -> None:
    """Print *renderable* no narrower than it needs: on a console too narrow for its
    unbreakable cells (prices in a report), lines run past the edge, which a terminal wraps,
    instead of being cut into figures that read as other figures."""
    needed = Measurement.get(console, console.options.update_width(10_000), renderable).minimum
    width = console.width
    console.width = max(width, needed)
    try:
        console.print(renderable)
    finally:
        console.width = width


def render_rows(
    console: Console,
    columns: Sequence[str],
    rows: Sequence[Sequence],
    fmt: str,
    title: str | None = None,
) -> None:
    if fmt == "json":
        text = json.dumps(json_records(columns, rows), ensure_ascii=False, default=str, indent=2)
        # as print_json shows it, but print_json would decode the escapes terminal_text writes
        highlighted = JSONHighlighter()(for_console(console, text))
        highlighted.no_wrap, highlighted.overflow = True, None
        console.print(highlighted, soft_wrap=True)
    elif fmt == "csv":
        out = io.StringIO()
        write_csv(out, columns, rows)
        console.out(for_console(console, out.getvalue()), end="", highlight=False)
    else:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(literal_markup(column), overflow="fold")
        for row in rows:
            # scraped strings may contain [markup]; escape so they print as written
            table.add_row(*("NULL" if v is None else literal_markup(str(_plain(v))) for v in row))
        console.print(table)


def for_console(console: Console, text: str) -> str:
    """*text* (CSV, JSON, a page) to write to *console*: with `terminal_text` applied where
    that is a terminal; redirected to a file or a pipe, the data stays as stored."""
    return terminal_text(text) if console.is_terminal else text
