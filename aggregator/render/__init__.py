"""Render the merged feed: pure OutputFeed -> bytes serializers, plus one atomic writer.

render_atom(feed)       Atom 1.0 (the primary output)
render_rss(feed)        RSS 2.0
render_json_feed(feed)  JSON Feed 1.1
render_html(feed, tpl)  index.html, the river of news page (built-in or user Jinja2 template)
load_template(path)     compile a user template early; a broken one is a ConfigError
write_outputs(feed, d, template)  atom.xml, rss.xml, feed.json (OUTPUT_FILES) and index.html
                        (HTML_FILE) in d; returns the files rewritten
LOCAL_PAGE              the site link named when neither output.link nor base_url is set
write_atomic(path, b)   temp file + fsync + os.replace; no-op when the bytes are unchanged
common                  what the serializers share: text cleaning, titles, dates, links, ids
"""

from __future__ import annotations

from typing import Any

from .atom import render_atom
from .common import LOCAL_PAGE
from .jsonfeed import render_json_feed
from .rss import render_rss
from .write import HTML_FILE, OUTPUT_FILES, write_atomic, write_outputs


def __getattr__(name: str) -> Any:
    """`load_template` and `render_html` come from `.html`, which imports Jinja2: on first use."""
    if name in ("load_template", "render_html"):
        from . import html

        return getattr(html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HTML_FILE",
    "LOCAL_PAGE",
    "OUTPUT_FILES",
    "load_template",
    "render_atom",
    "render_html",
    "render_json_feed",
    "render_rss",
    "write_atomic",
    "write_outputs",
]
