"""What storing one feed response means, decided in pure code; the store only applies it.

`plan_update` takes the feed's state, the response, the parsed document and `Known` (what the
store holds that bears on it: `Store.stored_copies`, then `Store.known_for` on `lookups`) and
returns a `FeedUpdate`: the feed row's new values and one intent per entry, each with the ids
it will be stored under. `Store.apply_update` writes it and hands back the entries it created,
so nothing is read again for story placement. No I/O here, no clock: every rule is a table
test.

The rules, per entry of the document (ids are already unique in it: `parse`):

- an id the feed gave before, same fingerprint: nothing to do; another fingerprint: update
  it in place (`UpdateEntry`); an id whose entry retention deleted: never comes back;
- a new id for an item the feed already gave under an id it no longer uses (same canonical URL,
  else same fingerprint): re-key the stored copy (`Rekey`), not a second copy: some feeds mint
  fresh ids on every poll;
- a new id with a canonical URL already stored by any feed (or by an entry earlier in this
  document): one more source of that entry (`AddSource`);
- otherwise a new entry (`InsertEntry`) under its permanent output id, scoped to this feed when
  another entry already has that id (two feeds never merge silently on an id).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime

from aggregator.dedupe import fingerprint, output_id, published_id, scoped_id
from aggregator.types import (
    AddSource,
    Entry,
    FeedRowUpdate,
    FeedState,
    FeedUpdate,
    FetchResult,
    InsertEntry,
    Intent,
    Known,
    Lookups,
    ParsedFeed,
    Rekey,
    Schedule,
    ShownCopy,
    StoredSource,
    UpdateEntry,
)


def moved_to(state: FeedState, fetched: FetchResult) -> str | None:
    """The feed's new URL when only permanent redirects led to another one (301/308)."""
    if fetched.redirected_permanently and fetched.url != state.url:
        return fetched.url
    return None


def own_feed_id(parsed: ParsedFeed) -> str | None:
    """The document's own id (an Atom feed's atom:id) as it would be published, if it has one."""
    return published_id(parsed.feed_id) if parsed.feed_id else None


def lookups(state: FeedState, parsed: ParsedFeed, stored: Collection[str] = frozenset()) -> Lookups:
    """The canonical URLs and output ids `plan_update` may ask `Known` about, and the
    document's own id (whether another feed goes by it). Items whose ids are in `stored` (the
    feed's stored and pruned ones) are decided by what the feed holds alone: nothing is asked
    about them, so a feed that brings a few new items asks about those few."""
    own_id = own_feed_id(parsed)
    feed_ids = {state.source_id, own_id or state.source_id}
    output_ids: set[str] = set()
    asked = [e for e in parsed.entries if e.source_id not in stored]
    for entry in asked:
        kept = published_id(entry.source_id)
        if kept is not None:
            output_ids.add(kept)
        else:  # minted from the feed's permanent id: the one it has, or the one it may adopt
            output_ids.update(scoped_id(entry.source_id, feed_id) for feed_id in feed_ids)
    return Lookups(
        feed_id=own_id,
        canonical_urls=frozenset(e.canonical_url for e in asked if e.canonical_url),
        output_ids=frozenset(output_ids),
    )


def plan_update(
    state: FeedState,
    fetched: FetchResult,
    parsed: ParsedFeed,
    known: Known,
    now: datetime,
    schedule: Schedule,
) -> FeedUpdate:
    """What storing this response means (the rules are in the module docstring)."""
    adopted = None
    own_id = own_feed_id(parsed)
    if known.first_success and own_id and not known.feed_id_taken:
        # An Atom feed's own id names it in atom:source (in its normal form); adopted once,
        # then kept (unless another feed already goes by it: copies of one feed under two URLs
        # exist).
        adopted = own_id
        state = replace(state, source_id=adopted)
    row = FeedRowUpdate(
        fetched_at=now,
        status=fetched.status,
        final_url=fetched.url,
        moved_to=moved_to(state, fetched),
        # Validators are replaced on every 200, even when nothing changed.
        etag=fetched.headers.get("ETag"),
        last_modified=fetched.headers.get("Last-Modified"),
        title=parsed.title,
        link=parsed.link,
        format=parsed.format,
        warning=parsed.warning,
        hints=parsed.hints,
        schedule=schedule,
        adopted_source_id=adopted,
    )
    in_document = {e.source_id for e in parsed.entries if e.source_id not in known.pruned}
    own_urls: set[str] = set()  # canonical URLs this feed has a copy of, stale or not
    stale_by_url: dict[str, list[StoredSource]] = {}
    stale_by_fingerprint: dict[str, list[StoredSource]] = {}
    for copy in sorted(known.sources.values(), key=lambda s: s.row_id):
        if copy.canonical_url:
            own_urls.add(copy.canonical_url)
        if copy.source_id not in in_document:
            if copy.canonical_url:
                stale_by_url.setdefault(copy.canonical_url, []).append(copy)
            stale_by_fingerprint.setdefault(copy.fingerprint, []).append(copy)
    rekeyed_rows: set[int] = set()
    inserted_by_url: dict[str, int] = {}  # canonical URL -> index of its InsertEntry
    taken = set(known.taken_output_ids)
    shown = dict(known.shown)
    intents: list[Intent] = []
    new = updated = rekeyed = 0
    seen: set[str] = set()
    for entry in parsed.entries:
        if entry.source_id in seen or entry.source_id in known.pruned:
            continue  # parse already made ids unique; a pruned item never comes back
        seen.add(entry.source_id)
        digest = parsed.fingerprints.get(entry.source_id) or fingerprint(entry)
        stored = known.sources.get(entry.source_id)
        if stored is not None:
            if stored.fingerprint != digest:
                intents.append(_update(entry, digest, stored, now))
                updated += 1
                if stored.shown and entry.canonical_url:
                    own_urls.add(entry.canonical_url)
            continue
        if entry.canonical_url and entry.canonical_url in own_urls:
            # The feed has a copy of this URL: that copy or none (not one by content).
            stale = _first_free(stale_by_url.get(entry.canonical_url), rekeyed_rows)
        else:
            stale = _first_free(stale_by_fingerprint.get(digest), rekeyed_rows)
        if stale is not None:
            rekeyed_rows.add(stale.row_id)
            change = None
            if stale.fingerprint != digest:
                change = _update(entry, digest, stale, now)
            intents.append(Rekey(entry, digest, stale, change))
            rekeyed += 1
            continue
        new += 1
        url = entry.canonical_url
        if url:
            own_urls.add(url)
        if url and url in known.entry_by_url:
            onto = known.entry_by_url[url]
            takes_over = onto in shown and _shown_before(entry, known.preferred, shown[onto])
            if takes_over:
                shown[onto] = ShownCopy(entry.published or entry.updated, known.preferred)
            intents.append(AddSource(entry, digest, onto, None, takes_over))
            continue
        if url and url in inserted_by_url:
            intents.append(AddSource(entry, digest, None, inserted_by_url[url]))
            continue
        uid = output_id(entry.source_id, state.source_id)
        if uid in taken:
            # Another feed already claims this id for a different item: never merge silently
            # (RFC 4287 section 8.4); scope the id to this feed, by its row too (two feeds may
            # share an atom:id).
            uid = scoped_id(entry.source_id, f"{state.source_id}#{state.feed_id}")
        taken.add(uid)
        if url:
            inserted_by_url[url] = len(intents)
        published = entry.published or entry.updated or now
        intents.append(
            InsertEntry(entry, digest, uid, published, entry.updated or entry.published or now)
        )
    return FeedUpdate(state, row, tuple(intents), new=new, updated=updated, rekeyed=rekeyed)


def _shown_before(entry: Entry, preferred: bool, shown: ShownCopy) -> bool:
    """Whether this copy, rather than the one shown, is the one an entry shows: a preferred
    feed's copy first, then the earliest. An undated (or clamped) copy never takes over."""
    if preferred != shown.preferred:
        return preferred
    mine = None if entry.date_clamped else entry.published or entry.updated
    if mine is None:
        return False
    return shown.published is None or mine < shown.published


def _first_free(copies: list[StoredSource] | None, taken: set[int]) -> StoredSource | None:
    """The first stale copy not re-keyed already in this response (rows in stored order)."""
    return next((c for c in copies or () if c.row_id not in taken), None)


def _update(entry: Entry, digest: str, stored: StoredSource, now: datetime) -> UpdateEntry:
    # A missing or clamped date never moves an entry's first publication time; it changed now,
    # unless the feed says when (and not in the future: clamped).
    published = entry.published if entry.published and not entry.date_clamped else None
    fresh = entry.updated if entry.updated and not entry.date_clamped else None
    return UpdateEntry(entry, digest, stored, published, fresh or now)
