"""Rows -> text for the terminal and for pipes: an aligned table, JSON, JSON Lines or CSV.

Pure: rows in, text out. Given a width (stdout is a terminal), a table is fitted to it by
`fit_table`; without one (a pipe) it prints every value whole, since whoever reads a pipe
wants the data, not a picture of it. The machine formats never clip, colour or decorate.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from aggregator.types import PollResult, PollStatus

FORMATS = ("table", "json", "jsonl", "csv")
GAP = "  "
# A text column is not narrowed below this while a time or id can still wrap instead.
MIN_TEXT = 8
ELLIPSIS = "…"
BOLD, NOT_BOLD = "\x1b[1m", "\x1b[22m"
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")
# Where a word may wrap when it must: after the T of an ISO time ("2026-11-25T" / "07:30:00Z"),
# after an underscore ("newest_" / "published"), after a hyphen between letters.
_SOFT_BREAK = r"(?<=\d\d-\d\dT)(?=\d\d:)|(?<=_)(?=.)|(?<=[^\W\d_]-)(?=[^\W\d_])"
_SOFT_BREAKS = re.compile(_SOFT_BREAK)
_WORDS = re.compile(" |" + _SOFT_BREAK)
_TIME = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?")


def render_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    width: int | None = None,
    keep: Collection[str] = (),
    max_lines: int = 1,
) -> str:
    """``rows`` (dicts with the same keys) as text in ``fmt``; ends with a newline if non-empty.

    ``width``, ``keep`` and ``max_lines`` only shape a table: see `fit_table`.
    """
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "table":
        if not rows:
            return ""
        headers = list(rows[0])
        cells = [[_cell(row.get(h)) for h in headers] for row in rows]
        lines = fit_table(headers, cells, width, keep=keep, max_lines=max_lines)
        return "".join(line + "\n" for line in lines)
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


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """The count and its noun agreeing: "1 feed", "2 feeds", "0 stories", "1 copy"."""
    if count == 1:
        return f"{count} {noun}"
    if plural is None:
        if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
            plural = noun[:-1] + "ies"
        elif noun.endswith(("s", "x", "ch", "sh")):
            plural = noun + "es"
        else:
            plural = noun + "s"
    return f"{count} {plural}"


# ---------------------------------------------------------------- fitting


def fit_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    *,
    keep: Collection[str] = (),
    max_lines: int = 1,
) -> list[str]:
    """The table's lines (a header, a rule, the rows), none wider than ``width`` columns.

    ``width=None``: every value whole, on one line. Otherwise the widest columns are narrowed
    first. A text column's value wraps onto at most ``max_lines`` lines, the last elided with
    "…"; a time, a number or a column named in ``keep`` (an id such as a feed's name) is never
    elided: it wraps, at a space or a soft break (`_SOFT_BREAK`) while it can. Headers wrap
    too, never elided. The order in which columns give way is `column_widths`'; a width too
    small even for one character a column cuts the lines.
    """
    widths, head, body = fit_cells(headers, rows, width, keep=keep, max_lines=max_lines)
    lines = _block(head, widths)
    lines.append(GAP.join("-" * w for w in widths))
    for cells in body:
        lines += _block(cells, widths)
    if width is not None:
        lines = [elide(line, width) for line in lines]
    return lines


def fit_cells(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    *,
    keep: Collection[str] = (),
    max_lines: int = 1,
) -> tuple[list[int], list[list[str]], list[list[list[str]]]]:
    """What `fit_table` lays out: the column widths, each header's lines, each cell's lines."""
    kept = [
        header in keep or _is_atomic(row[i] for row in rows) for i, header in enumerate(headers)
    ]
    widths = column_widths(headers, rows, width, kept)
    head = [_wrap(h, w) for h, w in zip(headers, widths, strict=True)]
    body = [
        [
            _wrap(cell, w, None if k else max_lines)
            for cell, w, k in zip(row, widths, kept, strict=True)
        ]
        for row in rows
    ]
    return widths, head, body


def column_widths(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    kept: Sequence[bool],
) -> list[int]:
    """Each column's width: its widest value, narrowed in stages until the table fits
    ``width``: headers wrap; text columns give way, down to `MIN_TEXT`; kept columns (times,
    ids) wrap at their spaces and soft breaks; text columns go down to half `MIN_TEXT`; then
    anything goes. Each stage narrows the widest columns first."""
    columns = range(len(headers))
    cells = [[row[i] for row in rows] for i in columns]
    longest = [max(map(display_width, column), default=0) for column in cells]
    natural = [max(display_width(headers[i]), longest[i]) for i in columns]
    if width is None:
        return natural
    budget = width - len(GAP) * (len(headers) - 1)
    header_word = [_longest_word(header) for header in headers]
    unwrapped = [max(header_word[i], longest[i]) for i in columns]  # headers wrapped
    text_floor = [min(MIN_TEXT, unwrapped[i]) for i in columns]
    token_floor = [max([header_word[i], *map(_longest_word, cells[i])]) for i in columns]
    stages = [
        unwrapped,
        [natural[i] if kept[i] else text_floor[i] for i in columns],
        [token_floor[i] if kept[i] else text_floor[i] for i in columns],
        [token_floor[i] if kept[i] else min(MIN_TEXT // 2, unwrapped[i]) for i in columns],
        [1 for _ in columns],
    ]
    widths = natural
    for floors in stages:
        widths = _narrow(widths, floors, budget)
    # A wrapped time needs less than it was given ("2026-12-03" of 18): give the text
    # columns the difference, narrowing them again from their natural widths.
    for i in columns:
        if kept[i] and widths[i] < natural[i]:
            lines = [_wrap(value, widths[i]) for value in [headers[i], *cells[i]]]
            widths[i] = max(display_width(line) for wrapped in lines for line in wrapped)
    text = [i for i in columns if not kept[i]]
    spare = budget - sum(widths[i] for i in columns if kept[i])
    narrowed = [natural[i] for i in text]
    for floors in stages:
        narrowed = _narrow(narrowed, [floors[i] for i in text], spare)
    for i, w in zip(text, narrowed, strict=True):
        widths[i] = w
    return widths


def _narrow(widths: list[int], floors: list[int], budget: int) -> list[int]:
    """Narrow the widest columns first (never below their floors) until they sum to at most
    ``budget``: the largest cap that fits, found by bisection, and what is left over given to
    the leftmost columns the cap held back."""
    floors = [min(f, w) for f, w in zip(floors, widths, strict=True)]

    def capped(cap: int) -> list[int]:
        return [max(f, min(w, cap)) for w, f in zip(widths, floors, strict=True)]

    if sum(widths) <= budget:
        return list(widths)
    low, high = 0, max(widths, default=0)
    if sum(capped(low)) > budget:
        return capped(low)
    while high - low > 1:
        middle = (low + high) // 2
        if sum(capped(middle)) <= budget:
            low = middle
        else:
            high = middle
    fitted, wider = capped(low), capped(high)
    spare = budget - sum(fitted)
    for i, w in enumerate(wider):
        if spare and w > fitted[i]:
            fitted[i] += 1
            spare -= 1
    return fitted


def _is_atomic(values: Any) -> bool:
    """A column of numbers or times (and blanks): cutting one would change what it says."""
    present = [v for v in values if v]
    return bool(present) and all(_NUMBER.fullmatch(v) or _TIME.fullmatch(v) for v in present)


def _longest_word(text: str) -> int:
    """The widest piece ``text`` wraps into without breaking a word where it has no soft
    break (`_SOFT_BREAK`)."""
    return max((display_width(word) for word in _WORDS.split(text)), default=0)


def _block(cells: list[list[str]], widths: Sequence[int]) -> list[str]:
    """One row's cells (each a list of lines) side by side."""
    height = max(len(lines) for lines in cells)
    return [
        GAP.join(
            _pad(lines[k] if k < len(lines) else "", w)
            for lines, w in zip(cells, widths, strict=True)
        ).rstrip()
        for k in range(height)
    ]


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _wrap(text: str, width: int, max_lines: int | None = None) -> list[str]:
    """``text`` in lines of at most ``width`` columns (see `_take_line`); with ``max_lines``,
    the last line ends in "…" when text is left over."""
    lines: list[str] = []
    rest = text
    while rest and (max_lines is None or len(lines) < max_lines - 1):
        line, rest = _take_line(rest, width)
        lines.append(line)
    if rest:
        lines.append(elide(rest, width))
    return lines or [""]


def _take_line(text: str, width: int) -> tuple[str, str]:
    """The first line of ``text`` in ``width`` columns, and the rest: broken at the last space
    that fits (dropped), else at the last soft break (`_SOFT_BREAK`), else where it must."""
    end = _prefix(text, width)
    if end >= len(text):
        return text, ""
    if text[end] == " ":
        return text[:end], text[end + 1 :]
    space = text.rfind(" ", 0, end)
    if space > 0:
        return text[:space], text[space + 1 :]
    soft = [b.start() for b in _SOFT_BREAKS.finditer(text) if 0 < b.start() <= end]
    if soft:
        return text[: soft[-1]], text[soft[-1] :]
    end = max(end, 1)  # a character wider than the column still moves on
    return text[:end], text[end:]


def elide(text: str, width: int) -> str:
    """``text`` if it fits ``width`` columns, else its start and "…" (just "…" at width 1)."""
    if display_width(text) <= width:
        return text
    return text[: _prefix(text, width - 1)].rstrip() + ELLIPSIS if width > 0 else ""


def embolden(text: str, start: str, end: str) -> str:
    """Turn zero-width highlight markers into bold on and off, line by line: a highlight that
    an elision or a wrap left open is closed at the end of its line, so it does not run on."""
    lines = []
    for line in text.split("\n"):
        if line.rfind(start) > line.rfind(end):
            line += end
        lines.append(line.replace(start, BOLD).replace(end, NOT_BOLD))
    return "\n".join(lines)


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters two, combining marks and
    control characters (the search highlight markers among them) none."""
    if text.isascii() and text.isprintable():
        return len(text)
    return sum(_char_width(c) for c in text)


def _prefix(text: str, width: int) -> int:
    """How many characters of ``text`` fit in ``width`` columns."""
    if text.isascii() and text.isprintable():
        return max(0, min(len(text), width))
    used = 0
    for i, c in enumerate(text):
        used += _char_width(c)
        if used > width:
            return i
    return len(text)


def _char_width(c: str) -> int:
    if unicodedata.category(c) in ("Mn", "Me", "Cc", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def poll_line(result: PollResult, *, schedule: bool = False) -> str:
    """One line for one feed's poll, as `aggregator update` prints it and `run` logs it (with
    ``schedule``: when the feed is next due and why)."""
    if result.status is PollStatus.ERROR:
        status = f" {result.http_status}" if result.http_status else ""
        what = f"error{status}: {result.error}"
    elif result.status is PollStatus.NOT_MODIFIED:
        what = "304 not modified"
    else:
        warning = f" [warning: {result.error}]" if result.error else ""
        what = f"{result.http_status} {result.new} new, {result.updated} updated{warning}"
    line = f"{result.feed_name}: {what} ({result.duration:.1f}s)"
    if schedule:
        due = result.next_due.strftime("%Y-%m-%dT%H:%M:%SZ") if result.next_due else "never"
        line += f"; next {due} ({result.interval_reason})"
    return line
