"""A feed read from a local file (file://): its mtime plays the role of Last-Modified."""

from __future__ import annotations

import email.utils
import stat as stat_module
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from requests.structures import CaseInsensitiveDict

from aggregator.errors import FetchError
from aggregator.types import FetchResult

# A local file has no Content-Type header; its name is the best hint feedparser can get.
FILE_TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".rdf": "application/rdf+xml",
    ".xml": "application/xml",
    ".json": "application/feed+json",
    ".html": "text/html",
    ".htm": "text/html",
}


def fetch_file(url: str, *, last_modified: str | None, max_body_bytes: int) -> FetchResult:
    """Read a local feed file; its mtime plays the role of Last-Modified."""
    started = time.monotonic()
    path = Path(url2pathname(unquote(urlsplit(url).path)))
    try:
        stat = path.stat()
        if not stat_module.S_ISREG(stat.st_mode):  # /dev/zero, a FIFO: endless or blocking
            raise FetchError(f"not a regular file: {path}")
        modified = email.utils.format_datetime(
            datetime.fromtimestamp(int(stat.st_mtime), tz=UTC), usegmt=True
        )
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict({"Last-Modified": modified})
        if path.suffix.lower() in FILE_TYPES:
            headers["Content-Type"] = FILE_TYPES[path.suffix.lower()]
        if last_modified == modified:
            return FetchResult(304, url, headers, None, elapsed=time.monotonic() - started)
        if stat.st_size > max_body_bytes:
            raise FetchError(
                f"body too large: {stat.st_size:,} bytes exceeds the {max_body_bytes:,}-byte limit"
            )
        with path.open("rb") as file:  # the file may grow after stat(): read under the cap
            body = file.read(max_body_bytes + 1)
        if len(body) > max_body_bytes:
            raise FetchError(f"body too large: more than {max_body_bytes:,} bytes (limit)")
    except FileNotFoundError as e:
        raise FetchError(f"file not found: {path}") from e
    except OSError as e:
        raise FetchError(f"cannot read {path}: {e.strerror or e}") from e
    return FetchResult(200, url, headers, body, elapsed=time.monotonic() - started)
