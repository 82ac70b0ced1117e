"""Whether the feedparser patches' fast paths still pay for themselves: parse time with and without.

    python bench/parse_tuning_bench.py [--feeds 200] [--entries 50] [--rounds 5]

`aggregator/parse/feedparser_patches.py` carries a copy of feedparser's ``pop`` and a cheaper
``contentparams`` (``FastPaths``) and memoizes base-URL joins, switched on only with the
feedparser release they were checked against. This parses the same documents with
`aggregator.parse.parse_feed` in two fresh processes, one with the fast paths and one with
feedparser's own code (the version check made to fail before the module is imported), rounds
alternating, and prints the median CPU seconds of each and their ratio: on the synthetic corpus of
feeds_bench.py, and on the real-world files of ../shared/corpus when they are there. Each process
parses on one core, as each parse worker does.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REAL_CORPUS = ROOT.parent / "shared" / "corpus"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _documents(source: str, feeds: int, entries: int) -> list[tuple[str, bytes]]:
    if source == "synthetic":
        sys.path.insert(0, str(BENCH))
        from _corpus import Corpus

        corpus = Corpus(feeds, entries)
        return [(f"http://127.0.0.1:1/{f.path}", corpus.render(f)) for f in corpus.in_poll_order()]
    with (REAL_CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    paths = [REAL_CORPUS / row["file"] for row in rows]
    return [(f"https://example.org/{p.name}", p.read_bytes()) for p in paths if p.is_file()]


def child(mode: str, source: str, feeds: int, entries: int) -> None:
    """One timed pass over the documents, in this process; prints the seconds."""
    import feedparser

    if mode == "plain":
        feedparser.__version__ = "not-the-checked-release"  # read once, at the module's import
    sys.path.insert(0, str(ROOT))
    from aggregator.errors import ParseError
    from aggregator.parse import feedparser_patches, parse_feed

    fast = feedparser_patches.FastPaths in feedparser.api.StrictFeedParser.__mro__
    if fast != (mode == "fast"):
        raise SystemExit(f"the {mode} process has fast paths {'on' if fast else 'off'}")
    documents = _documents(source, feeds, entries)
    headers = {"Content-Type": "application/xml"}
    started = time.process_time()  # CPU time: other load on the machine does not count
    for url, body in documents:
        # The real corpus holds broken feeds on purpose; refusing one is work too.
        with contextlib.suppress(ParseError):
            parse_feed(body, url=url, headers=headers, now=NOW)
    print(f"{time.process_time() - started:.4f} {len(documents)}")


def measure(source: str, args: argparse.Namespace) -> None:
    seconds: dict[str, list[float]] = {"fast": [], "plain": []}
    count = 0
    for _ in range(args.rounds):
        for mode in ("fast", "plain"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    mode,
                    source,
                    "--feeds",
                    str(args.feeds),
                    "--entries",
                    str(args.entries),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            seconds[mode].append(float(out[0]))
            count = int(out[1])
    fast, plain = (statistics.median(seconds[m]) for m in ("fast", "plain"))
    print(
        f"{source} ({count} documents): fast paths {fast:.2f} s, feedparser's own code "
        f"{plain:.2f} s of CPU (medians of {args.rounds}); {plain / fast:.2f}x, "
        f"{1 - fast / plain:.0%} of the parse saved"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-real", action="store_true", help="the synthetic corpus only")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.feeds, args.entries)
        return 0
    import feedparser

    print(f"feedparser {feedparser.__version__}")
    measure("synthetic", args)
    if args.no_real:
        pass
    elif (REAL_CORPUS / "MANIFEST.tsv").is_file():
        measure("real", args)
    else:
        print(f"real-world corpus not found at {REAL_CORPUS} (test material beside the checkout)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
