"""Measure same-story detection on a labeled headline set: by fold, worst fold, whole set.

    python bench/stories_eval.py [TSV] [--search]   (default: ../shared/corpus/stories-dev.tsv)

The real detector runs through the real store: one feed per publisher, every headline stored
with `Store.apply_update` and placed with `pipeline.place_in_stories`, in timestamp order, in a
temporary SQLite database. Three simple baselines see the same rows in the same order, online:
a headline joins the cluster of the most similar earlier headline within 72 h when the rule
passes, otherwise it starts a cluster of its own.

The TSV is split by story into 5 folds (fixed seed): the shipped defaults are reported on each
fold and on the worst one. `--search` chooses the two similarity thresholds by a grid search on
four folds (all four together, as many stories as the held-out set has) and reports the choice
on the fifth, for each fold in turn: no number it prints was tuned on the rows it is measured on.

Metrics: pairwise precision / recall / F1 over all unordered pairs of rows, B-cubed precision /
recall, the purity of the largest predicted story (the share of its commonest gold story), and
how many predicted stories mix 3+ gold stories of 3+ headlines each. The last two lines printed
are, for the whole TSV with the defaults, `aggregator: bcubed precision P recall R` and
`aggregator: pairwise precision P recall R f1 F`.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _ingest import store_and_place  # noqa: E402  (bench/ is on sys.path when run)

from aggregator.store import open_store  # noqa: E402
from aggregator.stories import (  # noqa: E402
    DEFAULT_STORY_POLICY,
    StoryPolicy,
    decide,
    headline_vector,
    story_words,
)
from aggregator.stories.index import WindowIndex  # noqa: E402
from aggregator.types import Entry, FeedConfig  # noqa: E402
from aggregator.urls import canonical_url  # noqa: E402

SHARED_NOTE = (
    "the labeled set is test material beside the checkout (../shared; README: Test material)"
)
DEFAULT_TSV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "stories-dev.tsv"
WINDOW = timedelta(hours=72)  # the baselines' window, the same as the detector's default

# The baselines' thresholds, as the projects they come from use them.
TRIGRAM_MIN_JACCARD = 0.75  # Tiny Tiny RSS: pg_trgm similarity(title, other) >= 0.75
WORDS_MIN_OVERLAP = 0.6  # NewsBlur: share of the shorter title's significant words...
WORDS_MIN_SHARED = 3  # ... and at least this many words in common


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    title: str
    publisher: str
    url: str
    hostname: str
    story_id: str
    published: datetime


def read_rows(path: Path) -> list[Row]:
    """The labeled rows, in timestamp order (ties: by id)."""
    with path.open(encoding="utf-8", newline="") as f:
        records = list(csv.DictReader(f, delimiter="\t"))
    rows = [
        Row(
            id=r["id"],
            title=r["title"],
            publisher=r["publisher"],
            url=r["url"],
            hostname=r["hostname"],
            story_id=r["story_id"],
            published=datetime.fromisoformat(r["published_utc"].replace("Z", "+00:00")),
        )
        for r in records
    ]
    return sorted(rows, key=lambda r: (r.published, _id_key(r.id)))


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


# ---------------------------------------------------------------- metrics


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float
    b3_precision: float
    b3_recall: float


def score(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> Scores:
    """Pairwise and B-cubed scores from the contingency table of two labelings of the rows.

    With no predicted pair at all, pairwise precision is 1.0 (no wrong merge was made).
    """
    cells = Counter(zip(predicted, gold, strict=True))
    pred_sizes = Counter(predicted)
    gold_sizes = Counter(gold)
    together = sum(_pairs(n) for n in cells.values())
    pred_pairs = sum(_pairs(n) for n in pred_sizes.values())
    gold_pairs = sum(_pairs(n) for n in gold_sizes.values())
    precision = together / pred_pairs if pred_pairs else 1.0
    recall = together / gold_pairs if gold_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(predicted)
    # B-cubed: each row's share of its predicted cluster that is its gold story, and back.
    b3_precision = sum(k * k / pred_sizes[p] for (p, _), k in cells.items()) / n if n else 1.0
    b3_recall = sum(k * k / gold_sizes[g] for (_, g), k in cells.items()) / n if n else 1.0
    return Scores(precision, recall, f1, b3_precision, b3_recall)


# ---------------------------------------------------------------- baselines


def _online(
    rows: Sequence[Row],
    features: Callable[[Row], Sequence[Hashable]],
    similarity: Callable[[int, int, int], float | None],
) -> list[int]:
    """Online clustering through an inverted index of features (words, trigrams, keys).

    Each row is compared with the earlier rows within WINDOW that share a feature:
    ``similarity(shared, own_size, other_size)`` gives a score when the rule passes (None when
    it does not); the row joins the cluster of the best-scoring one (ties: the most recent),
    otherwise it starts its own cluster.
    """
    index: dict[Hashable, list[int]] = defaultdict(list)
    sizes: list[int] = []
    clusters: list[int] = []
    for i, row in enumerate(rows):
        own = list(dict.fromkeys(features(row)))
        earliest = row.published - WINDOW
        shared: Counter[int] = Counter()
        for feature in own:
            postings = index[feature]
            # Postings are in timestamp order: walk back until the window's start.
            for j in reversed(postings):
                if rows[j].published < earliest:
                    break
                shared[j] += 1
        best: tuple[float, int] | None = None
        for j, count in shared.items():
            value = similarity(count, len(own), sizes[j])
            if value is not None and (best is None or (value, j) > best):
                best = (value, j)
        clusters.append(clusters[best[1]] if best is not None else i)
        sizes.append(len(own))
        for feature in own:
            index[feature].append(i)
    return clusters


_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalized_title(title: str) -> str:
    """Casefolded, punctuation stripped, whitespace collapsed."""
    text = _PUNCTUATION.sub("", unicodedata.normalize("NFKC", title).casefold())
    return " ".join(text.split())


def exact_title(rows: Sequence[Row]) -> list[int]:
    """(a) The same normalized title."""

    def same(shared: int, own: int, other: int) -> float | None:
        return 1.0 if shared else None

    return _online(rows, lambda r: [normalized_title(r.title)] if r.title.strip() else [], same)


_TRGM_WORD = re.compile(r"[^\W_]+")


def trigrams(title: str) -> set[str]:
    """pg_trgm's trigrams: lowercased alphanumeric words, each padded "  word "."""
    grams: set[str] = set()
    for word in _TRGM_WORD.findall(title.lower()):
        padded = f"  {word} "
        grams.update(padded[k : k + 3] for k in range(len(padded) - 2))
    return grams


def trigram_jaccard(rows: Sequence[Row]) -> list[int]:
    """(b) Character-trigram Jaccard >= 0.75 (Tiny Tiny RSS's rule)."""

    def jaccard(shared: int, own: int, other: int) -> float | None:
        value = shared / (own + other - shared)
        return value if value >= TRIGRAM_MIN_JACCARD else None

    return _online(rows, lambda r: sorted(trigrams(r.title)), jaccard)


def word_overlap(rows: Sequence[Row]) -> list[int]:
    """(c) >= 60% of the shorter title's significant words, >= 3 of them (NewsBlur's rule)."""

    def overlap(shared: int, own: int, other: int) -> float | None:
        value = shared / min(own, other)
        return value if shared >= WORDS_MIN_SHARED and value >= WORDS_MIN_OVERLAP else None

    return _online(rows, lambda r: story_words(r.title), overlap)


# ---------------------------------------------------------------- the detector


def feed_names(rows: Sequence[Row]) -> dict[str, tuple[str, str]]:
    """publisher -> (unique feed name, hostname of its first row)."""
    names: dict[str, tuple[str, str]] = {}
    taken: set[str] = set()
    for row in rows:
        if row.publisher in names:
            continue
        base = " ".join(row.publisher.split()) or row.hostname or "unknown"
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base} ({n})"
        taken.add(name.casefold())
        names[row.publisher] = (name, row.hostname or "unknown.invalid")
    return names


@dataclass(frozen=True, slots=True)
class DetectorRun:
    clusters: list[int]
    rules: list[tuple[str, int]]
    placing_seconds: float  # time spent deciding stories (candidates and decision) alone


def run_detector(
    rows: Sequence[Row], workdir: Path, policy: StoryPolicy = DEFAULT_STORY_POLICY
) -> DetectorRun:
    """Store every row as its publisher's feed would deliver it, and place it in a story."""
    names = feed_names(rows)
    placing = 0.0
    with open_store(workdir / "eval.db") as store:
        states = store.sync_feeds(
            [
                FeedConfig(url=f"https://{host}/feed#{name}", name=name)
                for name, host in names.values()
            ],
            rows[0].published if rows else datetime.now().astimezone(),
        )
        for row in rows:
            name = names[row.publisher][0]
            state = states[name]
            entry = Entry(
                source_id=row.id,
                title=row.title,
                link=row.url,
                canonical_url=canonical_url(row.url),
                published=row.published,
            )
            placing += store_and_place(store, state, entry, row.published, policy)
        conn: sqlite3.Connection = store.db.conn
        story_of = dict(
            conn.execute(
                "SELECT s.source_entry_id, e.story_id FROM sources s "
                "JOIN entries e ON e.id = s.entry_id"
            ).fetchall()
        )
        rules = conn.execute(
            "SELECT coalesce(story_rule, '(none)'), count(*) FROM entries "
            "GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    return DetectorRun([story_of[row.id] for row in rows], rules, placing)


def run_engine(rows: Sequence[Row], policy: StoryPolicy) -> list[int]:
    """The same engine (index and decision) without SQLite, for the threshold search only:
    what the store would write, applied to the index alone."""
    index = WindowIndex(max_entries=len(rows) + 1)
    story: dict[int, int] = {}  # entry -> story, with merges applied
    members: dict[int, list[int]] = {}
    window = int(policy.window.total_seconds())
    for entry, row in enumerate(rows, start=1):
        words = story_words(row.title)
        vector = headline_vector(words)
        moment = int(row.published.timestamp())
        index.make_room(moment - window, moment + window)
        for start, end in index.missing_days(moment - window, moment + window):
            index.load(start, end, (), {})
        found = index.candidates(
            words, moment, moment - window, moment + window, policy.min_words_in_common
        )
        decision = decide(vector, found, policy)
        if decision.story_id is None:
            target = entry
            index.started(target)
            members[target] = []
        else:
            target = decision.story_id
            for other in decision.merge:
                moved = members.pop(other)
                index.merged(other, target, moved)
                members[target].extend(moved)
                for member in moved:
                    story[member] = target
        index.add(entry, moment, words, target, vector)
        members[target].append(entry)
        story[entry] = target
    return [story[entry] for entry in range(1, len(rows) + 1)]


FOLDS = 5
FOLD_SEED = 2014
SEARCH_GRID = {
    "join_similarity": (0.3, 0.35, 0.4, 0.45, 0.5, 0.55),
    "merge_similarity": (0.4, 0.45, 0.5, 0.55, 0.6, 0.7),
}
# What the search asks of a choice on the four folds: the dev-set targets with a margin, then
# as much B-cubed recall as that allows.
SEARCH_MIN_PAIR_PRECISION = 0.975
SEARCH_MIN_B3_PRECISION = 0.97


def folds(rows: Sequence[Row]) -> dict[str, int]:
    """story_id -> fold, by story (a story's headlines are never split), fixed seed."""
    stories = sorted({row.story_id for row in rows})
    random.Random(FOLD_SEED).shuffle(stories)
    return {story: k % FOLDS for k, story in enumerate(stories)}


@dataclass(frozen=True, slots=True)
class Shape:
    """What the largest predicted story and the mixed stories say about chaining."""

    largest: int
    purity: float
    mixed: int  # predicted stories holding 3+ gold stories of 3+ headlines each


def shape(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> Shape:
    by_predicted: dict[Hashable, Counter[Hashable]] = defaultdict(Counter)
    for p, g in zip(predicted, gold, strict=True):
        by_predicted[p][g] += 1
    largest = max(by_predicted.values(), key=lambda c: (sum(c.values()), c.most_common(1)))
    size = sum(largest.values())
    mixed = sum(1 for c in by_predicted.values() if sum(1 for n in c.values() if n >= 3) >= 3)
    return Shape(size, largest.most_common(1)[0][1] / size, mixed)


def search(rows: Sequence[Row]) -> StoryPolicy:
    """The grid point that meets the search's precision bars with the most B-cubed recall on
    these rows (the most precise one when none meets them)."""
    gold = [row.story_id for row in rows]
    best: tuple[tuple[bool, float], StoryPolicy] | None = None
    for join in SEARCH_GRID["join_similarity"]:
        for merge in SEARCH_GRID["merge_similarity"]:
            policy = replace(DEFAULT_STORY_POLICY, join_similarity=join, merge_similarity=merge)
            s = score(run_engine(rows, policy), gold)
            meets = s.precision >= SEARCH_MIN_PAIR_PRECISION and (
                s.b3_precision >= SEARCH_MIN_B3_PRECISION
            )
            key = (meets, s.b3_recall if meets else s.b3_precision)
            if best is None or key > best[0]:
                best = (key, policy)
    assert best is not None
    return best[1]


def fold_report(rows: Sequence[Row], workdir: Path, do_search: bool) -> None:
    """The defaults on each fold (through the real store) and the worst; with `do_search`,
    thresholds chosen on four folds, reported on the fifth."""
    fold_of = folds(rows)
    body = []
    worst: list[list[float]] = []
    for k in range(FOLDS):
        part = [row for row in rows if fold_of[row.story_id] == k]
        gold = [row.story_id for row in part]
        run = run_detector(part, workdir / f"fold{k}", DEFAULT_STORY_POLICY)
        s, sh = score(run.clusters, gold), shape(run.clusters, gold)
        line = [
            str(k + 1),
            str(len(set(gold))),
            str(len(part)),
            *(f"{v:.4f}" for v in (s.precision, s.recall, s.b3_precision, s.b3_recall)),
            f"{sh.purity:.3f}",
            str(sh.mixed),
        ]
        body.append(line)
        worst.append([s.precision, s.recall, s.b3_precision, s.b3_recall, sh.purity, -sh.mixed])
    lowest = [min(column) for column in zip(*worst, strict=True)]
    print(f"shipped defaults by fold ({FOLDS} folds by story, seed {FOLD_SEED}):")
    headers = ["fold", "stories", "rows", "pair P", "pair R", "B3 P", "B3 R", "purity", "mixed"]
    worst_line = ["worst", "", "", *(f"{v:.4f}" for v in lowest[:4]), f"{lowest[4]:.3f}"]
    print(table(headers, [*body, [*worst_line, str(-lowest[5])]]))
    print()
    if not do_search:
        return
    print("thresholds searched on four folds, reported on the fifth:")
    body = []
    for k in range(FOLDS):
        train = [row for row in rows if fold_of[row.story_id] != k]
        test = [row for row in rows if fold_of[row.story_id] == k]
        chosen = search(train)
        trained = score(run_engine(train, chosen), [row.story_id for row in train])
        gold = [row.story_id for row in test]
        run = run_detector(test, workdir / f"search{k}", chosen)
        s, sh = score(run.clusters, gold), shape(run.clusters, gold)
        body.append(
            [
                str(k + 1),
                f"{chosen.join_similarity:g} / {chosen.merge_similarity:g}",
                f"{trained.b3_precision:.4f}",
                f"{trained.b3_recall:.4f}",
                *(f"{v:.4f}" for v in (s.precision, s.recall, s.b3_precision, s.b3_recall)),
                f"{sh.purity:.3f}",
            ]
        )
    print(
        table(
            [
                "fold",
                "join / merge",
                "4f B3 P",
                "4f B3 R",
                "pair P",
                "pair R",
                "B3 P",
                "B3 R",
                "purity",
            ],
            body,
        )
    )
    print()


# ---------------------------------------------------------------- report


def policy_fields() -> dict[str, object]:
    """The detector's knobs in force, as printed with the numbers they gave."""
    values: dict[str, object] = {}
    for field in fields(DEFAULT_STORY_POLICY):
        value = getattr(DEFAULT_STORY_POLICY, field.name)
        if isinstance(value, timedelta):
            value = f"{value.total_seconds() / 3600:g}h"
        values[field.name] = value
    return values


def table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(line[k])) for line in [headers, *body]) for k in range(len(headers))]
    lines = [
        "  ".join(
            str(cell).ljust(w) if k == 0 else str(cell).rjust(w)
            for k, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [headers, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tsv", nargs="?", type=Path, default=DEFAULT_TSV)
    parser.add_argument(
        "--search", action="store_true", help="choose thresholds on 4 folds, report on the 5th"
    )
    args = parser.parse_args(argv)
    if not args.tsv.is_file():
        print(f"{args.tsv} not found: {SHARED_NOTE}", file=sys.stderr)
        return 2
    rows = read_rows(args.tsv)
    gold = [row.story_id for row in rows]
    pairs = sum(_pairs(n) for n in Counter(gold).values())
    print(
        f"{args.tsv.name}: {len(rows)} headlines, {len(set(gold))} stories, "
        f"{len({r.publisher for r in rows})} publishers, {pairs} same-story pairs"
    )

    results: dict[str, tuple[Scores, float]] = {}
    baselines: Mapping[str, Callable[[Sequence[Row]], list[int]]] = {
        "exact title": exact_title,
        "trigram jaccard>=0.75": trigram_jaccard,
        "word overlap>=0.6,3": word_overlap,
    }
    for label, method in baselines.items():
        started = time.perf_counter()
        clusters = method(rows)
        results[label] = (score(clusters, gold), time.perf_counter() - started)
    with tempfile.TemporaryDirectory(prefix="stories-eval-") as tmp:
        if len({row.story_id for row in rows}) >= FOLDS:
            fold_report(rows, Path(tmp), args.search)
        started = time.perf_counter()
        run = run_detector(rows, Path(tmp))
        results["aggregator"] = (score(run.clusters, gold), time.perf_counter() - started)
    whole = shape(run.clusters, gold)

    body = [
        [
            label,
            *(f"{v:.4f}" for v in (s.precision, s.recall, s.f1, s.b3_precision, s.b3_recall)),
            f"{seconds:.2f}",
        ]
        for label, (s, seconds) in results.items()
    ]
    print("policy: " + ", ".join(f"{k} {v}" for k, v in policy_fields().items()))
    print()
    print(table(["method", "pair P", "pair R", "pair F1", "B3 P", "B3 R", "seconds"], body))
    print()
    print(
        f"aggregator seconds: store + placement, of which deciding stories "
        f"{run.placing_seconds:.2f} s ({run.placing_seconds / max(len(rows), 1) * 1e6:.0f} µs/row)"
    )
    print("aggregator entries by the rule that placed them:")
    print(table(["story_rule", "entries"], [[rule, str(n)] for rule, n in run.rules]))
    print(f"aggregator stories: {len(set(run.clusters))} predicted for {len(set(gold))} gold")
    print(
        f"aggregator largest story: {whole.largest} headlines, purity {whole.purity:.3f}; "
        f"stories mixing 3+ gold stories: {whole.mixed}"
    )
    ours = results["aggregator"][0]
    print()
    print(f"aggregator: bcubed precision {ours.b3_precision:.4f} recall {ours.b3_recall:.4f}")
    print(
        f"aggregator: pairwise precision {ours.precision:.4f} recall {ours.recall:.4f} "
        f"f1 {ours.f1:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
