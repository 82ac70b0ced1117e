"""Rows -> text for the terminal and for pipes: an aligned table, JSON, JSON Lines or CSV.

Pure: rows in, text out. Tables fit the terminal width by clipping the widest columns; the
machine formats never clip, colour or decorate anything.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

FORMATS = ("table", "json", "jsonl", "csv")
_MIN_COLUMN = 8


def render_rows(rows: Sequence[Mapping[str, Any]], fmt: str, *, width: int = 120) -> str:
    """``rows`` (dicts with the same keys) as text in ``fmt``; ends with a newline if non-empty."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "table":
        return _table(rows, width)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _plain(v) for k, v in row.items()})
    return out.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return " ".join(str(value).split())


def _table(rows: Sequence[Mapping[str, Any]], width: int) -> str:
    if not rows:
        return ""
    headers = list(rows[0])
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    gaps = 2 * (len(headers) - 1)
    # Clip the widest column, one character at a time, until the table fits the terminal.
    while sum(widths) + gaps > width:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= _MIN_COLUMN:
            break
        widths[widest] -= 1
    clipped = [
        [c if len(c) <= widths[i] else c[: widths[i] - 1] + "…" for i, c in enumerate(row)]
        for row in cells
    ]
    from tabulate import tabulate  # only tables need it; imported here to start faster

    return tabulate(clipped, headers=headers, tablefmt="simple", disable_numparse=True) + "\n"
