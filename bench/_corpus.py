"""A deterministic synthetic feed corpus for bench/feeds_bench.py: N feeds x M entries.

Half the feeds are RSS 2.0, half Atom 1.0. Entries carry 6-14 word headlines and 300-3,000
bytes of HTML (paragraphs, absolute and relative links, images, a few entities), dates, guids or
ids, authors and categories. About 20% of stories are republished by 2-4 feeds, each copy with
its own id and URL and a slightly reworded headline. The mutated version changes ~10% of the
feeds: 5 new entries at the top (the 5 oldest fall off) and 2 edited entries (title and content).

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
SPAN_HOURS = 168  # entries are published over the week before BASE_TIME
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


@dataclass(frozen=True, slots=True)
class Story:
    words: tuple[str, ...]  # the headline, as words
    published: datetime
    body_seed: int


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


@dataclass(frozen=True, slots=True)
class FeedModel:
    index: int
    kind: str  # "rss" or "atom"
    host: str
    items: tuple[Item, ...]  # newest first

    @property
    def path(self) -> str:
        return f"feeds/{self.index:05d}.xml"


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
        self.base = self._assign(rng)
        self.mutated_indexes = sorted(
            rng.sample(range(feeds), max(1, round(feeds * MUTATED_SHARE)))
        )
        self.mutated = list(self.base)
        for index in self.mutated_indexes:
            self.mutated[index] = self._mutate(self.base[index], random.Random(seed + 7 * index))

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
        return Story(self._headline(rng), published, rng.getrandbits(32))

    def _assign(self, rng: random.Random) -> list[FeedModel]:
        """Fill every feed's M slots with stories; ~20% of stories go to 2-4 feeds."""
        capacity = [self.entry_count] * self.feed_count
        open_feeds = list(range(self.feed_count))
        slots: list[list[tuple[Story, int]]] = [[] for _ in range(self.feed_count)]
        span = SPAN_HOURS * 3600
        self.stories = self.republished = 0
        while open_feeds:
            copies = rng.randint(2, 4) if rng.random() < REPUBLISHED_SHARE else 1
            copies = min(copies, len(open_feeds))
            self.stories += 1
            self.republished += copies > 1
            moment = BASE_TIME - timedelta(seconds=5 * 3600 + rng.randrange(span))
            story = self._story(rng, moment)
            for copy, feed in enumerate(rng.sample(open_feeds, copies)):
                slots[feed].append((story, copy))
                capacity[feed] -= 1
            open_feeds = [f for f in open_feeds if capacity[f] > 0]
        feeds = []
        for index, stories in enumerate(slots):
            kind = "rss" if index % 2 == 0 else "atom"
            host = f"outlet{index}.example"
            items = [
                self._item(index, kind, host, n, story, copy, rng)
                for n, (story, copy) in enumerate(stories)
            ]
            items.sort(key=lambda item: item.published, reverse=True)
            feeds.append(FeedModel(index, kind, host, tuple(items)))
        return feeds

    def _item(
        self, feed: int, kind: str, host: str, n: int, story: Story, copy: int, rng: random.Random
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
        published = story.published + timedelta(minutes=copy * rng.randint(5, 300))
        published = min(published, BASE_TIME)
        slug = "-".join(words[:5]).lower().strip(":")
        link = f"https://{host}/news/{published:%Y/%m/%d}/{slug}-{feed}-{n}"
        if kind == "atom":
            uid = f"tag:{host},2026:entry-{n}"
        else:
            uid = link if n % 3 == 0 else f"{host}-guid-{n:06d}"
        return Item(uid, link, title, published, published, story.body_seed + copy, n)

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
            new.append(self._item(feed.index, feed.kind, feed.host, n, story, 0, rng))
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
                f"<pubDate>{_rfc822(item.published)}</pubDate>\n"
                f"<dc:creator>Reporter {n % 7}</dc:creator>\n"
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
                f"<published>{_rfc3339(item.published)}</published>\n"
                f"<updated>{_rfc3339(item.updated)}</updated>\n"
                f"<author><name>Reporter {n % 9}</name></author>\n"
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


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
