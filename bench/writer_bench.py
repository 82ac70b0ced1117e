"""The single writer alone: how long storing a cold update's parsed feeds takes, per entry.

    python bench/writer_bench.py [--feeds 200] [--entries 50] [--rounds 3] [--profile FILE]

The synthetic corpus of `feeds_bench.py` (bench/_corpus.py) is parsed once, untimed; then, for
each round, a fresh database receives every parsed feed through `pipeline.save` exactly as the
cold `aggregator update` stores them (dedup plan, entries, sources, story placement, a
savepoint per feed, a commit per BATCH_FEEDS feeds). Parsing and fetching are the workers'
share; this is the part that runs on the one writer thread and bounds a cold update when the
workers keep up. Prints the median wall time per round, microseconds per entry, and the
`--profile` pyinstrument report if asked.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _corpus import Corpus  # noqa: E402  (bench/ is on sys.path when run)

from aggregator.parse_worker import parse_response  # noqa: E402
from aggregator.pipeline import BATCH_FEEDS, Retrieved, save  # noqa: E402
from aggregator.schedule import SchedulePolicy  # noqa: E402
from aggregator.store import open_store  # noqa: E402
from aggregator.types import FeedConfig, FetchResult  # noqa: E402

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def parsed_corpus(feeds: int, entries: int) -> list[tuple[str, FetchResult, object]]:
    """The base corpus, parsed and prepared as the workers would (this is not timed)."""
    corpus = Corpus(feeds, entries)
    out = []
    for index, feed in enumerate(corpus.in_poll_order()):  # as feeds_bench polls them
        url = f"http://127.0.0.1:1/{feed.path}"
        body = corpus.render(feed)
        headers = {"ETag": f'"v{index}"', "Content-Type": "application/xml"}
        parsed = parse_response(body, url=url, headers=headers, now=NOW)
        out.append((f"feed{index}", FetchResult(200, url, headers, None), parsed))
    return out


def one_round(parsed: list[tuple[str, FetchResult, object]], directory: Path) -> float:
    """Store every parsed feed in a new database; returns the seconds the writes took."""
    feeds = [FeedConfig(url=fetched.url, name=name) for name, fetched, _ in parsed]
    policy = SchedulePolicy()
    with open_store(directory / "bench.db") as store:
        states = store.sync_feeds(feeds, NOW)
        started = time.perf_counter()
        for first in range(0, len(parsed), BATCH_FEEDS):  # committed as `poll` does
            with store.batch("bench"):
                for name, fetched, result in parsed[first : first + BATCH_FEEDS]:
                    retrieved = Retrieved(states[name], NOW, 0.0, fetched, result)  # type: ignore[arg-type]
                    outcome = save(store, retrieved, policy, rand=lambda: 0.5)
                    if outcome.new == 0:
                        raise SystemExit(f"{name}: nothing stored ({outcome.error})")
        elapsed = time.perf_counter() - started
        stored = store.count("entries")
        stories = store.count("stories")
    print(f"stored {stored} entries in {stories} stories")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write a pyinstrument text report here")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    parsed = parsed_corpus(args.feeds, args.entries)
    total = sum(len(p.entries) for _, _, p in parsed)  # type: ignore[attr-defined]
    print(f"parsed {len(parsed)} feeds, {total} entries in {time.perf_counter() - began:.1f} s")
    times = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(one_round(parsed, Path(tmp)))
    median = statistics.median(times)
    print(
        f"writer: median {median:.2f} s a round ({', '.join(f'{t:.2f}' for t in times)}), "
        f"{median / total * 1e6:.0f} us/entry, {total / median:.0f} entries/s"
    )
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        with tempfile.TemporaryDirectory() as tmp, profiler:
            one_round(parsed, Path(tmp))
        args.profile.write_text(profiler.output_text(unicode=True, show_all=False))
        print(f"profile: {args.profile}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
