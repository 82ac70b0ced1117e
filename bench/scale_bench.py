"""Does the cost of rebuilding the outputs and of placing a new entry grow with the database?

    python bench/scale_bench.py [--sizes 10000 100000 1000000] [--samples 100] [--runs 3]

For each size: a fresh temporary database (`open_store`, so the real schema), filled directly
with SQL as if `size` entries had been stored and placed over the years: the synthetic history
of bench/stories_cost.py (`--per-day` entries a day, ~30% in multi-member stories, Zipf
headlines), plus what stories_cost leaves out and the outputs render: every entry has a
summary and 300-3,000 bytes of HTML content, and the full-text index covers them. The bulk load
drops the secondary indexes (and, before m009, the full-text insert trigger) and recreates them
afterwards from their own stored SQL, so the schema measured is exactly the one the migrations
made.

Then, in this process:
- rebuild: `aggregator.pipeline.build(config)`, one warm-up then the median of `--runs`, the
  output directory deleted before each run so every file is rendered and written;
- per-entry cost: `--samples` new entries (after `--warmup` untimed ones) stored and placed with
  bench/_ingest.store_and_place, one transaction each as the pipeline does: the median of the
  whole call (plan_update + apply_update, each new entry written with its story) and of the
  story decision alone (the window's candidates and `stories.decide`).

Prints a table and `rebuild ratio LARGEST/SMALLEST: X.XX`, `entry cost ratio ...`.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _ingest import store_and_place  # noqa: E402  (bench/ is on sys.path when run)
from stories_cost import (  # noqa: E402
    FEEDS,
    SEED,
    START,
    Synthetic,
    insert_derived,
    sample_entries,
    short,
    synthesize,
    title_of,
    vocabulary,
)

from aggregator.config import load_config  # noqa: E402
from aggregator.pipeline import build  # noqa: E402
from aggregator.store import Store, open_store, utc_text  # noqa: E402
from aggregator.types import FeedConfig  # noqa: E402

EMPTY_AFTER_FILL = frozenset({"tombstones"})  # nothing pruned yet
BODIES = 512  # distinct HTML bodies, reused (the text varies; its size is what matters)


def bodies(rng: random.Random, words: Sequence[str]) -> list[str]:
    """HTML bodies of 300-3,000 bytes: paragraphs, links (some relative), images, entities."""
    out = []
    for _ in range(BODIES):
        target = rng.randint(300, 3000)
        parts: list[str] = []
        size = 0
        while size < target:
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(8, 20)))
            paragraph = f"<p>{sentence.capitalize()} &mdash; more.</p>"
            if rng.random() < 0.2:
                paragraph += (
                    f'<p><a href="https://news.example/{rng.randrange(10**6)}">read</a></p>'
                )
            if rng.random() < 0.1:
                paragraph += f'<p><img src="https://img.example/{rng.randrange(10**6)}.jpg"></p>'
            parts.append(paragraph)
            size += len(paragraph)
        out.append("".join(parts))
    return out


def fill(store: Store, data: Synthetic, html: Sequence[str]) -> None:
    """Write the synthetic history with plain SQL, in one transaction, as the store would."""
    conn: sqlite3.Connection = store.db.conn
    # The bench's own temporary file only: no journal (no WAL copy of every page, no
    # checkpoint), no fsync, sorts for the index builds in memory. WAL is back after the load.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -1000000")  # 1 GB: the fill touches every index
    deferred = conn.execute(
        "SELECT name, type, sql FROM sqlite_master WHERE sql IS NOT NULL AND "
        "((type = 'index' AND tbl_name IN ('entries', 'sources', 'entry_words', 'stories', "
        "'story_words')) OR (type = 'trigger' AND name = 'entries_ai'))"  # before m009
    ).fetchall()
    added = utc_text(START)
    # Consistent by construction, and checked with foreign_key_check after the load; enforced
    # row by row, every parent insert would scan the (unindexed while loading) child tables.
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN")
    for name, kind, _ in deferred:
        conn.execute(f'DROP {kind.upper()} "{name}"')
    conn.executemany(
        "INSERT INTO feeds (id, name, url, source_id, added) VALUES (?, ?, ?, ?, ?)",
        [
            (f, f"feed-{f}", f"https://feed{f}.example/rss", f"urn:bench:feed:{f}", added)
            for f in range(1, FEEDS + 1)
        ],
    )
    rng = random.Random(SEED)
    size = len(data.words)
    feed_of = [rng.randint(1, FEEDS) for _ in range(size)]
    body_of = [rng.randrange(BODIES) for _ in range(size)]
    times = [utc_text(moment) for moment in data.published]
    titles = [title_of(words) for words in data.words]
    urls = [f"https://news.example/{i:08d}" for i in range(size)]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    members: Counter[int] = Counter()
    for i, story in enumerate(data.story):
        first.setdefault(story, i)
        last[story] = i
        members[story] += 1
    conn.executemany(
        "INSERT INTO entries (id, uid, feed_id, title, link, canonical_url, summary, content, "
        "authors, tags, published, updated, first_seen, fingerprint, story_id, story_rule, "
        "story_score, story_joined, story_word_count) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                i + 1,
                urls[i],
                feed_of[i],
                titles[i],
                urls[i],
                urls[i],
                f"{titles[i]}: the story so far, in brief.",
                html[body_of[i]],
                '["Reporter"]',
                f'["section-{i % 7}"]',
                times[i],
                times[i],
                times[i],
                f"{i:032x}",
                story + 1,
                "new" if first[story] == i else "similar-title",
                0.0 if first[story] == i else 0.6,
                times[i],
                len(data.words[i]),
            )
            for i, story in enumerate(data.story)
        ),
    )
    insert_derived(conn, data, feed_of, titles, urls, times, first, last, members)
    tables = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    for _, _, sql in deferred:
        conn.execute(sql)
    conn.commit()
    # A table a newer migration added and this fill does not know would be left empty: say so.
    empty = sorted(
        name
        for name in tables
        if not name.startswith(("entries_fts", "sqlite_", "_"))
        and name not in EMPTY_AFTER_FILL
        and conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] == 0
    )
    if empty:
        print(f"warning: tables left empty by the fill: {', '.join(empty)}", file=sys.stderr)
    problems = conn.execute("PRAGMA foreign_key_check").fetchmany(5)
    assert not problems, problems
    conn.execute("PRAGMA foreign_keys = ON")
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA temp_store = DEFAULT")
    conn.execute("PRAGMA cache_size = -2000")  # back to SQLite's default for the measurements


def write_config(directory: Path, database: Path) -> Path:
    lines = [
        f"database: {database}",
        "output:",
        f"  dir: {directory / 'output'}",
        "  id: tag:bench.example,2026:scale",
        "feeds:",
    ]
    for f in range(1, FEEDS + 1):
        lines += [f"  - url: https://feed{f}.example/rss", f"    name: feed-{f}"]
    path = directory / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True, slots=True)
class Measured:
    size: int
    fill_seconds: float
    db_mb: float
    rebuild_seconds: float
    rebuild_runs: tuple[float, ...]
    entry_us: float
    place_us: float
    joined: int  # sampled entries that joined an existing story (30% retell a recent one)
    placed: int


def measure(
    size: int, args: argparse.Namespace, words: Sequence[str], html: Sequence[str]
) -> Measured:
    rng = random.Random(SEED + size)
    data = synthesize(size, args.per_day, rng, words)
    entries = sample_entries(data, args.warmup + args.samples, rng, words)
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        directory = Path(tmp)
        database = directory / "scale.db"
        config = load_config(write_config(directory, database))
        with open_store(database) as store:
            started = time.perf_counter()
            fill(store, data, html)
            fill_seconds = time.perf_counter() - started
        db_mb = database.stat().st_size / 1e6
        # The fill leaves gigabytes of dirty pages; written back while the rebuilds run, they
        # made the rebuilds' fsyncs wait (1M runs of 79/97/127 ms against 61-62 ms settled).
        os.sync()
        timings = []
        for run in range(args.runs + 1):  # the first is the warm-up
            shutil.rmtree(config.output.dir, ignore_errors=True)
            started = time.perf_counter()
            written = build(config)
            elapsed = time.perf_counter() - started
            assert written, "build wrote nothing"
            if run:
                timings.append(elapsed)
        whole: list[float] = []
        placing: list[float] = []
        with open_store(database) as store:
            # The commit's fsync is paid once per feed response, not per entry: left out, as
            # bench/stories_cost.py does.
            store.db.execute("PRAGMA synchronous = OFF")
            (state,) = store.sync_feeds(
                [FeedConfig(url="https://sample.example/rss", name="sample")], START
            ).values()
            for k, entry in enumerate(entries):
                assert entry.published is not None
                started = time.perf_counter()
                place = store_and_place(store, state, entry, entry.published)
                total = time.perf_counter() - started
                if k >= args.warmup:
                    whole.append(total * 1e6)
                    placing.append(place * 1e6)
            joined = store.db.execute(
                "SELECT count(*) FROM entries WHERE id > ? AND story_rule != 'new'", [size]
            ).fetchone()[0]
    return Measured(
        size,
        fill_seconds,
        db_mb,
        statistics.median(timings),
        tuple(timings),
        statistics.median(whole),
        statistics.median(placing),
        joined,
        len(entries),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-day", type=int, default=500)
    args = parser.parse_args(argv)
    if args.samples < 1 or args.runs < 1 or any(size < 10 for size in args.sizes):
        parser.error("--samples and --runs must be >= 1 and every size >= 10")
    words = vocabulary(random.Random(SEED))
    html = bodies(random.Random(SEED), words[:5000])
    results = []
    for size in sorted(set(args.sizes)):
        result = measure(size, args, words, html)
        results.append(result)
        print(
            f"{short(size)}: filled in {result.fill_seconds:.1f} s ({result.db_mb:.0f} MB), "
            f"rebuild {result.rebuild_seconds * 1e3:.0f} ms, "
            f"store+place {result.entry_us:.0f} µs/entry",
            file=sys.stderr,
            flush=True,
        )
    headers = [
        "entries",
        "fill s",
        "db MB",
        "rebuild ms",
        "runs ms",
        "store+place µs",
        "place µs",
        "joined",
    ]
    body = [
        [
            short(r.size),
            f"{r.fill_seconds:.1f}",
            f"{r.db_mb:.0f}",
            f"{r.rebuild_seconds * 1e3:.0f}",
            "/".join(f"{t * 1e3:.0f}" for t in r.rebuild_runs),
            f"{r.entry_us:.0f}",
            f"{r.place_us:.0f}",
            f"{r.joined}/{r.placed}",
        ]
        for r in results
    ]
    widths = [max(len(line[k]) for line in [headers, *body]) for k in range(len(headers))]
    for line in [headers, ["-" * w for w in widths], *body]:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))
    small, large = results[0], results[-1]
    label = f"{short(large.size)}/{short(small.size)}"
    print(f"rebuild ratio {label}: {large.rebuild_seconds / small.rebuild_seconds:.2f}")
    print(f"entry cost ratio {label}: {large.entry_us / small.entry_us:.2f} (store+place, median)")
    print(f"placement cost ratio {label}: {large.place_us / small.place_us:.2f} (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
