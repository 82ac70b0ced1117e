"""Publish output files atomically, and only when their bytes change: a reader
polling with If-Modified-Since, and a WebSub hub, see a change only when there is one."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path

from ..types import OutputFeed
from .atom import render_atom
from .jsonfeed import render_json_feed
from .rss import render_rss

OUTPUT_FILES = ("atom.xml", "rss.xml", "feed.json")  # the feeds (WebSub topics), not the page
HTML_FILE = "index.html"


def write_atomic(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically; return False (file untouched) if unchanged.

    Skipping identical bytes keeps the mtime, so HTTP validators stay stable and readers are not
    made to re-download an unchanged feed. Readers of ``path`` see the old or the new file, never
    a partial one: temp file in the same directory, fsync, then ``os.replace``. On any error the
    temp file is removed, the old file is left intact, and the exception propagates.
    """
    path = Path(path)
    try:
        if path.read_bytes() == data:
            return False
        mode: int | None = stat.S_IMODE(path.stat().st_mode)  # keep the published permissions
    except FileNotFoundError:
        mode = None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    # 0o666 filtered by the umask, like a normally created file (mkstemp would give 0600 and a
    # web server could not read the published feed).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; best effort, as not every platform can fsync a dir."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_outputs(feed: OutputFeed, out_dir: Path, template: Path | None = None) -> list[Path]:
    """Render the three feeds and index.html, publish them; return the paths actually rewritten.

    Everything is rendered before anything is written, so a broken user ``template`` (a
    ConfigError) leaves every published file as it was instead of a half-updated set.
    """
    out_dir = Path(out_dir)
    rendered = {
        "atom.xml": render_atom(feed),
        "rss.xml": render_rss(feed),
        "feed.json": render_json_feed(feed),
        HTML_FILE: _render_html(feed, template),
    }
    written: list[Path] = []
    for name in (*OUTPUT_FILES, HTML_FILE):
        path = out_dir / name
        if write_atomic(path, rendered[name]):
            written.append(path)
    return written


def _render_html(feed: OutputFeed, template: Path | None) -> bytes:
    """The page, with Jinja2 imported only when a page is rendered (not by every command)."""
    from .html import render_html

    return render_html(feed, template)
