"""The benchmark corpus's shape: its constants match the real feeds, its feeds follow them.

bench/_corpus.py keeps the real corpus's distributions as constants (measured by
bench/corpus_shape.py), so the benchmark runs without ../shared/corpus; here they are
re-measured when the corpus is there, and the synthetic corpus is checked against them.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    """bench/_corpus.py and bench/corpus_shape.py (bench/ on sys.path, as when they run)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCH))  # _corpus imports stories_cost from bench/
        import _corpus
        import corpus_shape

        yield _corpus, corpus_shape
    for name in ("_corpus", "corpus_shape"):
        sys.modules.pop(name, None)


def close(measured: Sequence[float], kept: Sequence[float], absolute: float) -> bool:
    """Every percentile within 10% (or ``absolute``, for the small ones) of the measurement."""
    return len(measured) == len(kept) and all(
        abs(m - k) <= max(absolute, 0.1 * abs(m)) for m, k in zip(measured, kept, strict=True)
    )


def test_the_kept_shape_matches_the_real_corpus(bench: tuple[ModuleType, ModuleType]) -> None:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"feed corpus not found at {CORPUS} (it lives beside the checkout)")
    corpus, shape_module = bench
    shape = shape_module.measure(CORPUS)
    assert shape_module.POINTS == corpus.SHAPE_PERCENTILES
    measured = {
        "SPAN_DAYS": (shape.spans_days, 0.05),
        "AGE_IN_SPAN": (shape.ages_in_span, 0.01),
        "ENTRIES_PER_FEED": (shape.entries, 1),
        "TITLE_WORDS": (shape.title_words, 1),
    }
    hint = "re-measure: python bench/corpus_shape.py --python, into bench/_corpus.py"
    for name, (values, absolute) in measured.items():
        percentiles = shape_module.percentiles(values)
        kept = getattr(corpus, name)
        assert close(percentiles, kept, absolute), (name, [round(p, 3) for p in percentiles], hint)
    assert abs(shape.undated_share - corpus.UNDATED_SHARE) <= 0.002, (shape.undated_share, hint)


def test_quantile_function_interpolates_the_kept_percentiles(
    bench: tuple[ModuleType, ModuleType],
) -> None:
    corpus, _ = bench
    table = (0.0, 1.0, 10.0)  # percentiles 0, 50, 100
    assert corpus.quantile_at(table, 0.0) == 0.0
    assert corpus.quantile_at(table, 0.25) == 0.5
    assert corpus.quantile_at(table, 0.5) == 1.0
    assert corpus.quantile_at(table, 0.75) == 5.5
    assert corpus.quantile_at(table, 1.0) == 10.0


@pytest.fixture(scope="module")
def synthetic(bench: tuple[ModuleType, ModuleType]) -> Any:
    corpus, _ = bench
    return corpus.Corpus(400, 20)


def test_each_feed_spans_a_drawn_span_ending_near_the_base_time(
    bench: tuple[ModuleType, ModuleType], synthetic: Any
) -> None:
    corpus, shape_module = bench
    for feed in synthetic.base:
        newest, oldest = feed.items[0].published, feed.items[-1].published
        assert corpus.BASE_TIME - newest <= timedelta(seconds=corpus.NEWEST_WITHIN)
        assert corpus.BASE_TIME - oldest == feed.span
    # The drawn spans follow the real distribution: the share of feeds under each kept
    # percentile is about that percentile (400 draws: within 8 points).
    days = [feed.span / timedelta(days=1) for feed in synthetic.base]
    for point, value in zip(corpus.SHAPE_PERCENTILES, corpus.SPAN_DAYS, strict=True):
        share = sum(d <= value for d in days) / len(days)
        assert abs(share * 100 - point) <= 8, (point, value, share)
    # ... and entries fall within their spans as real feeds' do (more near the newest end).
    ages = [
        (feed.items[0].published - item.published) / feed.span
        for feed in synthetic.base
        if feed.span
        for item in feed.items[1:-1]
    ]
    median = shape_module.quantile(ages, 50)
    assert abs(median - corpus.AGE_IN_SPAN[10]) <= 0.05, median


def test_republished_copies_are_published_within_hours_of_each_other(
    bench: tuple[ModuleType, ModuleType], synthetic: Any
) -> None:
    corpus, _ = bench
    copies: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for feed in synthetic.base:
        for item in feed.items:
            copies[item.story].append((feed.index, item))
    republished = [told for told in copies.values() if len(told) > 1]
    assert synthetic.stories == len(copies)
    assert synthetic.republished == len(republished)
    # About REPUBLISHED_SHARE: a few find no other feed publishing close enough.
    assert 0.1 <= len(republished) / len(copies) <= corpus.REPUBLISHED_SHARE + 0.02
    spans = {feed.index: feed.span for feed in synthetic.base}
    mixed = 0
    for told in republished:
        assert len(told) <= 4
        assert len({feed for feed, _ in told}) == len(told)  # each copy in another feed
        moments = sorted(item.published for _, item in told)
        assert moments[-1] - moments[0] <= 2 * timedelta(seconds=corpus.COPY_WITHIN)
        # The original (copy 0: its body seed is the story's own, the copies' come after it)
        # was published first; the others are the republished copies.
        original = min(told, key=lambda t: t[1].body_seed)[1]
        assert original.published == moments[0]
        found = [spans[feed] for feed, _ in told]
        mixed += max(found) > 10 * min(found) + timedelta(days=1)
    assert mixed > len(republished) / 10  # feeds of very different spans do share stories


def test_some_entries_are_undated_and_rendered_without_a_date(synthetic: Any) -> None:
    undated = [(feed, item) for feed in synthetic.base for item in feed.items if not item.dated]
    assert 0 < len(undated) < 0.02 * sum(len(feed.items) for feed in synthetic.base)
    for feed, item in undated[:5]:
        tag = "item" if feed.kind == "rss" else "entry"
        entries = synthetic.render(feed).decode().split(f"<{tag}>")[1:]
        (one,) = [e.split(f"</{tag}>")[0] for e in entries if f"{item.uid}</" in e]
        for date in ("pubDate", "published", "updated"):
            assert f"<{date}>" not in one, one
        assert sum("<pubDate>" in e or "<published>" in e for e in entries) >= len(entries) - 2


def test_the_feeds_are_listed_in_a_seeded_random_order(
    bench: tuple[ModuleType, ModuleType], synthetic: Any
) -> None:
    corpus, _ = bench
    order = [feed.index for feed in synthetic.in_poll_order()]
    assert sorted(order) == list(range(len(synthetic.base)))
    assert order != sorted(order)
    # Paths (and so URLs) sort in that order: reader polls its feeds in URL order.
    paths = [feed.path for feed in synthetic.in_poll_order()]
    assert paths == sorted(paths)
    again = corpus.Corpus(400, 20)
    assert [feed.index for feed in again.in_poll_order()] == order
    assert [synthetic.render(f) for f in synthetic.base[:5]] == [
        again.render(f) for f in again.base[:5]
    ]
