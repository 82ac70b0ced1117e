"""Render the merged feed: pure OutputFeed -> bytes serializers, plus one atomic writer.

render_atom(feed)       Atom 1.0 (the primary output)
render_rss(feed)        RSS 2.0
render_json_feed(feed)  JSON Feed 1.1
write_outputs(feed, d)  atom.xml, rss.xml, feed.json in d; returns the files rewritten
write_atomic(path, b)   temp file + fsync + os.replace; no-op when the bytes are unchanged
"""

from __future__ import annotations

from .atom import render_atom
from .jsonfeed import render_json_feed
from .rss import render_rss
from .write import OUTPUT_FILES, write_atomic, write_outputs

__all__ = [
    "OUTPUT_FILES",
    "render_atom",
    "render_json_feed",
    "render_rss",
    "write_atomic",
    "write_outputs",
]
