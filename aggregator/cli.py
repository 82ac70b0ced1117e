"""The ``aggregator`` command: a thin click shell over aggregator.pipeline and the store.

Modules only some commands need (the service and APScheduler, the HTTP server, OPML, the
query layer, the HTML template loader) are imported inside those commands, so that
``aggregator update``, run from cron every few minutes, does not pay for them at start-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator import __version__
from aggregator.config import (
    ALLOW_EMPTY_HINT,
    DEFAULT_CONFIG,
    load_config,
    no_feeds,
    parse_duration,
)
from aggregator.errors import AggregatorError, AlreadyRunning, ConfigError, QueryError
from aggregator.formats import FORMATS, counted, elide, embolden, poll_line, render_rows
from aggregator.pipeline import build, output_counts, prune_and_build, rebuild_stories, update
from aggregator.store import FeedRow, feed_listing, open_store
from aggregator.types import Config, PollResult, PollStatus, Retention, Selection

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

USAGE_ERROR = 2


_table_or_json = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


class _AggregatorError(click.ClickException):
    """The work failed (a database problem, every feed failing): exit 1."""

    exit_code = 1


class _BadConfig(click.ClickException):
    """feeds.yaml is unusable: exit 2, like any other usage error, before anything runs."""

    exit_code = USAGE_ERROR


def _load(ctx: click.Context) -> Config:
    try:
        config = load_config(ctx.obj["config_path"])
        if config.output.template is not None:
            from aggregator.render.html import load_template

            load_template(config.output.template)  # a broken template stops us before any work
    except ConfigError as e:
        raise _BadConfig(str(e)) from None
    return config


@click.group()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    envvar="AGGREGATOR_CONFIG",
    show_default=True,
    help="Config file (also $AGGREGATOR_CONFIG).",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """Poll news feeds, deduplicate them into SQLite, write one merged feed."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


_allow_empty_option = click.option(
    "--allow-empty",
    is_flag=True,
    help="Carry on when the config lists no feeds (else that is an error, exit 2).",
)


def _require_feeds(config: Config, allow_empty: bool, *, warn: bool = True) -> None:
    """Polling an empty feed list is refused (exit 2) unless --allow-empty: it was a silent 0."""
    empty = no_feeds(config)
    if empty is None:
        return
    if not allow_empty:
        raise _BadConfig(f"{empty}; {ALLOW_EMPTY_HINT}")
    if warn:
        click.echo(f"warning: {empty}", err=True)


def _warn_if_no_feeds(config: Config, consequence: str) -> None:
    """Commands that do not poll work without feeds, but say so (stderr; exit status 0)."""
    empty = no_feeds(config)
    if empty is not None:
        click.echo(f"warning: {empty}: {consequence}", err=True)


@cli.command("update")
@click.option("--feed", "names", multiple=True, help="Poll only this feed (by name); repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@_allow_empty_option
@click.pass_context
def update_command(
    ctx: click.Context, names: tuple[str, ...], quiet: bool, allow_empty: bool
) -> None:
    """Poll every enabled feed once, store new entries, rewrite the outputs."""
    config = _load(ctx)
    _require_feeds(config, allow_empty, warn=not quiet)
    if quiet:  # warnings too (an unset base_url, say): only errors
        logging.getLogger("aggregator").setLevel(logging.ERROR)
    unknown = sorted(set(names) - {f.name for f in config.feeds})
    if unknown:
        raise click.BadParameter(
            f"no feed named {', '.join(map(repr, unknown))}", param_hint="--feed"
        )

    polled = [f for f in config.feeds if f.enabled and (not names or f.name in names)]
    # A bar on a terminal; plain lines in pipes and logs, where a bar would be noise.
    show_bar = sys.stderr.isatty() and not quiet and len(polled) > 1
    with (
        click.progressbar(length=len(polled), label="polling", file=sys.stderr, show_pos=True)
        if show_bar
        else contextlib.nullcontext() as bar
    ):

        def report(result: PollResult) -> None:
            if bar is not None:
                bar.update(1)
                if result.status is PollStatus.ERROR:
                    click.echo("\n" + poll_line(result), err=True)
            elif not quiet or result.status is PollStatus.ERROR:
                click.echo(poll_line(result), err=True)

        try:
            outcome = update(config, names=names or None, on_result=report)
        except AggregatorError as e:
            raise _AggregatorError(str(e)) from None
    new = sum(r.new for r in outcome.results)
    changed = sum(r.updated for r in outcome.results)
    if not quiet:
        click.echo(
            f"{counted(len(outcome.results), 'feed')} polled, {len(outcome.failed)} failed; "
            f"{new} new, {changed} updated; wrote {counted(len(outcome.written), 'output file')} "
            f"in {config.output.dir}",
            err=True,
        )
    if outcome.results and len(outcome.failed) == len(outcome.results):
        raise _AggregatorError("every feed failed")


@cli.command("build")
@click.pass_context
def build_command(ctx: click.Context) -> None:
    """Rewrite the outputs from the database alone (no network)."""
    config = _load(ctx)
    _warn_if_no_feeds(config, "the outputs show what the database holds")
    try:
        written = build(config)
    except AggregatorError as e:
        raise _AggregatorError(str(e)) from None
    click.echo(
        f"wrote {counted(len(written), 'changed output file')} in {config.output.dir}", err=True
    )


@cli.command("prune")
@click.pass_context
def prune_command(ctx: click.Context) -> None:
    """Apply `retention:` now: delete old entries (their ids are kept as tombstones)."""
    config = _load(ctx)
    if config.retention == Retention():
        click.echo("no retention configured (retention: days / max_entries_per_feed): kept all")
        return
    try:
        counts, written = prune_and_build(config)
    except AggregatorError as e:
        raise _AggregatorError(str(e)) from None
    click.echo(
        f"pruned {counted(counts.entries, 'entry')} ({counted(counts.stories, 'story')} ended), "
        f"forgot {counted(counts.tombstones_expired, 'old tombstone')}; "
        f"rewrote {counted(len(written), 'output file')}"
    )


def _health(row: FeedRow) -> str:
    if not row.enabled:
        return "disabled in config"
    if row.disabled_reason:
        return f"disabled ({row.disabled_reason})"
    if row.last_result is None:
        return "never polled"
    if row.last_result == "error":
        return f"failing since {_when(row.failing_since)} ({row.error_count}x)"
    return "ok"


def _when(text: str | None) -> str:
    return (text or "").replace("T", " ").rstrip("Z")


def _duration(seconds: float | None) -> str:
    """Seconds as a short human duration: 1800 -> 30m, 5400 -> 1.5h."""
    if not seconds:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


@cli.command("feeds")
@_table_or_json
@click.pass_context
def feeds_command(ctx: click.Context, fmt: str) -> None:
    """Each feed's health: ok / failing since / disabled (why), next due, interval and why."""
    config = _load(ctx)
    stored: list[FeedRow] = []
    if config.database.exists():  # before the first update, a listing creates no database
        try:
            with open_store(config.database) as store:
                stored = store.feed_rows()
        except AggregatorError as e:
            raise _AggregatorError(str(e)) from None
    rows = feed_listing(config.feeds, stored)
    configured = {f.name for f in config.feeds}
    if fmt == "json":
        click.echo(json.dumps([{**asdict(r), "status": _health(r)} for r in rows], indent=2))
        return
    table = []
    for r in rows:
        name = r.name if r.name in configured else f"{r.name} (not in config)"
        if r.moved_to:
            name += f" -> {r.moved_to}"
        interval = (
            f"{_duration(r.interval_seconds)} ({r.interval_reason})" if r.interval_reason else ""
        )
        table.append(
            {
                "feed": name,
                "status": _health(r),
                "http": r.last_status,
                "last fetch (UTC)": _when(r.last_fetched),
                "next due (UTC)": _when(r.next_due) if not r.disabled_reason else "never",
                "interval": interval,
                "entries": r.entries,
                "last error": r.last_error,
            }
        )
    # A failing feed's error is what one came to read: up to four lines of it on a terminal.
    _emit(table, "table", keep=_FEED_TABLE_KEEP, max_lines=4, empty="no feeds")


_FEED_TABLE_KEEP = ("feed", "http", "last fetch (UTC)", "next due (UTC)", "entries")


def _selection_text(selection: Selection) -> str:
    """An output's selection in a few words, as feeds.yaml says it."""
    parts = []
    if selection.tags:
        parts.append(f"tags: {', '.join(selection.tags)}")
    if selection.feeds:
        parts.append(f"feeds: {', '.join(selection.feeds)}")
    if selection.search is not None:
        parts.append(f"search: {selection.search}")
    if selection.min_outlets > 1:
        parts.append(f"{selection.min_outlets}+ outlets")
    if selection.since is not None:
        parts.append(f"since {_duration(selection.since.total_seconds())}")
    parts.append(f"max {selection.max_entries}")
    return "; ".join(parts)


def _selection_fields(selection: Selection) -> dict[str, Any]:
    """An output's selection for JSON: `since` in seconds (null: no such condition)."""
    fields = asdict(selection)
    since = fields.pop("since")
    return {**fields, "since_seconds": since.total_seconds() if since is not None else None}


@cli.command("outputs")
@_table_or_json
@click.pass_context
def outputs_command(ctx: click.Context, fmt: str) -> None:
    """The extra merged feeds (`outputs:`): where each is, what it selects, how many items."""
    config = _load(ctx)
    try:
        counts = output_counts(config)
    except AggregatorError as e:
        raise _AggregatorError(str(e)) from None
    base = config.output.base_url
    rows = [
        {
            "name": extra.name,
            "title": extra.title,
            "id": extra.id,
            "entries": entries,
            "selection": _selection_fields(extra.selection),
            "dir": str(config.output.dir / extra.name),
            "url": f"{base}{extra.name}/" if base else None,
        }
        for extra, entries in counts
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = [
        {
            "name": row["name"],
            "title": row["title"],
            "entries": row["entries"],
            "selection": _selection_text(extra.selection),
            "where": row["url"] or row["dir"],
        }
        for row, (extra, _) in zip(rows, counts, strict=True)
    ]
    _emit(
        table, "table", keep=("name", "entries"), empty="no extra outputs (outputs: in feeds.yaml)"
    )


def parse_when(text: str, now: datetime) -> datetime:
    """A point in time: an ISO date or date-time (UTC unless it says), or a duration ago."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a date (2026-11-25, 2026-11-25T08:00) nor a duration (6h, 2d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cli.command("stories")
@click.option(
    "--since", help="Only stories changed since WHEN: an ISO date or a duration (6h, 2d)."
)
@click.option("--all", "show_all", is_flag=True, help="Include stories told by one entry only.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Re-place stored entries (those since WHEN, with --since) with the current rules.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@_table_or_json
@click.pass_context
def stories_command(
    ctx: click.Context, since: str | None, show_all: bool, rebuild: bool, limit: int, fmt: str
) -> None:
    """Stories told by several outlets: their members, and why each was merged."""
    config = _load(ctx)
    when = parse_when(since, datetime.now(UTC)) if since else None
    if not config.database.exists():  # a listing or a rebuild creates no database
        raise _AggregatorError(f"no database at {config.database}: run `aggregator update` first")
    if rebuild:
        try:
            with open_store(config.database) as store:
                count, changes = rebuild_stories(store, when, datetime.now(UTC))
        except AggregatorError as e:
            raise _AggregatorError(str(e)) from None
        click.echo(
            f"re-placed {counted(count, 'entry')}: {counted(changes.stories_before, 'story')} "
            "before, "
            f"{changes.stories_after} after; {changes.split} split, {changes.joined} joined "
            "(the outputs change at the next update or build)"
        )
        return
    try:
        with open_store(config.database) as store:
            rows = store.stories(since=when, min_members=1 if show_all else 2, limit=limit)
    except AggregatorError as e:
        raise _AggregatorError(str(e)) from None
    if not rows:
        several = "" if show_all else " told by several outlets"
        click.echo(f"no stories{several}" + (f" since {since}" if since else ""), err=True)
    if fmt == "json":
        click.echo(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
        return
    width = _terminal_width()
    for story in rows:
        outlets = len({m.feed for m in story.members})
        click.echo(
            f"story {story.id}: {counted(outlets, 'outlet')}, updated {_when(story.updated)}"
        )
        for m in story.members:
            # the stored rule's name, as JSON gives it ("new": the entry started the story)
            why = "new" if m.rule in (None, "new") else f"{m.rule} {m.score or 0:.2f}"
            mark = "*" if m.representative else "-"
            line = f"  {mark} {why:<18} {_when(m.published)}  {m.feed}: {m.title}"
            click.echo(line if width is None else elide(line, width))
        click.echo()


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; json (an array), jsonl or csv for pipes.",
)


class _BadQuery(click.ClickException):
    """The query given cannot run as typed: exit 2, like any other bad input."""

    exit_code = USAGE_ERROR


@contextlib.contextmanager
def _reading(config: Config) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a database whose schema is current."""
    from aggregator import queries

    try:
        if config.database.exists():
            with open_store(config.database):
                pass  # applies pending migrations (a database from an older version)
        with queries.open_reader(config.database) as conn:
            yield conn
    except QueryError as e:
        raise _BadQuery(str(e)) from None
    except AggregatorError as e:
        raise _AggregatorError(str(e)) from None


def _terminal_width() -> int | None:
    """The terminal's width when stdout is one; None in a pipe, where values print whole."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _emit(
    rows: list[dict[str, Any]],
    fmt: str,
    *,
    keep: tuple[str, ...] = (),
    max_lines: int = 1,
    empty: str | None = None,
) -> None:
    """Print rows; a table is fitted to the terminal, never cutting ``keep``'s columns.

    No rows: ``empty`` ("no entries") on stderr, so that silence is never the answer and a
    pipe still reads only data (`[]` for json)."""
    if not rows and empty:
        click.echo(empty, err=True)
    text = render_rows(rows, fmt, width=_terminal_width(), keep=keep, max_lines=max_lines)
    click.echo(text, nl=False)


@cli.command("entries")
@click.option("--feed", help="Only entries from this feed (by name).")
@click.option("--tag", help="Only entries whose feed has this tag, or which carry it.")
@click.option("--since", help="Published at or after WHEN: an ISO date or a duration (6h, 2d).")
@click.option("--until", help="Published before WHEN.")
@click.option("--story", type=int, help="Only entries of this story (see `aggregator stories`).")
@click.option(
    "--filtered",
    is_flag=True,
    help="Only entries the keep and block rules leave out of the outputs, with the rule.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@_format_option
@click.pass_context
def entries_command(
    ctx: click.Context,
    feed: str | None,
    tag: str | None,
    since: str | None,
    until: str | None,
    story: int | None,
    filtered: bool,
    limit: int,
    fmt: str,
) -> None:
    """Stored entries, newest first."""
    from aggregator import queries

    config = _load(ctx)
    now = datetime.now(UTC)
    start = parse_when(since, now) if since else None
    end = parse_when(until, now) if until else None
    with _reading(config) as conn:
        rows = queries.entries(
            conn,
            feed=feed,
            tag=tag,
            since=start,
            until=end,
            story=story,
            filtered=filtered,
            limit=limit,
        )
    if fmt == "table":
        shown = ("published", "feed", "title", "filtered_by" if filtered else "link", "story")
        rows = [{k: r[k] for k in shown} for r in rows]
    _emit(rows, fmt, keep=("feed",), empty="no filtered entries" if filtered else "no entries")


@cli.command("search")
@click.argument("query")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@_format_option
@click.pass_context
def search_command(ctx: click.Context, query: str, limit: int, fmt: str) -> None:
    """Full-text search, best match first: words, "a phrase", OR, NOT, prefix*."""
    from aggregator import queries
    from aggregator.queries import HIGHLIGHT

    config = _load(ctx)
    with _reading(config) as conn:
        rows = queries.search(conn, query, limit=limit)
    # Bold on a terminal: the markers are zero-width while the table is fitted, then turned
    # into escapes; elsewhere [brackets], which pipes and files keep.
    bold = fmt == "table" and sys.stdout.isatty()
    if not bold:
        for row in rows:
            row["snippet"] = row["snippet"].replace(HIGHLIGHT[0], "[").replace(HIGHLIGHT[1], "]")
    if fmt == "table":
        rows = [{k: r[k] for k in ("published", "feed", "title", "snippet")} for r in rows]
    if not rows:
        click.echo(f"no entries match {query!r}", err=True)
    text = render_rows(rows, fmt, width=_terminal_width(), keep=("feed",))
    click.echo(embolden(text, *HIGHLIGHT) if bold else text, nl=False)


@cli.command("sql")
@click.argument("statement")
@_format_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds the query may run before it is stopped.",
)
@click.pass_context
def sql_command(ctx: click.Context, statement: str, fmt: str, timeout: float) -> None:
    """Run a read-only SQL query on the database (writes, ATTACH and VACUUM INTO are refused;
    Ctrl-C or --timeout stops it)."""
    from aggregator import queries

    config = _load(ctx)
    interrupted = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    # Python cannot raise KeyboardInterrupt inside SQLite's C loop: the query checks a flag.
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        with _reading(config) as conn:
            rows = queries.run_sql(conn, statement, timeout=timeout, interrupted=interrupted.is_set)
    finally:
        signal.signal(signal.SIGINT, previous)
    _emit(rows, fmt, empty="no rows")


@cli.command("stats")
@_table_or_json
@click.pass_context
def stats_command(ctx: click.Context, fmt: str) -> None:
    """Counts per feed and per day, duplicates merged, database size."""
    from aggregator import queries

    config = _load(ctx)
    with _reading(config) as conn:
        found = queries.stats(conn, config.database)
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(
        f"{counted(found['feeds'], 'feed')}, {counted(found['entries'], 'entry')} in "
        f"{counted(found['stories'], 'story')} ({counted(found['copies'], 'copy')}: "
        f"{found['merged_same_url']} merged by URL, "
        f"{found['merged_same_story']} by story); database {found['database_bytes'] / 1e6:.1f} MB"
    )
    click.echo()
    _emit(found["per_feed"], "table", keep=("feed",))
    click.echo()
    _emit(found["per_day"], "table")


class _NotReady(click.ClickException):
    """What the command needs is not there yet (a package, the database): exit 2."""

    exit_code = USAGE_ERROR


@cli.command("datasette", context_settings={"ignore_unknown_options": True})
@click.argument("datasette_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def datasette_command(ctx: click.Context, datasette_args: tuple[str, ...]) -> None:
    """Browse the database in Datasette: titles, search, canned queries. Options after the
    command go to `datasette serve` (--port 8001, --host 127.0.0.1, --open...)."""
    from aggregator import browse

    config = _load(ctx)
    if not browse.installed():
        raise _NotReady("datasette is not installed: install with pip install -e '.[datasette]'")
    if not config.database.exists():
        raise _NotReady(f"no database at {config.database} yet: run `aggregator update` first")
    with _reading(config):
        pass  # applies pending migrations: the canned queries need the current views
    sys.exit(browse.serve(config.database, datasette_args))


@cli.group("opml")
def opml_group() -> None:
    """Exchange the feed list with other readers as OPML 2.0."""


@opml_group.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@click.pass_context
def opml_export_command(ctx: click.Context, output: Path | None) -> None:
    """The configured feeds as OPML 2.0 (tags as categories)."""
    from aggregator import opml
    from aggregator.render import write_atomic

    config = _load(ctx)
    _warn_if_no_feeds(config, "the OPML lists none")
    local = opml.left_out(config)
    for feed in local:  # what `opml import` would refuse (a local path means nothing elsewhere)
        click.echo(f"left out: {feed.url}: a local file (OPML import never adds those)", err=True)
    if output is None:
        sys.stdout.buffer.write(opml.export_opml(config))
        return
    write_atomic(output, opml.export_opml(config, now=datetime.now(UTC)))
    click.echo(f"wrote {counted(len(config.feeds) - len(local), 'feed')} to {output}", err=True)


@opml_group.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def opml_import_command(ctx: click.Context, opml_file: Path) -> None:
    """Add the feeds of an OPML file to the config (comments and order kept)."""
    from aggregator import opml

    config_path: Path = ctx.obj["config_path"]
    try:
        result = opml.import_opml(config_path, opml_file)
    except ConfigError as e:
        raise _BadConfig(str(e)) from None
    for feed in result.added:
        title = f" ({feed.title!r})" if feed.title else ""
        tags = f" [{', '.join(feed.tags)}]" if feed.tags else ""
        click.echo(f"added: {feed.url}{title}{tags}", err=True)
    for feed, why in result.skipped:
        click.echo(f"skipped: {feed.url}: {why}", err=True)
    if not result.added:
        click.echo(f"nothing new; {config_path} unchanged", err=True)
        return
    reasons = Counter(why for _, why in result.skipped)
    detail = ", ".join(f"{n} {why}" for why, n in reasons.items())
    click.echo(
        f"{counted(len(result.added), 'feed')} added to {config_path}, "
        f"{len(result.skipped)} skipped" + (f" ({detail})" if detail else ""),
        err=True,
    )


def _setup_logging() -> None:
    """One line per event on stderr, UTC timestamps: what systemd and Docker collect."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger("aggregator")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


_host_option = click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to serve on (0.0.0.0: all)."
)
_port_option = click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535)
)


@cli.command("run")
@click.option("--serve", is_flag=True, help="Also serve the output directory over HTTP.")
@_host_option
@_port_option
@_allow_empty_option
@click.pass_context
def run_command(ctx: click.Context, serve: bool, host: str, port: int, allow_empty: bool) -> None:
    """Keep polling, politely, until stopped (SIGTERM/SIGINT); SIGHUP reloads the config."""
    from aggregator.service import Service

    # A bad config stops here, before anything starts (the service logs an allowed empty one).
    _require_feeds(_load(ctx), allow_empty, warn=False)
    _setup_logging()

    def start_server(config: Config) -> None:
        if serve:
            _start_server(config, host, port)

    try:
        service = Service(ctx.obj["config_path"], on_ready=start_server, allow_empty=allow_empty)
        code = service.run()
    except ConfigError as e:  # the file changed since _load: as bad as at _load
        raise _BadConfig(str(e)) from None
    except AlreadyRunning as e:
        raise _AggregatorError(str(e)) from None
    except AggregatorError as e:
        raise _AggregatorError(str(e)) from None
    sys.exit(code)


@cli.command("serve")
@_host_option
@_port_option
@click.pass_context
def serve_command(ctx: click.Context, host: str, port: int) -> None:
    """Serve the output directory over HTTP (ETag, gzip, 304s) until stopped."""
    config = _load(ctx)
    _setup_logging()
    server = _start_server(config, host, port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()


def _start_server(config: Config, host: str, port: int) -> ThreadingHTTPServer:
    from aggregator.server import make_server, serve_in_thread

    config.output.dir.mkdir(parents=True, exist_ok=True)
    try:
        server = make_server(config.output.dir, host, port)
    except OSError as e:
        raise _AggregatorError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    serve_in_thread(server)
    bound_host, bound_port = server.server_address[:2]
    logging.getLogger("aggregator").info(
        "serving %s on http://%s:%s/", config.output.dir, bound_host, bound_port
    )
    return server


def _config_after_command(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """`aggregator update --config x` means `aggregator --config x update` (it was "No such
    option"). Given in both places, the one after the command wins, as the last of a repeated
    option does; ctx.obj is the dict the group filled, shared by its subcommands."""
    if value is not None:
        ctx.ensure_object(dict)["config_path"] = value


def _accept_config_after_every_command(group: click.Group) -> None:
    """Give every command (groups and their commands too) its own ``-c/--config``."""
    for command in group.commands.values():
        command.params.append(
            click.Option(
                ["-c", "--config", "config_after_command"],
                type=click.Path(dir_okay=False, path_type=Path),
                expose_value=False,
                callback=_config_after_command,
                help="Config file: the same as --config before the command, and wins over it.",
            )
        )
        if isinstance(command, click.Group):
            _accept_config_after_every_command(command)


_accept_config_after_every_command(cli)


def main() -> None:
    """Entry point; exits 2 on a usage or config error, 1 when the work failed."""
    try:
        cli.main(prog_name="aggregator", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
