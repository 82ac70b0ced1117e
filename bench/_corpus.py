"""A deterministic synthetic feed corpus for bench/feeds_bench.py: N feeds x M entries.

Half the feeds are RSS 2.0, half Atom 1.0. Entries carry 6-14 word headlines and 300-3,000
bytes of HTML (paragraphs, absolute and relative links, images, a few entities), dates, guids or
ids, authors and categories. About 20% of stories are republished by 2-4 feeds, each copy with
its own id and URL and a slightly reworded headline. The mutated version changes ~10% of the
feeds: 5 new entries at the top (the 5 oldest fall off) and 2 edited entries (title and content).

Time has the shape of real feeds, measured by bench/corpus_shape.py on ../shared/corpus: each
feed's entries reach back over a span drawn from the real feeds' spans (SPAN_DAYS: a percentile
drawn uniformly, the empirical quantile function interpolated), from its newest entry, within
an hour of BASE_TIME, to its oldest at the span's start; the others fall in between as real
feeds' do (AGE_IN_SPAN: more of them near the newest end). The copies of a republished story
are published within hours of each other: a story takes free times of different feeds near
each other, whatever their spans. UNDATED_SHARE of the entries carry no date at all. The feeds
are listed (feeds.yaml, URLs, paths) in a seeded random order.

Everything is derived from the seed, so the same arguments give the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from stories_cost import Zipf, headline, vocabulary  # bench/ is on sys.path when run

SEED = 20261126
BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # the newest base entry; mutations after

# The shape of real feeds: the 853 files of ../shared/corpus, measured over the 128 documents
# with 10+ dated entries (feedparser 6.0.14). Re-measure with
#     python bench/corpus_shape.py --python
# which prints this block; tests/test_bench_corpus.py checks it against the corpus when the
# corpus is there. Percentiles 0, 5, 10, ..., 100 (SHAPE_PERCENTILES).
SHAPE_PERCENTILES = tuple(range(0, 101, 5))
SPAN_DAYS = (  # oldest to newest entry
    0.00, 0.08, 0.26, 0.37, 0.51, 0.81, 1.05, 1.72, 3.67, 7.32, 12.01, 18.34, 27.28, 60.15, 81.18,
    103.67, 183.98, 231.71, 329.37, 1180.46, 4069.46,
)  # fmt: skip
AGE_IN_SPAN = (  # the other entries: 0 newest, 1 oldest
    0.000, 0.003, 0.017, 0.032, 0.060, 0.097, 0.151, 0.204, 0.258, 0.313, 0.363, 0.420, 0.482,
    0.544, 0.625, 0.694, 0.765, 0.843, 0.907, 0.968, 1.000,
)  # fmt: skip
ENTRIES_PER_FEED = (  # entries listed, dated or not (not used here: --entries sets it)
    10, 10, 10, 10, 10, 13, 13, 15, 15, 17, 20, 20, 24, 25, 33, 40, 49, 50, 63, 100, 140,
)  # fmt: skip
TITLE_WORDS = (  # words of a title (not used here: headlines follow stories_cost's model)
    1, 2, 4, 5, 6, 6, 7, 8, 8, 9, 9, 10, 10, 10, 11, 12, 12, 13, 14, 16, 40,
)  # fmt: skip
UNDATED_SHARE = 0.0041  # entries with neither date (16 of 3869)

NEWEST_WITHIN = 3600  # seconds: each feed's newest base entry is this close to BASE_TIME
COPY_WITHIN = 4 * 3600  # seconds: a republished story's copies, from the first one picked
REPUBLISHED_SHARE = 0.2  # stories told by 2-4 feeds
MUTATED_SHARE = 0.1
NEW_ENTRIES = 5
EDITED_ENTRIES = 2

_STOP = "the a of to in and for on with as at by from".split()  # story_words drops these
_BODY_COMMON = (
    "the a of to in and for on with after over as at by from new more than about into "
    "minister government city council police court report plan deal talks year week"
).split()
_ENTITIES = ["&amp;", "&mdash;", "&#8217;", "&nbsp;", "&hellip;", "&laquo;", "&raquo;"]
_PREFIXES = ["Update:", "Report:", "Breaking:", "Analysis:", "Live:"]


def quantile_at(table: tuple[float, ...], u: float) -> float:
    """The empirical quantile function: ``table`` holds evenly spaced percentiles, u in [0, 1]."""
    position = u * (len(table) - 1)
    low = min(int(position), len(table) - 2)
    return table[low] + (table[low + 1] - table[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Story:
    words: tuple[str, ...]  # the headline, as words
    published: datetime  # its first copy's
    body_seed: int
    number: int  # its own number in the corpus: the copies of one story share it


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of one feed."""

    uid: str  # guid / atom:id
    link: str
    title: str
    published: datetime
    updated: datetime
    body_seed: int
    number: int  # the item's own number in its feed: its author, categories... never move
    edited: bool = False
    dated: bool = True  # False: rendered with no date at all (published still orders the feed)
    story: int = 0  # the story's number: a republished story's copies share it


@dataclass(frozen=True, slots=True)
class FeedModel:
    index: int
    kind: str  # "rss" or "atom"
    host: str
    items: tuple[Item, ...]  # newest first
    span: timedelta  # drawn from SPAN_DAYS: the base entries' oldest to newest
    slot: int  # the feed's place in the (shuffled) poll order

    @property
    def path(self) -> str:
        # Named by its place in the poll order, so that a tool polling in URL order (reader
        # sorts its feeds by URL) polls in the same shuffled order as feeds.yaml lists them.
        return f"feeds/{self.slot:05d}.xml"


class Corpus:
    """The model of the corpus (base and mutated) and its rendering to XML."""

    def __init__(self, feeds: int, entries: int, seed: int = SEED) -> None:
        self.feed_count = feeds
        self.entry_count = entries
        self.seed = seed
        rng = random.Random(seed)
        # Headline words: the project's own model (bench/stories_cost.py), real words from the
        # labeled dev set by frequency, then made-up ones, drawn Zipf-Mandelbrot.
        words = vocabulary(random.Random(seed))
        self.zipf = Zipf(rng, words, pool=feeds * entries * 8)
        self.vocabulary = words[:5000]
        self.story_numbers = 0
        self.base = self._assign(rng)
        # The feeds are polled in a seeded random order, not in the order they were made.
        order = list(range(feeds))
        random.Random(seed ^ 0x0DE5).shuffle(order)
        for slot, index in enumerate(order):
            self.base[index] = replace(self.base[index], slot=slot)
        self.mutated_indexes = sorted(
            rng.sample(range(feeds), max(1, round(feeds * MUTATED_SHARE)))
        )
        self.mutated = list(self.base)
        for index in self.mutated_indexes:
            self.mutated[index] = self._mutate(self.base[index], random.Random(seed + 7 * index))

    def in_poll_order(self) -> list[FeedModel]:
        """The base feeds as the benchmark configures and polls them: a seeded random order,
        which is also their paths' (and so their URLs') order."""
        return sorted(self.base, key=lambda feed: feed.slot)

    # ------------------------------------------------------------ the model

    def _headline(self, rng: random.Random) -> tuple[str, ...]:
        """6-14 words: 5-9 significant ones and a few stop words."""
        words = list(headline(self.zipf, rng))
        if rng.random() < 0.3:
            words.append(self.zipf.draw())
        target = min(14, len(words) + rng.randint(1, 4))
        while len(words) < target:
            words.insert(rng.randrange(1, len(words)), rng.choice(_STOP))
        return tuple(words)

    def _story(self, rng: random.Random, published: datetime) -> Story:
        self.story_numbers += 1
        return Story(self._headline(rng), published, rng.getrandbits(32), self.story_numbers)

    def _assign(self, rng: random.Random) -> list[FeedModel]:
        """Fill every feed's M entries with stories; ~20% of stories go to 2-4 feeds.

        First each feed's timeline: a span drawn from SPAN_DAYS, its M publication times in it
        (the newest within NEWEST_WITHIN of BASE_TIME, the oldest at the span's start, the
        others drawn from AGE_IN_SPAN: real feeds publish more of them near the newest end).
        Then stories fill the times, each from a random one still free; a republished story
        takes, for its other copies, the free times of other feeds nearest to it, within
        COPY_WITHIN: fewer copies where fewer feeds publish that close, none at all where no
        other feed does (the old end of the longest spans; a later story is republished in
        its place). So every feed keeps its timeline, and the feeds dense at that moment
        (short spans, near BASE_TIME) carry most of the copies.
        """
        spans = [
            round(quantile_at(SPAN_DAYS, rng.random()) * 86400) for _ in range(self.feed_count)
        ]
        ages = []  # (seconds before BASE_TIME, feed): every entry's time
        for feed, span in enumerate(spans):
            ages.append((rng.randint(0, min(span, NEWEST_WITHIN)), feed))
            if self.entry_count > 1:
                ages.append((span, feed))
            ages.extend(
                (round(span * quantile_at(AGE_IN_SPAN, rng.random())), feed)
                for _ in range(self.entry_count - 2)
            )
        ages.sort()
        timeline = _Timeline(ages)
        slots: list[list[tuple[Story, int, int]]] = [[] for _ in range(self.feed_count)]
        self.stories = self.republished = 0
        owed = 0  # republished stories that found no copies: the next stories make up for them
        while timeline.free:
            first = timeline.take(rng.choice(timeline.free))
            taken = [first]
            wanted = rng.random() < REPUBLISHED_SHARE
            if wanted or owed:
                taken += timeline.take_near(first, rng.randint(1, 3), COPY_WITHIN)
                if len(taken) > 1 and not wanted:
                    owed -= 1
                elif len(taken) == 1 and wanted:
                    owed += 1
            taken.sort(reverse=True)  # oldest first: copy 0, the original, was published first
            story = self._story(rng, BASE_TIME - timedelta(seconds=ages[taken[0]][0]))
            self.stories += 1
            self.republished += len(taken) > 1
            for copy, k in enumerate(taken):
                age, feed = ages[k]
                slots[feed].append((story, copy, age))
        models = []
        for index, stories in enumerate(slots):
            kind = "rss" if index % 2 == 0 else "atom"
            host = f"outlet{index}.example"
            items = [
                self._item(
                    index, kind, host, n, story, copy, BASE_TIME - timedelta(seconds=age), rng
                )
                for n, (story, copy, age) in enumerate(stories)
            ]
            items.sort(key=lambda item: item.published, reverse=True)
            span = timedelta(seconds=spans[index])
            models.append(FeedModel(index, kind, host, tuple(items), span, index))
        return models

    def _item(
        self,
        feed: int,
        kind: str,
        host: str,
        n: int,
        story: Story,
        copy: int,
        published: datetime,
        rng: random.Random,
    ) -> Item:
        words = list(story.words)
        if copy:  # a republished copy: reworded slightly, a little later, its own id and URL
            if rng.random() < 0.6:
                words[rng.randrange(len(words))] = self.zipf.draw()
            if rng.random() < 0.3:
                k = rng.randrange(len(words) - 1)
                words[k], words[k + 1] = words[k + 1], words[k]
            if rng.random() < 0.4:
                words.insert(0, rng.choice(_PREFIXES))
        title = " ".join(words)
        title = title[0].upper() + title[1:]
        dated = rng.random() >= UNDATED_SHARE
        slug = "-".join(words[:5]).lower().strip(":")
        link = f"https://{host}/news/{published:%Y/%m/%d}/{slug}-{feed}-{n}"
        if kind == "atom":
            uid = f"tag:{host},2026:entry-{n}"
        else:
            uid = link if n % 3 == 0 else f"{host}-guid-{n:06d}"
        seed = story.body_seed + copy
        return Item(
            uid, link, title, published, published, seed, n, dated=dated, story=story.number
        )

    def _mutate(self, feed: FeedModel, rng: random.Random) -> FeedModel:
        """5 new entries on top (the oldest 5 fall off), 2 entries edited."""
        items = list(feed.items)
        edited_positions = rng.sample(range(min(len(items), 20)), min(EDITED_ENTRIES, len(items)))
        for position in edited_positions:
            item = items[position]
            items[position] = replace(
                item,
                title=item.title + " (updated)",
                updated=item.updated + timedelta(hours=12),
                body_seed=item.body_seed ^ 0x5A5A,
                edited=True,
            )
        new = []
        for k in range(NEW_ENTRIES):
            n = self.entry_count + k
            published = BASE_TIME + timedelta(hours=1, minutes=10 * (NEW_ENTRIES - k))
            story = self._story(rng, published)
            new.append(self._item(feed.index, feed.kind, feed.host, n, story, 0, published, rng))
        kept = items[: max(0, len(items) - NEW_ENTRIES)]
        return replace(feed, items=tuple(new + kept))

    # ------------------------------------------------------------ rendering

    def _html(self, item: Item, host: str) -> str:
        """300-3,000 bytes of HTML: paragraphs, links (some relative), an image, entities."""
        rng = random.Random(item.body_seed)
        target = rng.randint(300, 3000)
        parts: list[str] = []
        size = 0
        while size < target:
            sentence = []
            for _ in range(rng.randint(8, 20)):
                roll = rng.random()
                word = rng.choice(self.vocabulary if roll < 0.6 else _BODY_COMMON)
                if roll > 0.97:
                    word = f'<a href="/topics/{word}">{word}</a>'
                elif roll > 0.95:
                    word = f'<a href="https://www.{word}.example/{rng.randrange(999)}">{word}</a>'
                elif roll > 0.93:
                    word = f"<strong>{word}</strong>"
                elif roll > 0.91:
                    word = rng.choice(_ENTITIES)
                sentence.append(word)
            text = " ".join(sentence)
            paragraph = f"<p>{text[0].upper()}{text[1:]}.</p>"
            if rng.random() < 0.12:
                paragraph += (
                    f'<p><img src="/img/{rng.randrange(10**6)}.jpg" alt="photo" width="640" '
                    f'height="360"></p>'
                )
            parts.append(paragraph)
            size += len(paragraph)
        if item.edited:
            parts.insert(0, "<p><em>Correction:</em> an earlier version misstated a figure.</p>")
        return "".join(parts)

    def render(self, feed: FeedModel) -> bytes:
        return (self._rss(feed) if feed.kind == "rss" else self._atom(feed)).encode("utf-8")

    def _rss(self, feed: FeedModel) -> str:
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
            f"<title>Outlet {feed.index} News</title>\n"
            f"<link>https://{feed.host}/</link>\n"
            f'<atom:link href="https://{feed.host}/rss.xml" rel="self" '
            'type="application/rss+xml"/>\n'
            f"<description>Latest stories from outlet {feed.index}</description>\n"
            "<language>en-gb</language>\n"
            f"<lastBuildDate>{_rfc822(feed.items[0].updated)}</lastBuildDate>\n<ttl>15</ttl>\n"
        ]
        for item in feed.items:
            n = item.number
            permalink = item.uid == item.link
            body = self._html(item, feed.host)
            description = f"<![CDATA[{body}]]>" if n % 4 == 0 else escape(body)
            out.append(
                "<item>\n"
                f"<title>{escape(item.title)}</title>\n"
                f"<link>{escape(item.link)}</link>\n"
                f'<guid isPermaLink="{str(permalink).lower()}">{escape(item.uid)}</guid>\n'
                + (f"<pubDate>{_rfc822(item.published)}</pubDate>\n" if item.dated else "")
                + f"<dc:creator>Reporter {n % 7}</dc:creator>\n"
                f"<category>section-{n % 5}</category><category>topic-{n % 11}</category>\n"
                f"<description>{description}</description>\n"
                "</item>\n"
            )
        out.append("</channel>\n</rss>\n")
        return "".join(out)

    def _atom(self, feed: FeedModel) -> str:
        out = [
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
            f"<id>tag:{feed.host},2026:feed</id>\n"
            f"<title>Outlet {feed.index} Wire</title>\n"
            f"<updated>{_rfc3339(max(i.updated for i in feed.items))}</updated>\n"
            f'<link rel="alternate" href="https://{feed.host}/"/>\n'
            f'<link rel="self" href="https://{feed.host}/atom.xml"/>\n'
            f"<author><name>Outlet {feed.index} desk</name></author>\n"
        ]
        for item in feed.items:
            n = item.number
            body = self._html(item, feed.host)
            first_sentence = body.split("</p>", 1)[0].removeprefix("<p>")
            out.append(
                "<entry>\n"
                f"<id>{escape(item.uid)}</id>\n"
                f'<title type="text">{escape(item.title)}</title>\n'
                f'<link rel="alternate" type="text/html" href="{escape(item.link)}"/>\n'
                + (
                    f"<published>{_rfc3339(item.published)}</published>\n"
                    f"<updated>{_rfc3339(item.updated)}</updated>\n"
                    if item.dated
                    else ""
                )
                + f"<author><name>Reporter {n % 9}</name></author>\n"
                f'<category term="section-{n % 5}"/>\n'
                + (
                    f'<summary type="html">{escape(first_sentence)}</summary>\n'
                    if n % 2 == 0
                    else ""
                )
                + f'<content type="html" xml:base="https://{feed.host}/news/">'
                f"{escape(body)}</content>\n"
                "</entry>\n"
            )
        out.append("</feed>\n")
        return "".join(out)

    def write(self, root: Path) -> dict[str, int]:
        """Write base/ and mutated/ (only the mutated feeds) under ``root``; returns sizes."""
        total = 0
        for feed in self.base:
            path = root / "base" / feed.path
            path.parent.mkdir(parents=True, exist_ok=True)
            body = self.render(feed)
            total += len(body)
            path.write_bytes(body)
        for index in self.mutated_indexes:
            path = root / "mutated" / self.mutated[index].path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.render(self.mutated[index]))
        return {"bytes": total, "files": len(self.base), "mutated": len(self.mutated_indexes)}


class _Timeline:
    """Every entry's time, sorted, and which are still free: take one, or the free ones of
    other feeds nearest to one (union-find pointers skip the taken ones)."""

    def __init__(self, ages: list[tuple[int, int]]) -> None:
        self.ages = ages
        self.free = list(range(len(ages)))  # in any order; ``where`` finds one in it
        self.where = list(range(len(ages)))
        self.right = list(range(len(ages) + 1))  # k, or past it when taken (len: none)
        self.left = list(range(len(ages) + 1))  # shifted by one: k at left[k + 1]; 0: none

    def _find(self, pointers: list[int], k: int) -> int:
        root = k
        while pointers[root] != root:
            root = pointers[root]
        while pointers[k] != root:
            pointers[k], k = root, pointers[k]
        return root

    def _next_free(self, k: int) -> int | None:  # the first free index >= k
        found = self._find(self.right, k)
        return found if found < len(self.ages) else None

    def _previous_free(self, k: int) -> int | None:  # the last free index <= k
        found = self._find(self.left, k + 1) - 1
        return found if found >= 0 else None

    def take(self, k: int) -> int:
        last = self.free.pop()
        if last != k:
            self.free[self.where[k]] = last
            self.where[last] = self.where[k]
        self.right[k] = k + 1
        self.left[k + 1] = k
        return k

    def take_near(self, k: int, wanted: int, within: int) -> list[int]:
        """Up to ``wanted`` free entries of other feeds (one each), nearest in time to k."""
        age, feed = self.ages[k]
        feeds = {feed}
        found: list[int] = []
        later, earlier = self._previous_free(k - 1), self._next_free(k + 1)
        while len(found) < wanted:
            candidates = [c for c in (later, earlier) if c is not None]
            if not candidates:
                break
            nearest = min(candidates, key=lambda c: abs(self.ages[c][0] - age))
            if abs(self.ages[nearest][0] - age) > within:
                break
            if nearest == later:
                later = self._previous_free(nearest - 1)
            else:
                earlier = self._next_free(nearest + 1)
            if self.ages[nearest][1] not in feeds:
                feeds.add(self.ages[nearest][1])
                found.append(nearest)
        for c in found:
            self.take(c)
        return found


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
