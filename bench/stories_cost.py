"""Cost per new entry of story placement as the database grows.

    python bench/stories_cost.py [--sizes 10000 500000] [--samples 200]

For each size: a fresh temporary database (`open_store`, so the real schema and indexes), filled
directly with SQL as if `size` entries had been stored and placed over the years (`--per-day`
entries a day, uniformly, so the 72 h window always holds about the same number of entries;
~30% of entries in multi-member stories; headlines synthesized deterministically from a
Zipf-distributed vocabulary). Then `--samples` new entries, published at the end of the time
span, are stored with `Store.apply_update`, each written with the story `pipeline.story_placer`
decides, in one transaction as the pipeline does; only the decision (the window's candidates
and `stories.decide`) is timed, after `--warmup` untimed entries. Prints median and p90
microseconds per entry for each size, then `cost ratio LARGEST/SMALLEST: X.XX (median)`.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _ingest import store_and_place  # noqa: E402  (bench/ is on sys.path when run)

from aggregator.store import Store, open_store, utc_text  # noqa: E402
from aggregator.stories import headline_vector, story_words  # noqa: E402
from aggregator.types import Entry, FeedConfig  # noqa: E402

DEV_TSV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "stories-dev.tsv"
START = datetime(2020, 1, 1, tzinfo=UTC)
VOCABULARY = 50_000  # distinct significant words
ZIPF_S, ZIPF_Q = 1.0, 20.0  # Zipf-Mandelbrot weight of rank r: 1 / (r + q) ** s
TOPIC_RANKS = 300  # story-defining words (names, places) come from below the commonest ones
FEEDS = 200
MULTI_SHARE = 0.3  # entries that belong to a story with 2+ members
STORY_SPREAD_HOURS = 36.0  # members of a story are published within this of its first one
SEED = 20140310


# ---------------------------------------------------------------- synthetic headlines


def vocabulary(rng: random.Random, size: int = VOCABULARY) -> list[str]:
    """Words by rank: the dev set's words (commonest first) when present, then made-up ones.

    Every word is its own `story_words`, so a headline's words are known without re-parsing.
    """
    counts: Counter[str] = Counter()
    if DEV_TSV.exists():
        with DEV_TSV.open(encoding="utf-8", newline="") as f:
            for record in csv.DictReader(f, delimiter="\t"):
                counts.update(story_words(record["title"]))
    words = [w for w, _ in counts.most_common() if w.isascii() and story_words(w) == (w,)]
    seen = set(words)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen and story_words(word) == (word,):
            seen.add(word)
            words.append(word)
    return words[:size]


class Zipf:
    """Draws words by rank with Zipf-Mandelbrot weights, from a pre-drawn pool (fast)."""

    def __init__(self, rng: random.Random, words: Sequence[str], pool: int) -> None:
        weights = [1.0 / (rank + ZIPF_Q) ** ZIPF_S for rank in range(1, len(words) + 1)]
        self.cum = list(itertools.accumulate(weights))
        self.words = words
        self.rng = rng
        self.pool: Iterator[str] = iter(rng.choices(words, cum_weights=self.cum, k=pool))

    def draw(self) -> str:
        word = next(self.pool, None)
        return word if word is not None else self.rng.choices(self.words, self.cum)[0]

    def draw_topic(self) -> str:
        """A story-defining word: Zipf-distributed over the ranks below TOPIC_RANKS."""
        low = self.cum[TOPIC_RANKS - 1]
        index = bisect.bisect_left(self.cum, low + self.rng.random() * (self.cum[-1] - low))
        return self.words[min(index, len(self.words) - 1)]


def headline(zipf: Zipf, rng: random.Random, core: Sequence[str] = ()) -> tuple[str, ...]:
    """A headline's distinct words: 3-5 of its story's core words and a few common ones."""
    words = list(rng.sample(core, min(len(core), rng.randint(3, 5)))) if core else []
    target = len(words) + (rng.randint(1, 3) if core else rng.randint(5, 8))
    while len(words) < target:
        word = zipf.draw()
        if word not in words:
            words.append(word)
    rng.shuffle(words)
    return tuple(words)


def title_of(words: Sequence[str]) -> str:
    return " ".join(words).capitalize()


@dataclass(frozen=True, slots=True)
class Synthetic:
    published: list[datetime]  # entry i's publication time, in order
    words: list[tuple[str, ...]]  # entry i's significant words
    story: list[int]  # entry i's story number (0-based, numbered by first member)
    cores: dict[int, tuple[str, ...]]  # multi-member story -> its core words
    span: timedelta


def synthesize(size: int, per_day: int, rng: random.Random, words: Sequence[str]) -> Synthetic:
    """`size` entries over size/per_day days, ~30% in multi-member stories."""
    span = timedelta(days=size / per_day)
    seconds = span.total_seconds()
    zipf = Zipf(rng, words, pool=size * 8)
    # Story sizes: a heavy tail (most stories are pairs, a few gather dozens of outlets).
    groups: list[tuple[float, int]] = []  # (first member's offset, members)
    in_multi = 0
    while in_multi < MULTI_SHARE * size:
        members = min(1 + int(rng.paretovariate(1.3)), 150, size - in_multi)
        groups.append((rng.random() * seconds, members))
        in_multi += members
    placed: list[tuple[float, int]] = []  # (offset, group index; -1: a story of its own)
    for g, (first, members) in enumerate(groups):
        placed.append((first, g))
        for _ in range(members - 1):
            delay = min(rng.expovariate(1 / 6.0), STORY_SPREAD_HOURS) * 3600
            placed.append((min(first + delay, seconds), g))
    placed.extend((rng.random() * seconds, -1) for _ in range(size - len(placed)))
    placed.sort()
    cores = {
        g: tuple(dict.fromkeys(zipf.draw_topic() for _ in range(5))) for g in range(len(groups))
    }
    story_of_group: dict[int, int] = {}
    stories: list[int] = []
    titles: list[tuple[str, ...]] = []
    published: list[datetime] = []
    next_story = 0
    cores_by_story: dict[int, tuple[str, ...]] = {}
    for offset, g in placed:
        if g < 0 or g not in story_of_group:
            story = next_story
            next_story += 1
            if g >= 0:
                story_of_group[g] = story
                cores_by_story[story] = cores[g]
        else:
            story = story_of_group[g]
        stories.append(story)
        titles.append(headline(zipf, rng, cores[g] if g >= 0 else ()))
        published.append(START + timedelta(seconds=int(offset)))
    return Synthetic(published, titles, stories, cores_by_story, span)


# ---------------------------------------------------------------- direct fill


def fill(store: Store, data: Synthetic) -> None:
    """Write the synthetic history with plain SQL, in one transaction, as the store would.

    Bulk-loading as databases do: the full-text insert trigger of databases before m009 is
    dropped for the load and recreated from its own stored SQL afterwards, so the schema
    measured is exactly the one the migrations made.
    """
    conn: sqlite3.Connection = store.db.conn
    conn.execute("PRAGMA synchronous = OFF")  # the bench's own temporary file only
    conn.execute("PRAGMA cache_size = -500000")  # 500 MB: the fill touches every index
    deferred = conn.execute(
        "SELECT name, type, sql FROM sqlite_master WHERE name = ?", ["entries_ai"]
    ).fetchall()
    added = utc_text(START)
    conn.execute("BEGIN")
    conn.execute("PRAGMA defer_foreign_keys = ON")  # entries <-> stories point at each other
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
    feed_of = [rng.randint(1, FEEDS) for _ in data.words]
    times = [utc_text(moment) for moment in data.published]
    titles = [title_of(words) for words in data.words]
    urls = [f"https://news.example/{i:08d}" for i in range(len(data.words))]
    first: dict[int, int] = {}  # story -> its first (representative) entry
    last: dict[int, int] = {}
    members: Counter[int] = Counter()
    for i, story in enumerate(data.story):
        first.setdefault(story, i)
        last[story] = i
        members[story] += 1
    conn.executemany(
        "INSERT INTO entries (id, uid, feed_id, title, link, canonical_url, published, updated, "
        "first_seen, fingerprint, story_id, story_rule, story_score, story_joined, "
        "story_word_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                i + 1,
                urls[i],
                feed_of[i],
                titles[i],
                urls[i],
                urls[i],
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
    for _, _, sql in deferred:
        conn.execute(sql)
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def insert_derived(
    conn: sqlite3.Connection,
    data: Synthetic,
    feed_of: Sequence[int],
    titles: Sequence[str],
    urls: Sequence[str],
    times: Sequence[str],
    first: dict[int, int],
    last: dict[int, int],
    members: Counter[int],
) -> None:
    """Everything the store derives from the entries rows: the search index, one source per
    entry, the stories and the story detector's word tables (shared with scale_bench.py)."""
    conn.execute(
        "INSERT INTO entries_fts (rowid, title, summary, content) "
        "SELECT id, title, summary, content FROM entries"
    )
    conn.executemany(
        "INSERT INTO sources (entry_id, feed_id, source_entry_id, title, link, published, "
        "updated, fingerprint, first_seen, last_changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                i + 1,
                feed_of[i],
                f"e{i}",
                titles[i],
                urls[i],
                times[i],
                times[i],
                f"{i:032x}",
                times[i],
                times[i],
            )
            for i in range(len(data.words))
        ),
    )
    conn.executemany(
        "INSERT INTO stories (id, uid, representative_id, members, first_seen, updated) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            (story + 1, urls[i], i + 1, members[story], times[i], times[last[story]])
            for story, i in first.items()
        ),
    )
    # In primary-key order (entry_id, word: m016): the B-tree is built by appending.
    conn.executemany(
        "INSERT OR IGNORE INTO entry_words (entry_id, word) VALUES (?, ?)",
        sorted((i + 1, w) for i, words in enumerate(data.words) for w in words),
    )
    story_counts: Counter[tuple[int, str]] = Counter(
        (story + 1, w) for words, story in zip(data.words, data.story, strict=True) for w in words
    )
    # Each story's centroid, as placement keeps it: its members' unit vectors summed.
    story_weights: dict[tuple[int, str], float] = {}
    for words, story in zip(data.words, data.story, strict=True):
        for w, value in headline_vector(tuple(words)).items():
            story_weights[story + 1, w] = story_weights.get((story + 1, w), 0.0) + value
    conn.executemany(
        "INSERT INTO story_words (story_id, word, count, weight) VALUES (?, ?, ?, ?)",
        (
            (story, w, n, story_weights.get((story, w), 0.0))
            for (story, w), n in sorted(story_counts.items())
        ),
    )


# ---------------------------------------------------------------- timed placement


def sample_entries(
    data: Synthetic, count: int, rng: random.Random, words: Sequence[str]
) -> list[Entry]:
    """New entries at the end of the span: 30% retell a story of the last 72 h, 70% are new."""
    end = START + data.span
    window = timedelta(hours=72)
    pairs = zip(data.story, data.published, strict=True)
    recent = sorted({s for s, t in pairs if end - t < window} & data.cores.keys())
    zipf = Zipf(rng, words, pool=count * 8)
    entries = []
    for k in range(count):
        core = data.cores[rng.choice(recent)] if recent and rng.random() < 0.3 else ()
        title = title_of(headline(zipf, rng, core))
        url = f"https://sample.example/{k}"
        moment = end + timedelta(seconds=k)
        entries.append(Entry(f"sample-{k}", title, url, url, published=moment))
    return entries


def time_placement(store: Store, entries: Sequence[Entry], warmup: int) -> list[float]:
    """Microseconds spent deciding each entry's story, after the warm-up ones."""
    (state,) = store.sync_feeds(
        [FeedConfig(url="https://sample.example/rss", name="sample")], START
    ).values()
    timings: list[float] = []
    for k, entry in enumerate(entries):
        assert entry.published is not None
        elapsed = store_and_place(store, state, entry, entry.published)
        if k >= warmup:
            timings.append(elapsed * 1e6)
    return timings


@dataclass(frozen=True, slots=True)
class Measured:
    size: int
    days: float
    window_entries: int
    fill_seconds: float
    median_us: float
    p90_us: float
    joined: int


def measure(size: int, samples: int, warmup: int, per_day: int, words: Sequence[str]) -> Measured:
    rng = random.Random(SEED + size)
    data = synthesize(size, per_day, rng, words)
    end = START + data.span
    window = sum(1 for t in data.published if end - t <= timedelta(hours=72))
    entries = sample_entries(data, warmup + samples, rng, words)
    with (
        tempfile.TemporaryDirectory(prefix="stories-cost-") as tmp,
        open_store(Path(tmp) / "cost.db") as store,
    ):
        started = time.perf_counter()
        fill(store, data)
        fill_seconds = time.perf_counter() - started
        timings = time_placement(store, entries, warmup)
        joined = store.db.execute(
            "SELECT count(*) FROM entries WHERE id > ? AND story_rule != 'new'", [size]
        ).fetchone()[0]
    timings.sort()
    p90 = timings[min(len(timings) - 1, int(0.9 * len(timings)))]
    return Measured(
        size,
        data.span.total_seconds() / 86400,
        window,
        fill_seconds,
        statistics.median(timings),
        p90,
        joined,
    )


def short(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 500_000])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--per-day", type=int, default=500)
    args = parser.parse_args(argv)
    if args.samples < 1 or any(size < 10 for size in args.sizes):
        parser.error("--samples must be >= 1 and every size >= 10")
    words = vocabulary(random.Random(SEED))
    results = []
    for size in sorted(set(args.sizes)):
        result = measure(size, args.samples, args.warmup, args.per_day, words)
        results.append(result)
        print(
            f"{short(size)}: filled in {result.fill_seconds:.1f} s, "
            f"median {result.median_us:.0f} µs/entry",
            file=sys.stderr,
        )
    headers = ["entries", "days", "in 72h", "fill s", "median µs", "p90 µs", "joined"]
    body = [
        [
            short(r.size),
            f"{r.days:.0f}",
            str(r.window_entries),
            f"{r.fill_seconds:.1f}",
            f"{r.median_us:.0f}",
            f"{r.p90_us:.0f}",
            f"{r.joined}/{args.samples + args.warmup}",
        ]
        for r in results
    ]
    widths = [max(len(line[k]) for line in [headers, *body]) for k in range(len(headers))]
    for line in [headers, ["-" * w for w in widths], *body]:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))
    small, large = results[0], results[-1]
    ratio = large.median_us / small.median_us if small.median_us else float("nan")
    print(f"cost ratio {short(large.size)}/{short(small.size)}: {ratio:.2f} (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
