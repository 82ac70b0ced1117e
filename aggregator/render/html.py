"""OutputFeed -> ``index.html``: a light "river of news" page, rendered with Jinja2.

The built-in template (``templates/index.html.j2``) has no JavaScript, inline CSS only and a
Content-Security-Policy that forbids scripts, so even HTML that slipped past the sanitizer cannot
run. ``output.template`` in feeds.yaml replaces it with the operator's own Jinja2 file (trusted
like the config itself: it is not sandboxed). Any problem in that file (missing, unreadable, a
syntax error, an undefined variable, an error while rendering) is a ``ConfigError`` naming the
file and line, so the CLI reports it like any other config problem.

Rendering is pure and deterministic: the same OutputFeed always gives the same bytes (no clock,
no I/O except reading the template). Autoescaping is on and undefined names are errors.

Template context (the user-facing API; every string is plain text and is escaped on output,
except the two ``*_html`` fields, which are already-sanitized HTML marked safe):

``feed``
    ``title``, ``id``, ``link`` (the site, http(s) only, else None), ``base_url`` (or None),
    ``updated`` (datetime, UTC), ``updated_iso`` (RFC 3339), ``updated_text``.
``feeds``
    the machine-readable versions, for ``<link rel="alternate">`` and subscribe links: a list
    of ``{name, href, type, label, title}``; ``href`` is relative to index.html (``atom.xml``,
    ``rss.xml``, ``feed.json``), ``type`` is ``application/atom+xml``, ``application/rss+xml``
    or ``application/feed+json``, ``label`` is "Atom" / "RSS" / "JSON Feed".
``entries``
    newest first (the order of the OutputFeed), each with:
    ``id``; ``title`` (may be ""); ``link`` (http(s) only, else None);
    ``published`` / ``updated`` (datetime, UTC); ``published_iso`` / ``updated_iso`` (RFC 3339);
    ``published_text`` ("25 Nov 2026, 09:00 UTC"); ``time_text`` ("09:00 UTC");
    ``day_iso`` ("2026-11-25", the UTC date);
    ``source``: ``{title, link (http(s) or None), url (the origin feed's URL)}``;
    ``authors``, ``tags`` (tuples of str);
    ``summary_html``, ``content_html`` (sanitized HTML, "" when absent);
    ``coverage``: "Also reported by", each other outlet once: a list of ``{outlet, title,
    link (http(s) or None: never the entry's own URL), copies (how many it carried),
    count_text (" (3)" when several, else "")}``.
``days``
    the same entries grouped by UTC date, in order: a list of
    ``{date_iso ("2026-11-25"), date_text ("Wednesday, 25 November 2026"), entries}``.
``outputs``
    the other merged feeds of the config (``outputs:`` in feeds.yaml), each ``{title, href}``;
    ``href`` is relative to this page: ``world/`` on the main page, ``../`` and ``../tech/``
    on an extra output's. Empty when there are none.

A custom template can also ``{% extends "builtin/index.html.j2" %}`` and override its blocks
(``title``, ``style``, ``head``, ``header``, ``main``, ``footer``).
"""

from __future__ import annotations

import functools
import itertools
import traceback
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..errors import ConfigError
from ..types import OutputEntry, OutputFeed, OutputLink
from .common import as_utc, clean, coverage_count, is_http_url, rfc3339, unique_entries

BUILTIN_TEMPLATE = "index.html.j2"
BUILTIN_PREFIX = "builtin"  # user templates reach the built-in one as "builtin/index.html.j2"

# Fixed English names: strftime("%b") follows the process locale, and the bytes must not.
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_MONTHS_LONG = (
    "January February March April May June July August September October November December".split()
)
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

# (file, type, label) of the machine-readable versions, written beside index.html.
_FEED_LINKS = (
    ("atom.xml", "application/atom+xml", "Atom"),
    ("rss.xml", "application/rss+xml", "RSS"),
    ("feed.json", "application/feed+json", "JSON Feed"),
)


# ---------------------------------------------------------------- the template's view


@dataclass(frozen=True, slots=True)
class FeedView:
    title: str
    id: str
    link: str | None
    base_url: str | None
    updated: datetime
    updated_iso: str
    updated_text: str


@dataclass(frozen=True, slots=True)
class FeedLink:
    name: str
    href: str
    type: str
    label: str
    title: str


@dataclass(frozen=True, slots=True)
class SourceView:
    title: str
    link: str | None
    url: str


@dataclass(frozen=True, slots=True)
class CoverageView:
    outlet: str
    title: str
    link: str | None
    copies: int
    count_text: str


@dataclass(frozen=True, slots=True)
class EntryView:
    id: str
    title: str
    link: str | None
    published: datetime
    published_iso: str
    published_text: str
    time_text: str
    day_iso: str
    updated: datetime
    updated_iso: str
    source: SourceView
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    summary_html: Markup
    content_html: Markup
    coverage: tuple[CoverageView, ...]


@dataclass(frozen=True, slots=True)
class DayView:
    date_iso: str
    date_text: str
    entries: tuple[EntryView, ...]


def _http(url: str | None) -> str | None:
    """Only http(s) URLs become hrefs: a ``javascript:`` link must never reach the page."""
    return clean(url) if url and is_http_url(url) else None


def _date_text(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]}, {day.day} {_MONTHS_LONG[day.month - 1]} {day.year}"


def _datetime_text(dt: datetime) -> str:
    return f"{dt.day} {_MONTHS[dt.month - 1]} {dt.year}, {dt:%H:%M} UTC"


def _texts(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in (clean(x).strip() for x in values) if v)


def _entry_view(entry: OutputEntry) -> EntryView:
    published, updated = as_utc(entry.published), as_utc(entry.updated)
    return EntryView(
        id=clean(entry.id),
        title=clean(entry.title),
        link=_http(entry.link),
        published=published,
        published_iso=rfc3339(published),
        published_text=_datetime_text(published),
        time_text=f"{published:%H:%M} UTC",
        day_iso=published.date().isoformat(),
        updated=updated,
        updated_iso=rfc3339(updated),
        source=SourceView(
            title=clean(entry.source.title),
            link=_http(entry.source.link),
            url=clean(entry.source.url),
        ),
        authors=_texts(entry.authors),
        tags=_texts(entry.tags),
        # The only values marked safe: the store holds them sanitized (nh3, once, at parse).
        summary_html=Markup(clean(entry.summary or "")),
        content_html=Markup(clean(entry.content or "")),
        coverage=tuple(
            CoverageView(
                outlet=clean(c.feed.title),
                title=clean(c.title),
                link=_http(c.link),
                copies=c.copies,
                count_text=coverage_count(c.copies),
            )
            for c in entry.coverage
        ),
    )


def template_context(feed: OutputFeed) -> dict[str, Any]:
    """The variables a template sees (documented in this module's docstring)."""
    updated = as_utc(feed.updated)
    title = clean(feed.title)
    entries = [_entry_view(e) for e in unique_entries(feed.entries)]
    days = [
        DayView(day_iso, _date_text(group[0].published.date()), tuple(group))
        for day_iso, grouped in itertools.groupby(entries, key=lambda e: e.day_iso)
        for group in [list(grouped)]
    ]
    return {
        "feed": FeedView(
            title=title,
            id=clean(feed.id),
            link=_http(feed.link),
            base_url=clean(feed.base_url) if feed.base_url else None,
            updated=updated,
            updated_iso=rfc3339(updated),
            updated_text=_datetime_text(updated),
        ),
        "feeds": [
            FeedLink(name=name, href=name, type=mime, label=label, title=f"{title} ({label})")
            for name, mime, label in _FEED_LINKS
        ],
        "entries": entries,
        "days": days,
        "outputs": _output_links(feed),
    }


def _output_links(feed: OutputFeed) -> list[OutputLink]:
    """The other outputs' pages; relative hrefs only (they are the config's folder names)."""
    return [OutputLink(title=clean(o.title), href=clean(o.href)) for o in feed.outputs]


# ---------------------------------------------------------------- environments


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader,
        autoescape=True,  # every value, whatever the file is called
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _builtin_loader() -> jinja2.BaseLoader:
    return jinja2.PackageLoader("aggregator.render", "templates")


@functools.cache
def _builtin_environment() -> jinja2.Environment:
    """One environment for the built-in template: compiled once per process, not per update."""
    return _environment(_builtin_loader())


def _user_environment(path: Path) -> jinja2.Environment:
    """The user's folder first (for its includes), then the built-in templates as builtin/."""
    return _environment(
        jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(str(path.parent)),
                jinja2.PrefixLoader({BUILTIN_PREFIX: _builtin_loader()}),
            ]
        )
    )


def _template_frame(exc: BaseException) -> tuple[Path, int] | None:
    """Where in which template an error was raised: Jinja rewrites its frames to point there."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.name
        in_template = name in ("template", "top-level template code") or name.startswith("block '")
        if in_template and frame.lineno is not None and not frame.filename.endswith(".py"):
            found = (Path(frame.filename), frame.lineno)
    return found  # the deepest: an error in an included file names that file


def _problem(path: Path, exc: BaseException, line: int | None = None) -> ConfigError:
    message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
    if isinstance(exc, jinja2.TemplateNotFound):
        message = f"template not found: {exc.name}"
    elif not isinstance(exc, jinja2.TemplateError):
        message = f"{type(exc).__name__}: {message}"
    where = f"line {line}: " if line else ""
    return ConfigError(f"{path}: {where}{message}")


def load_template(path: Path) -> jinja2.Template:
    """Read and compile a user template; a missing or broken file is a ConfigError.

    Config loading can call this to reject a bad ``output.template`` before anything runs.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: template not found")
    try:
        return _user_environment(path).get_template(path.name)
    except jinja2.TemplateSyntaxError as e:
        where = Path(e.filename) if e.filename else path
        raise _problem(where, e, e.lineno) from e
    except jinja2.TemplateNotFound as e:
        raise _problem(path, e) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read template: {e}") from e


# The page's Content-Security-Policy, in its <meta> and (with frame-ancestors, which a <meta>
# cannot carry) in `serve`'s header: one text, so the two never disagree (issue 13).
PAGE_POLICY = (
    "default-src 'none'; img-src https: http:; style-src 'self' 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)


def render_html(feed: OutputFeed, template: Path | None = None) -> bytes:
    """Render ``index.html`` with the built-in template, or with ``template`` when given."""
    # A user template may extend the built-in one, which writes the policy in its <meta>.
    context = {**template_context(feed), "content_security_policy": PAGE_POLICY}
    if template is None:
        text = _builtin_environment().get_template(BUILTIN_TEMPLATE).render(context)
        return text.encode("utf-8", errors="replace")
    compiled = load_template(template)
    try:
        text = compiled.render(context)
    except jinja2.TemplateSyntaxError as e:  # in a template it includes or extends
        where = Path(e.filename) if e.filename else Path(template)
        raise _problem(where, e, e.lineno) from e
    except Exception as e:  # the operator's template code failed, not ours: report it as such
        where, line = _template_frame(e) or (Path(template), None)
        raise _problem(where, e, line) from e
    return text.encode("utf-8", errors="replace")
