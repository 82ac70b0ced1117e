"""The loopback feed server of bench/feeds_bench.py, run as its own process.

    python bench/_feedserver.py CORPUS_DIR [--port 0]

Serves CORPUS_DIR/base/feeds/*.xml at /feeds/NAME.xml (from memory, gzip precomputed) with a
strong ETag, Last-Modified and 304 answers to If-None-Match / If-Modified-Since, gzip when the
client accepts it. Prints its port on the first line of stdout once it is listening.

Control endpoints (not counted):
- GET /_control/stats            the request counters since the last reset, as JSON
- GET /_control/reset            zero the counters (returns the previous ones)
- GET /_control/corpus?name=N    serve "base" or "mutated" (mutated/ overlays base/)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LAST_MODIFIED = {
    "base": "Sun, 01 Nov 2026 12:00:00 GMT",
    "mutated": "Sun, 01 Nov 2026 14:00:00 GMT",
}


@dataclass(frozen=True, slots=True)
class Document:
    body: bytes
    gzipped: bytes
    etag: str  # the hash, without quotes
    last_modified: str
    content_type: str


def load(root: Path, name: str) -> dict[str, Document]:
    documents = {}
    for path in sorted((root / name / "feeds").glob("*.xml")):
        body = path.read_bytes()
        kind = "application/rss+xml" if b"<rss" in body[:300] else "application/atom+xml"
        documents[f"/feeds/{path.name}"] = Document(
            body,
            gzip.compress(body, compresslevel=6, mtime=0),
            hashlib.sha1(body).hexdigest()[:20],
            LAST_MODIFIED[name],
            f"{kind}; charset=utf-8",
        )
    return documents


class State:
    def __init__(self, root: Path) -> None:
        self.base = load(root, "base")
        self.mutated = {**self.base, **load(root, "mutated")}
        self.current = self.base
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def reset(self) -> dict[str, int]:
        with self.lock:
            previous, self.counts = self.counts, {}
        return previous


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (40 ms a response on Linux), which would dwarf the real work.
    disable_nagle_algorithm = True
    server: FeedServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server.state.count("connections")  # TCP connections opened (keep-alive reuse)

    def do_GET(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        if parts.path.startswith("/_control/"):
            self._control(state, parts.path, parse_qs(parts.query))
            return
        document = state.current.get(parts.path)
        if document is None:
            state.count("404")
            self._send(404, b"not found", {"Content-Type": "text/plain"})
            return
        use_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        etag = f'"{document.etag}-gz"' if use_gzip else f'"{document.etag}"'
        headers = {
            "ETag": etag,
            "Last-Modified": document.last_modified,
            "Cache-Control": "max-age=60",
            "Vary": "Accept-Encoding",
        }
        if self._not_modified(document):
            state.count("304")
            self._send(304, b"", headers)
            return
        body = document.gzipped if use_gzip else document.body
        headers["Content-Type"] = document.content_type
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        state.count("200")
        state.count("bytes", len(body))
        self._send(200, body, headers)

    def _not_modified(self, document: Document) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/").strip('"') for t in inm.split(",")}
            return bool(tags & {document.etag, f"{document.etag}-gz", "*"})
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                return parsedate_to_datetime(document.last_modified) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False

    def _control(self, state: State, path: str, query: dict[str, list[str]]) -> None:
        if path == "/_control/stats":
            with state.lock:
                answer: object = dict(state.counts)
        elif path == "/_control/reset":
            answer = state.reset()
        elif path == "/_control/corpus":
            name = query.get("name", ["base"])[0]
            if name not in ("base", "mutated"):
                self._send(400, b"unknown corpus", {"Content-Type": "text/plain"})
                return
            state.current = state.mutated if name == "mutated" else state.base
            answer = {"corpus": name}
        else:
            self._send(404, b"unknown control", {"Content-Type": "text/plain"})
            return
        self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: State) -> None:
        super().__init__(address, Handler)
        self.state = state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = FeedServer(("127.0.0.1", args.port), State(args.root))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
