"""What applying the keep and block rules costs as the database grows.

    python bench/rules_bench.py [--sizes 10000 100000] [--runs 3]

For each size: a fresh temporary database (`open_store`, so the real schema), filled directly
with SQL: 100 feeds, `size` entries published over a year, each with a title, a summary, 300-3,000
bytes of HTML content, an author and tags; 1% of titles start "Sponsored". Then, in this
process, `aggregator.pipeline.apply_rules` (read, pure decision, one batched UPDATE, one
transaction), the median of `--runs`:

- full (title): the rules changed, one block rule on the title: every entry judged again;
- full (all fields): the rules changed, a rule on each field and an `older_than`: every entry
  read with its content and judged;
- incremental (none new): the same rules, nothing new: what every `update` and `build` pays;
- incremental (200 new): the same rules, 200 entries inserted or changed since.

`full` is what re-applying the rules at every build would cost; `incremental` is what the
stored fingerprint (`rule_state`) and the list of entries to judge (`rules_pending`) make it.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aggregator.config import parse_config  # noqa: E402
from aggregator.pipeline import apply_rules  # noqa: E402
from aggregator.store import open_store, utc_text  # noqa: E402
from aggregator.types import Config  # noqa: E402

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FEEDS = 100
WORDS = (
    "harbour council storm ferry budget vote volcano lava market rail coast power homes town "
    "minister talks summit river bridge school hospital court police fire energy price"
).split()
TITLE_RULE = "rules:\n  block:\n    - title: ^Sponsored\n"
ALL_RULES = (
    "rules:\n  block:\n    - title: ^Sponsored\n    - summary: (?i)advertisement\n"
    "    - content: promo code\n    - author: ^Brand Studio$\n    - tag: ^podcast$\n"
    "    - link: /partner/\n    - older_than: 300d\n"
)


def config_for(folder: Path, rules: str) -> Config:
    feeds = "".join(f"  - url: https://f{n}.example/rss\n    name: f{n}\n" for n in range(FEEDS))
    text = (
        "database: db/bench.db\noutput:\n  dir: out\n  id: tag:bench.invalid,2026:rules\n"
        f"{rules}feeds:\n{feeds}"
    )
    return parse_config(text, folder / "feeds.yaml")


def fill(config: Config, size: int, rng: random.Random) -> None:
    """`size` entries, as if stored over a year, judged under no rules yet."""
    bodies = []
    for _ in range(256):
        paragraphs, length = [], rng.randint(300, 3000)
        while sum(map(len, paragraphs)) < length:
            paragraphs.append("<p>" + " ".join(rng.choices(WORDS, k=14)) + ".</p>")
        bodies.append("".join(paragraphs))
    with open_store(config.database) as store:
        store.sync_feeds(config.feeds, NOW)
        rows = []
        for n in range(size):
            published = utc_text(NOW - timedelta(seconds=rng.randrange(365 * 86400)))
            sponsored = "Sponsored: " if rng.random() < 0.01 else ""
            rows.append(
                (
                    f"urn:bench:{n}",
                    rng.randrange(FEEDS) + 1,
                    sponsored + " ".join(rng.choices(WORDS, k=8)),
                    f"https://n.example/{n}",
                    f"<p>{' '.join(rng.choices(WORDS, k=30))}</p>",
                    rng.choice(bodies),
                    '["Jo Writer"]',
                    '["news", "world"]',
                    published,
                )
            )
        with store.transaction("bench fill"):
            store.db.conn.executemany(
                "INSERT INTO entries (uid, feed_id, title, link, summary, content, authors, tags, "
                "published, updated, first_seen, fingerprint) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?9, ?9, '')",
                rows,
            )


def timed(runs: int, before: Callable[[], None], work: Callable[[], object]) -> float:
    took = []
    for _ in range(runs):
        before()
        began = time.perf_counter()
        work()
        took.append(time.perf_counter() - began)
    return statistics.median(took)


def measure(size: int, runs: int, folder: Path) -> dict[str, float]:
    titles, every = config_for(folder, TITLE_RULE), config_for(folder, ALL_RULES)
    fill(titles, size, random.Random(size))
    results: dict[str, float] = {}
    with open_store(titles.database) as store:

        def forget() -> None:  # the rules "changed": no fingerprint stored
            store.db.execute("DELETE FROM rule_state")
            store.db.conn.commit()

        def touch(count: int) -> Callable[[], None]:
            def mark() -> None:
                store.db.execute(
                    "INSERT OR IGNORE INTO rules_pending (entry_id) "
                    "SELECT id FROM entries ORDER BY random() LIMIT ?",
                    [count],
                )
                store.db.conn.commit()

            return mark

        results["full (title)"] = timed(runs, forget, lambda: apply_rules(store, titles, NOW))
        results["full (all fields)"] = timed(runs, forget, lambda: apply_rules(store, every, NOW))
        apply_rules(store, every, NOW)
        later = iter(NOW + timedelta(minutes=5 * n) for n in range(1, 1000))
        results["incremental (none new)"] = timed(
            runs, lambda: None, lambda: apply_rules(store, every, next(later))
        )
        results["incremental (200 new)"] = timed(
            runs, touch(200), lambda: apply_rules(store, every, next(later))
        )
        filtered = store.db.execute(
            "SELECT count(*) FROM entries WHERE filtered_by IS NOT NULL"
        ).fetchone()[0]
    print(f"{size} entries: {filtered} filtered by the rules on every field", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    table: dict[int, dict[str, float]] = {}
    for size in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="aggregator-rules-bench-"))
        try:
            table[size] = measure(size, args.runs, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    phases = list(next(iter(table.values())))
    print(f"{'seconds (median)':<24}" + "".join(f"{size:>12}" for size in table))
    for phase in phases:
        print(f"{phase:<24}" + "".join(f"{table[size][phase]:>12.3f}" for size in table))


if __name__ == "__main__":
    main()
