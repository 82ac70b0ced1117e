"""The shape of real feeds, measured on the real-world corpus, for bench/_corpus.py.

    python bench/corpus_shape.py [--corpus DIR] [--min-dated 10] [--python]

Every file listed in ``../shared/corpus/MANIFEST.tsv`` is parsed with feedparser (read-only, a
gzip file unpacked in memory; feedparser finds no entries in a JSON Feed, so those files do not
count). Over the documents with ``--min-dated`` (10) or more dated entries, it measures:

- span: days from the oldest to the newest entry (an entry's date: ``published``, else
  ``updated``);
- age in span: where the other entries fall in that span, 0 the newest and 1 the oldest end
  (all of them pooled; documents whose entries share one date left out);
- entries: how many entries the document lists, dated or not;
- title words: the words of each entry's title (markup dropped), entries with a title;
- undated: the share of the documents' entries with neither date.

It prints each distribution's percentiles (linear interpolation between the closest ranks, as
``statistics.quantiles(method="inclusive")``); ``--python`` prints them as the constants kept
in bench/_corpus.py, so the benchmark does not need the corpus at run time.
tests/test_bench_corpus.py re-measures and compares when the corpus is there.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import gzip
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import feedparser

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
MIN_DATED = 10
POINTS = tuple(range(0, 101, 5))  # the percentiles kept in bench/_corpus.py
SHOWN = (0, 5, 10, 25, 50, 75, 90, 95, 100)  # the percentiles printed in the table
_TAG = re.compile(r"<[^>]*>")


@dataclass(slots=True)
class Shape:
    files: int = 0  # files parsed
    spans_days: list[float] = field(default_factory=list)  # one per measured document
    ages_in_span: list[float] = field(default_factory=list)  # 0 newest .. 1 oldest, pooled
    entries: list[int] = field(default_factory=list)  # one per measured document
    title_words: list[int] = field(default_factory=list)  # one per titled entry
    undated: int = 0  # entries of the measured documents without a date
    total: int = 0  # entries of the measured documents
    undated_documents: int = 0  # documents with min_dated+ entries and no date at all

    @property
    def documents(self) -> int:
        return len(self.spans_days)

    @property
    def undated_share(self) -> float:
        return self.undated / self.total if self.total else 0.0


def manifest(corpus: Path) -> list[Path]:
    """The files MANIFEST.tsv lists that exist, in its order."""
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        paths = [corpus / row["file"] for row in csv.DictReader(f, delimiter="\t")]
    return [p for p in paths if p.is_file()]


def measure(corpus: Path = CORPUS, min_dated: int = MIN_DATED) -> Shape:
    shape = Shape()
    for path in manifest(corpus):
        body = path.read_bytes()
        if body.startswith(b"\x1f\x8b"):
            body = gzip.decompress(body)
        entries = feedparser.parse(body).entries
        shape.files += 1
        times = [
            calendar.timegm(moment)
            for entry in entries
            if (moment := entry.get("published_parsed") or entry.get("updated_parsed"))
        ]
        if len(times) < min_dated:
            if not times and len(entries) >= min_dated:
                shape.undated_documents += 1
            continue
        newest, oldest = max(times), min(times)
        shape.spans_days.append((newest - oldest) / 86400)
        if newest > oldest:
            inner = sorted(times)[1:-1]  # the two ends are where the span puts them
            shape.ages_in_span.extend((newest - t) / (newest - oldest) for t in inner)
        shape.entries.append(len(entries))
        shape.undated += len(entries) - len(times)
        shape.total += len(entries)
        for entry in entries:
            words = _TAG.sub(" ", str(entry.get("title") or "")).split()
            if words:
                shape.title_words.append(len(words))
    return shape


def quantile(values: Sequence[float], percent: float) -> float:
    """The ``percent``-th percentile, interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * percent / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def percentiles(values: Sequence[float], points: Sequence[float] = POINTS) -> tuple[float, ...]:
    return tuple(quantile(values, p) for p in points)


def table(shape: Shape) -> str:
    rows = [
        ("span (days)", shape.spans_days, 1),
        ("age in span", shape.ages_in_span, 2),
        ("entries", shape.entries, 1),
        ("title words", shape.title_words, 1),
    ]
    header = ["", "n", *(f"p{p}" for p in SHOWN), "mean"]
    lines = [header]
    for name, values, digits in rows:
        cells = [f"{v:.{digits}f}" for v in percentiles(values, SHOWN)]
        lines.append([name, str(len(values)), *cells, f"{sum(values) / len(values):.1f}"])
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if k == 0 else c.rjust(w)
            for k, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def constants(shape: Shape) -> str:
    """The measurement as the constants of bench/_corpus.py."""

    def row(name: str, values: Sequence[float], digits: int, comment: str) -> list[str]:
        cells = [f"{v:.{digits}f}" if digits else f"{round(v)}" for v in percentiles(values)]
        out = [f"{name} = (  # {comment}"]
        line = "   "
        for cell in cells:
            if len(line) + len(cell) + 2 > 99:
                out.append(line)
                line = "   "
            line += f" {cell},"
        return [*out, line, ")  # fmt: skip"]

    return "\n".join(
        [
            *row("SPAN_DAYS", shape.spans_days, 2, "oldest to newest entry"),
            *row("AGE_IN_SPAN", shape.ages_in_span, 3, "the other entries: 0 newest, 1 oldest"),
            *row("ENTRIES_PER_FEED", shape.entries, 0, "entries listed, dated or not"),
            *row("TITLE_WORDS", shape.title_words, 0, "words of a title"),
            f"UNDATED_SHARE = {shape.undated_share:.4f}  # entries with neither date "
            f"({shape.undated} of {shape.total})",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--min-dated", type=int, default=MIN_DATED)
    parser.add_argument("--python", action="store_true", help="print bench/_corpus.py constants")
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.tsv").is_file():
        print(
            f"corpus not found at {args.corpus}: it is test material beside the checkout"
            " (../shared; README: Test material)",
            file=sys.stderr,
        )
        return 2
    shape = measure(args.corpus, args.min_dated)
    if not shape.documents:
        print(f"no document has {args.min_dated}+ dated entries", file=sys.stderr)
        return 1
    print(
        f"corpus {args.corpus}: {shape.files} files parsed (feedparser {feedparser.__version__}),"
        f" {shape.documents} with {args.min_dated}+ dated entries, {shape.total} entries"
    )
    print()
    print(table(shape))
    print()
    print(
        f"undated entries: {shape.undated} of {shape.total} ({shape.undated_share:.2%}); "
        f"documents with {args.min_dated}+ entries and no date at all (not measured above): "
        f"{shape.undated_documents}"
    )
    if args.python:
        print()
        print(f"# percentiles {', '.join(map(str, POINTS))}")
        print(constants(shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
