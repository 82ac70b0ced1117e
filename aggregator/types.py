"""Frozen records passed between the pipeline's stages: the pipeline's contract.

fetch -> FetchResult; parse -> ParsedFeed of Entry; store -> FeedState / OutputEntry;
render takes an OutputFeed. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

AUTO: Literal["auto"] = "auto"  # an interval that follows the feed's publishing rate
Interval = timedelta | Literal["auto"]

# ---------------------------------------------------------------- configuration

# What a rule's regular expression may look at: the entry's fields as stored.
RULE_FIELDS = ("title", "summary", "content", "author", "link", "tag")
OLDER_THAN = "older_than"


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of a keep or block rule: a regular expression searched for in one field
    (`RULE_FIELDS`), or an age (`older_than`: published longer ago than this)."""

    field: str  # one of RULE_FIELDS, or OLDER_THAN
    pattern: str | None = None  # the regular expression, as written (`regex` syntax)
    older_than: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    """`rules:` of feeds.yaml, top-level or a feed's: an entry is shown when no `block`
    condition matches and, if there are `keep` conditions, one of them does."""

    block: tuple[Condition, ...] = ()
    keep: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One feed as configured in feeds.yaml."""

    url: str  # absolute http(s) or file:// URL (relative paths already resolved)
    name: str  # unique, stable key of the feed (defaults to a slug of the URL)
    title: str | None = None  # overrides the title the feed gives itself
    tags: tuple[str, ...] = ()
    interval: Interval | None = None  # None: use defaults.interval
    enabled: bool = True
    prefer: bool = False  # its copy represents a story it shares with other outlets
    rules: Rules = Rules()  # its own, besides the top-level ones


@dataclass(frozen=True, slots=True)
class Defaults:
    """Settings every feed inherits unless it overrides them."""

    interval: Interval = AUTO
    min_interval: timedelta = timedelta(minutes=5)  # the floor no hint or interval goes below
    timeout: float = 30.0  # seconds: read timeout, and the whole-body deadline is 2x this
    connect_timeout: float = 10.0
    parse_timeout: float = 10.0  # seconds one parse may take in a worker process (issue 13)
    max_body_bytes: int = 10 * 1024 * 1024
    workers: int = 8  # concurrent fetches, all hosts together
    per_host: int = 1  # concurrent fetches to one host
    user_agent: str | None = None  # None: aggregator/<version> (+project URL)
    # Redirects (and OPML imports) to loopback, link-local, private or unspecified addresses
    # are refused unless this is set; a URL in feeds.yaml itself is always allowed.
    allow_private_addresses: bool = False


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """Where and how the merged feed is written."""

    dir: Path
    title: str = "Aggregated news"
    link: str | None = None  # the human-readable page of the merged feed
    id: str = "tag:aggregator.invalid,2026:merged"  # permanent atom:id, never derived from URLs
    base_url: str | None = None  # public URL of `dir`, for rel="self" links
    max_entries: int = 200
    websub_hub: str | None = None  # announce changed feeds to this WebSub hub (needs base_url)
    group_stories: bool = True  # one entry per story, listing the other outlets
    template: Path | None = None  # a Jinja2 template for index.html instead of the built-in one
    keep_tracking: bool = False  # publish links with their utm_*, fbclid... parameters


@dataclass(frozen=True, slots=True)
class Retention:
    """How long entries are kept; None keeps everything."""

    days: int | None = None  # delete entries published longer ago than this
    max_entries_per_feed: int | None = None  # keep each feed's newest N entries


@dataclass(frozen=True, slots=True)
class Selection:
    """Which entries an extra output shows: every condition given must hold.

    Empty tuples and None mean "no condition". Built by config (names and the search already
    checked), read by the store's query (`Store.selected_entries`).
    """

    max_entries: int  # items shown, newest first
    tags: tuple[str, ...] = ()  # a feed carrying the entry has one of these tags (feeds.yaml)
    feeds: tuple[str, ...] = ()  # a feed carrying the entry is one of these (by name)
    search: str | None = None  # an FTS5 query over entries_fts (title, summary, content)
    min_outlets: int = 1  # the story (or the item, ungrouped) is told by this many feeds
    since: timedelta | None = None  # published within this long before the build


@dataclass(frozen=True, slots=True)
class ExtraOutput:
    """One of `outputs:`: another merged feed, written to ``output.dir / name``."""

    name: str  # a folder name: lowercase letters, digits, '-' and '_'
    title: str
    id: str  # permanent atom:id (default: derived from output.id and the name)
    selection: Selection


@dataclass(frozen=True, slots=True)
class Config:
    """A whole validated feeds.yaml."""

    path: Path
    database: Path
    output: OutputConfig
    defaults: Defaults
    feeds: tuple[FeedConfig, ...]
    rules: Rules = Rules()  # applied to every feed
    retention: Retention = Retention()
    outputs: tuple[ExtraOutput, ...] = ()  # extra merged feeds, each in a folder of output.dir


# ---------------------------------------------------------------- fetch


@dataclass(frozen=True, slots=True)
class FeedHints:
    """What the document itself says about polling it (RSS ttl, sy:*, skipHours/skipDays)."""

    ttl: timedelta | None = None  # RSS <ttl>, minutes in the document
    update_period: timedelta | None = None  # sy:updatePeriod divided by sy:updateFrequency
    skip_hours: frozenset[int] = frozenset()  # hours 0-23, GMT, not to poll in
    skip_days: frozenset[int] = frozenset()  # 0 = Monday ... 6 = Sunday


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers of a feed between polls."""

    feed_id: int
    name: str
    url: str  # the URL to fetch: where a permanent redirect moved the feed, else as configured
    etag: str | None = None  # exactly as received
    last_modified: str | None = None  # exactly as received
    source_id: str = ""  # permanent id of the feed for atom:source (minted once)
    error_count: int = 0  # consecutive failed polls
    interval: timedelta | None = None  # the interval in force after the last poll
    hints: FeedHints = FeedHints()  # what the last parsed document said about polling it
    next_due: datetime | None = None
    disabled_reason: str | None = None  # e.g. "410 Gone": not polled until the config changes


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One HTTP exchange. ``body`` is None for a 304 Not Modified."""

    status: int
    url: str  # the final URL, after redirects
    headers: Mapping[str, str]  # case-insensitive mapping of the final response's headers
    body: bytes | None
    redirected_permanently: bool = False  # every hop was 301/308
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# ---------------------------------------------------------------- parse


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of one feed, normalized: plain-text title, sanitized HTML, absolute URLs."""

    source_id: str  # unique within its document: guid/id, else link, else hash of title+content
    title: str  # plain text, whitespace collapsed ("" if none)
    link: str | None = None  # absolute; published as is
    canonical_url: str | None = None  # dedup key only, never published
    summary: str | None = None  # sanitized HTML
    content: str | None = None  # sanitized HTML
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    published: datetime | None = None  # UTC; None when the feed gave no usable date
    updated: datetime | None = None  # UTC; None when the feed gave no usable date
    date_clamped: bool = False  # a date in the future was clamped to the fetch time


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed document, its metadata and entries, normalized."""

    format: str  # e.g. "rss20", "atom10", "json11"
    title: str | None
    link: str | None  # the site (alternate) link, absolute
    feed_id: str | None  # atom:id / JSON Feed feed_url when the source gives one
    updated: datetime | None
    entries: tuple[Entry, ...]
    warning: str | None = None  # why the document was not well formed, or what was cut to size
    hints: FeedHints = FeedHints()
    # Worked out for the writer where the feed was parsed (aggregator.prepare): each entry's
    # fingerprint by source id, each headline's story words and weighted word vector by title.
    # Empty: the writer does it.
    fingerprints: Mapping[str, str] = field(default_factory=dict, compare=False)
    headline_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    headline_vectors: Mapping[str, Mapping[str, float]] = field(default_factory=dict, compare=False)


# ---------------------------------------------------------------- poll outcome


class PollStatus(StrEnum):
    UPDATED = "updated"  # a 200 that was parsed and stored (even with nothing new)
    NOT_MODIFIED = "not-modified"  # a 304
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a feed is next due and why; written with the poll's outcome."""

    due: datetime | None  # None: never (gone)
    interval: timedelta  # the interval in force, before jitter
    reason: str  # "auto", "config", "max-age", "retry-after", "backoff", ...


@dataclass(frozen=True, slots=True)
class PollResult:
    """What happened to one feed in one poll: an update, "not modified", or an error."""

    feed_name: str
    status: PollStatus
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    error: str | None = None
    duration: float = 0.0
    url: str | None = None  # final URL
    next_due: datetime | None = None
    interval_reason: str | None = None


# ---------------------------------------------------------------- stories


@dataclass(frozen=True, slots=True)
class StoryCandidate:
    """A story a new headline may tell: its centroid, and what the headline shares with it."""

    story_id: int
    members: int
    centroid: Mapping[str, float]  # word -> summed weight over the members' unit vectors
    norm: float  # the centroid's length
    shared: int  # the headline's words found in the centroid
    terms: int  # ... counting a run of adjacent ones once ("kim jong un" is one name)
    same_title: bool = False  # a member has exactly the headline's significant words


@dataclass(frozen=True, slots=True)
class StoryDecision:
    """Where the new entry goes and why."""

    story_id: int | None  # None: it starts a new story
    merge: tuple[int, ...] = ()  # other stories, similar as wholes, folded into story_id
    score: float = 0.0  # cosine with the story's centroid (1.0 for the same title)
    rule: str = "new"  # "new", "same-title", "similar-story"


@dataclass(frozen=True, slots=True)
class StoryPlacement:
    """A new headline's story, decided before its entry is stored: what the store writes into
    the entries row as it inserts it, and into the story index."""

    words: tuple[str, ...]  # its significant words (`stories.story_words`)
    vector: Mapping[str, float]  # their unit vector (`stories.headline_vector`)
    decision: StoryDecision


# Decides a new entry's story from its title and publication time, just before it is stored
# (`pipeline.story_placer`: the window's candidates, then the pure `stories.decide`).
Placer = Callable[[str, datetime], StoryPlacement]


# ---------------------------------------------------------------- render


@dataclass(frozen=True, slots=True)
class SourceFeed:
    """The feed an output entry came from (atom:source, RSS <source>, JSON `_source`)."""

    id: str  # permanent id of the origin feed (its atom:id, or minted once and stored)
    title: str
    url: str  # the origin feed's own URL
    link: str | None = None  # the origin site
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class Coverage:
    """Another outlet's copy of the same story (or of the same item, by URL)."""

    feed: SourceFeed
    title: str
    link: str | None = None  # None: no link to give (not http(s), or the item's own URL)
    copies: int = 1  # how many distinct copies the outlet carried ("Reuters (3)")


@dataclass(frozen=True, slots=True)
class OutputEntry:
    """One entry of the merged feed, as read back from the store."""

    id: str  # permanent output id
    title: str
    link: str | None
    summary: str | None
    content: str | None
    published: datetime
    updated: datetime
    source: SourceFeed
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    coverage: tuple[Coverage, ...] = ()  # other outlets' copies: "Also reported by"


@dataclass(frozen=True, slots=True)
class OutputFeed:
    """The merged feed, ready to serialize."""

    id: str
    title: str
    updated: datetime  # the newest entry's updated, so unchanged data gives identical bytes
    entries: tuple[OutputEntry, ...]
    link: str | None = None
    base_url: str | None = None  # public URL of the output dir (self links) if known
    generator_version: str = ""
    hub: str | None = None  # WebSub hub announced with rel="hub"
    outputs: tuple[OutputLink, ...] = ()  # the other outputs, linked from index.html


@dataclass(frozen=True, slots=True)
class OutputLink:
    """Another output, as a page links to it."""

    title: str
    href: str  # relative to the linking page: "world/" from the main one, "../" back to it


# ---------------------------------------------------------------- storing a response (plan.py)


@dataclass(frozen=True, slots=True)
class StoredSource:
    """One item this feed gave before, as stored (a `sources` row and its entry)."""

    source_id: str
    row_id: int  # sources.id
    entry_row_id: int  # entries.id
    fingerprint: str
    shown: bool  # this feed's copy is the one the entry shows (entries.feed_id is this feed)
    canonical_url: str | None  # the entry's


@dataclass(frozen=True, slots=True)
class Lookups:
    """What `Known` must be read for: the document's canonical URLs and possible output ids."""

    canonical_urls: frozenset[str]
    output_ids: frozenset[str]
    feed_id: str | None = None  # the document's own id, as it would be published


@dataclass(frozen=True, slots=True)
class Known:
    """What the store holds that one feed response is decided against (a few bulk reads)."""

    sources: Mapping[str, StoredSource] = field(default_factory=dict)  # this feed's, by id
    pruned: frozenset[str] = frozenset()  # ids of this feed whose entries retention deleted
    first_success: bool = True  # no answer from this feed was stored before
    feed_id_taken: bool = False  # another feed already goes by the document's own id
    entry_by_url: Mapping[str, int] = field(default_factory=dict)  # URL -> first entries row
    taken_output_ids: frozenset[str] = frozenset()  # of `Lookups.output_ids`, those stored
    # The copy each of those entries rows shows (several feeds may carry one URL), and whether
    # this feed is marked `prefer: true`: which copy an entry shows is decided again when
    # another feed's copy joins it.
    shown: Mapping[int, ShownCopy] = field(default_factory=dict)
    preferred: bool = False


@dataclass(frozen=True, slots=True)
class ShownCopy:
    """The copy an entries row shows: when it was published, and whether its feed is preferred."""

    published: datetime | None
    preferred: bool


@dataclass(frozen=True, slots=True)
class FeedRowUpdate:
    """The feed row's new values after a 200."""

    fetched_at: datetime
    status: int
    final_url: str
    moved_to: str | None  # where a chain of permanent redirects took the feed, if it did
    etag: str | None
    last_modified: str | None
    title: str | None
    link: str | None
    format: str
    warning: str | None
    hints: FeedHints
    schedule: Schedule
    adopted_source_id: str | None  # the feed's own atom:id, taken as its permanent id


@dataclass(frozen=True, slots=True)
class InsertEntry:
    """A new entry, with this feed as its first source."""

    entry: Entry
    fingerprint: str
    output_id: str
    published: datetime  # as stored: the entry's own date, else the time of the poll
    updated: datetime


@dataclass(frozen=True, slots=True)
class AddSource:
    """A new item of this feed that is an entry already stored (the same canonical URL)."""

    entry: Entry
    fingerprint: str
    entry_row_id: int | None  # the stored entry, or None: ...
    insert_index: int | None  # ... the `InsertEntry` at this index of `FeedUpdate.intents`
    # This copy is the one the entry shows from now on: earlier than the shown one, or from a
    # preferred feed (README: a story shows its earliest copy, or a preferred feed's).
    takes_over: bool = False


@dataclass(frozen=True, slots=True)
class UpdateEntry:
    """An item the feed gave before, changed: its source row, and its entry if shown."""

    entry: Entry
    fingerprint: str
    stored: StoredSource
    published: datetime | None  # None: keep the stored first publication time
    updated: datetime


@dataclass(frozen=True, slots=True)
class Rekey:
    """A stored item the feed now gives under a new id; updated too when it changed."""

    entry: Entry
    fingerprint: str
    stored: StoredSource
    update: UpdateEntry | None


Intent = InsertEntry | AddSource | UpdateEntry | Rekey


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """Everything one 200 response changes, as decided; `Store.apply_update` writes it."""

    state: FeedState  # with the adopted permanent id, if one was adopted
    row: FeedRowUpdate
    intents: tuple[Intent, ...]
    new: int  # items new to this feed (inserted or added as a source)
    updated: int
    rekeyed: int


@dataclass(frozen=True, slots=True)
class CreatedEntry:
    """An entries row a response created: what story placement needs of it."""

    entry_id: int
    title: str
    published: datetime  # as stored


# ---------------------------------------------------------------- keep and block rules (rules.py)


@dataclass(frozen=True, slots=True)
class RuleSubject:
    """A stored entry as the rules see it. The store reads only the fields some rule looks at
    (`rules.RuleSet.fields`); the others keep their empty defaults."""

    entry_id: int
    feed: str  # the name of the feed whose copy the entry shows (entries.feed_id)
    filtered_by: str | None  # the stored verdict: the rule that filters it, or None (shown)
    published: datetime | None = None
    title: str = ""
    summary: str | None = None
    content: str | None = None
    link: str | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterChange:
    """An entry whose verdict changed: the rule that now filters it, or None (shown again)."""

    entry_id: int
    filtered_by: str | None


@dataclass(frozen=True, slots=True)
class FilterPlan:
    """What one application of the rules changes; `Store.apply_filtering` writes it."""

    fingerprint: str  # of the rules applied (stored: a different one means re-apply to all)
    evaluated: datetime  # the `now` the ages were measured at
    changes: tuple[FilterChange, ...]
    checked: int  # entries the rules were evaluated for
    everything: bool  # every stored entry was checked (the rules changed), not only new ones
    timed_out: Mapping[str, int] = field(default_factory=dict)  # rule -> matches given up
