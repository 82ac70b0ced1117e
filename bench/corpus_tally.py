"""Run the real pipeline over the real-world feed corpus and tally what became of every file.

    python bench/corpus_tally.py [--corpus DIR] [--sample N] [--category C ...] [--show-errors]

Every file of ``../shared/corpus/feeds`` (listed in MANIFEST.tsv) is served from a loopback HTTP
server as a publisher would serve it, a feeds.yaml listing all of them is written to a temporary
folder, and ``aggregator.pipeline.update`` polls them all in one run. Then, for each file:

- the outcome: "ingested N entries" (N = rows in ``sources`` for its feed, so an entry merged
  by URL with another feed's copy still counts) or the per-feed error in ``feeds.last_error``;
- the expectation, computed without our parser: feedparser 6 on the same bytes and headers
  (JSON Feed: ``json``), less the entries that carry nothing and the exact repeats; a
  document feedparser finds no feed in is expected to be an error unless it is a well-formed
  feed document with no entries (the exact rules: ``expected_entries``).

It prints a tally by manifest category, the files whose outcome differs from the expectation,
checks that the merged outputs stay valid (atom.xml against the RFC 4287 RELAX NG schema,
feedparser bozo 0 on atom.xml and rss.xml, feed.json parses) and runs PRAGMA integrity_check.
A watchdog dumps every thread's stack and exits if the whole run exceeds ``--deadline``.

How a file is served: Content-Type from its extension and manifest format (.json
application/feed+json, .html text/html, .atom/.rss/.rdf and .xml by format as
application/atom+xml, application/rss+xml or application/rdf+xml, other XML application/xml,
anything else application/octet-stream), without a charset so the XML declaration or BOM speaks;
except that the feedparser test files' own ``Header: Content-type:`` line (the header their test
serves them with) is honoured, and a gzip file is served with ``Content-Encoding: gzip``.

tests/test_corpus.py imports this module and runs the same check.
"""

from __future__ import annotations

import argparse
import csv
import faulthandler
import gzip
import html
import io
import json
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import feedparser
import lxml.html
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from aggregator.config import load_config  # noqa: E402
from aggregator.pipeline import update  # noqa: E402
from aggregator.types import PollResult  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"
ATOM_SCHEMA = SHARED / "feed-schemas" / "atom.rng"
DEFAULT_DEADLINE = 600.0  # seconds for the whole run before the watchdog gives up

_EXTENSION_TYPES = {
    ".json": "application/feed+json",
    ".html": "text/html",
    ".htm": "text/html",
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".rdf": "application/rdf+xml",
}
_HEADER_LINE = re.compile(rb"^Header:\s*Content-type:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_TAG = re.compile(r"<[^>]*>")
_FEED_ROOTS = frozenset({"rss", "rdf", "feed", "channel"})  # RSS, RDF, Atom, CDF / RSS 1.1
_HIDDEN = ("script", "style", "svg", "math")  # what a sanitizer drops with its contents
# UTF-16 without a BOM is told by its NUL bytes (XML 1.0 appendix F); the corpus has one such
# file with no XML declaration either, which feedparser cannot read.
_UNMARKED = (
    (re.compile(rb"\x00<\x00[^?\x00]"), "utf-16-be"),
    (re.compile(rb"<\x00[^?\x00]\x00"), "utf-16-le"),
)


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True, slots=True)
class CorpusFile:
    """One manifest row."""

    rel: str  # feeds/owner+repo/name
    category: str
    format: str
    tags: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


def load_manifest(corpus: Path = CORPUS) -> list[CorpusFile]:
    """Every row of MANIFEST.tsv whose file exists, in manifest order."""
    files = []
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if (corpus / row["file"]).is_file():
                tags = tuple(t for t in row["tags"].split(",") if t and t != "-")
                files.append(CorpusFile(row["file"], row["category"], row["format"], tags))
    return files


def stratified_sample(
    files: Sequence[CorpusFile], per_category: int, whole: Iterable[str] = (), seed: int = 7
) -> list[CorpusFile]:
    """Up to ``per_category`` files of every category (all of those in ``whole``), seeded."""
    keep_all = set(whole)
    groups: dict[str, list[CorpusFile]] = defaultdict(list)
    for f in files:
        groups[f.category].append(f)
    rng = random.Random(seed)
    chosen: set[str] = set()
    for category, members in sorted(groups.items()):
        if category in keep_all or len(members) <= per_category:
            chosen.update(m.rel for m in members)
        else:
            chosen.update(m.rel for m in rng.sample(members, per_category))
    return [f for f in files if f.rel in chosen]


def served_headers(cf: CorpusFile, body: bytes) -> dict[str, str]:
    """The headers a publisher would serve this file with (see the module docstring)."""
    suffix = Path(cf.name).suffix.lower()
    fmt = cf.format.lower()
    declared = _HEADER_LINE.search(body[:2048]) if b"Header:" in body[:2048] else None
    if declared:
        content_type = declared.group(1).decode("latin-1")
    elif suffix in (".xml", ".atom", ".rss", ".rdf"):
        if fmt.startswith("atom"):
            content_type = "application/atom+xml"
        elif fmt in ("rss1.0", "rss1.1", "rdf-other"):
            content_type = "application/rdf+xml"
        elif fmt.startswith("rss"):
            content_type = "application/rss+xml"
        else:
            content_type = _EXTENSION_TYPES.get(suffix, "application/xml")
    else:
        content_type = _EXTENSION_TYPES.get(suffix, "application/octet-stream")
    headers = {"Content-Type": content_type}
    if body.startswith(b"\x1f\x8b"):
        headers["Content-Encoding"] = "gzip"
    return headers


# ---------------------------------------------------------------- the publisher


class CorpusServer:
    """A loopback server: path -> (body, headers), HTTP/1.1 with Content-Length."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits[self.path] += 1
                body, headers = server.routes.get(
                    self.path, (b"not found", {"Content-Type": "text/plain"})
                )
                self.send_response(200 if self.path in server.routes else 404)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> CorpusServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- the expectation


@dataclass(frozen=True, slots=True)
class Expectation:
    entries: int | None  # None: the file is expected to end as a per-feed error
    raw: int = 0  # what the parser yields before dropping empties and repeats
    empty: int = 0
    repeats: int = 0
    note: str = ""


def _text(value: object) -> str:
    """Visible text of a title-like string: tags dropped, entities decoded, whitespace folded."""
    return " ".join(html.unescape(_TAG.sub("", str(value or ""))).split())


def _web(base: str, link: object) -> str:
    if not isinstance(link, str) or not link.strip():
        return ""
    try:
        resolved = urljoin(base, link.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return ""
    return resolved if parts.scheme in ("http", "https") and parts.netloc else ""


def _shows(value: object, base: str, is_html: bool = True) -> bool:
    """Whether a text or HTML field shows a reader anything: text, or an image with a source.

    HTML is read with lxml.html; scripts, styles, SVG and MathML islands show nothing.
    """
    text = str(value or "")
    if not text.strip():
        return False
    if not is_html:
        return True
    try:
        root = lxml.html.fragment_fromstring(text, create_parent="div")
    except (etree.ParserError, ValueError):
        return bool(_text(text))
    for element in list(root.iter(*_HIDDEN)):
        element.drop_tree()
    if any(_web(base, img.get("src")) for img in root.iter("img")):
        return True
    return bool(str(root.xpath("string()")).strip())


def _count(items: Iterable[tuple[str, str, str, str, bool]]) -> tuple[int, int, int]:
    """(raw, empty, repeats) from (id, title, link, text, shows) tuples."""
    raw = empty = repeats = 0
    seen: set[tuple[str, str, str, str]] = set()
    for ident, title, link, text, shows in items:
        raw += 1
        if not (ident or title or link or shows):
            empty += 1
            continue
        # An exact repeat: the same id, title and link (and, with neither id nor link, the
        # same text: those entries are told apart by a hash of their content).
        key = (ident, title, link, "" if (ident or link) else text)
        if key in seen:
            repeats += 1
            continue
        seen.add(key)
    return raw, empty, repeats


def _root_name(body: bytes) -> str | None:
    """The local name of the root element of a well-formed document, lowercased."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except (etree.Error, ValueError):
        return None
    return etree.QName(root).localname.lower() if root is not None else None


def expected_entries(body: bytes, url: str, headers: Mapping[str, str]) -> Expectation:
    """What a correct ingest yields, computed with feedparser / json, not with aggregator.parse.

    - XML: feedparser 6 on the same bytes and Content-Type, after dropping whitespace before
      the first tag (a blank line before the XML declaration is the publisher's template
      talking, and every feed reader skips it) and decoding UTF-16 that has neither a BOM nor
      an XML declaration (as XML 1.0 appendix F tells it from the NUL bytes). A document in
      which feedparser finds no version and no entries is a feed with 0 entries if it is
      well-formed and its root is a feed element (rss, RDF, feed, channel: RSS 1.1 and CDF,
      which feedparser gives no version), and a per-feed error otherwise.
    - JSON Feed: ``json``; ``items`` that are objects.
    - An entry counts unless it has no id, no visible title, no http(s) link, no enclosure and
      no field that shows something (visible text or an image: see ``_shows``); entries that
      repeat an earlier (id, title, link) of the same document count once.
    """
    content_type = headers.get("Content-Type", "")
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"{" or ("json" in content_type and start != b"<"):
        return _expected_json(body, url)
    if start == b"<":
        bom = b"\xef\xbb\xbf" if body.startswith(b"\xef\xbb\xbf") else b""
        body = bom + body[len(bom) :].lstrip(b" \t\r\n")
    for marker, codec in _UNMARKED:
        if marker.match(body) and "charset" not in content_type.lower():
            body = body.decode(codec, errors="replace").encode("utf-8")
            content_type = content_type.split(";")[0] + "; charset=utf-8"
            break
    d = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-type": content_type, "content-location": url},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not d.get("version") and not d.get("entries"):
        root = _root_name(body)
        if root in _FEED_ROOTS and not d.get("bozo"):
            return Expectation(0, note=f"an empty <{root}> feed")
        return Expectation(None, note="feedparser finds no feed")

    def one(e: Mapping[str, Any]) -> tuple[str, str, str, str, bool]:
        title_base = (e.get("title_detail") or {}).get("base") or url
        fields = [c for c in [*(e.get("content") or []), e.get("summary_detail")] if c]
        shows = any(
            _shows(c.get("value"), c.get("base") or url, "plain" not in str(c.get("type")))
            for c in fields
            if str(c.get("type") or "text/html").startswith(("text/", "application/xhtml"))
        )
        shows = shows or any(
            _web(url, x.get("href") or x.get("url"))
            for x in [*(e.get("enclosures") or []),
                      *(lk for lk in e.get("links") or [] if lk.get("rel") == "enclosure")]
        )  # fmt: skip
        return (
            " ".join(str(e.get("id") or "").split()),
            _text(e.get("title")),
            _web(title_base, e.get("link")),
            " ".join(str(c.get("value") or "") for c in fields),
            shows,
        )

    raw, empty, repeats = _count(one(e) for e in d.entries)
    return Expectation(raw - empty - repeats, raw, empty, repeats)


def _expected_json(body: bytes, url: str) -> Expectation:
    try:
        doc = json.loads(body)
    except ValueError:
        return Expectation(None, note="invalid JSON")
    if not isinstance(doc, dict):
        return Expectation(None, note="JSON but not an object")
    items = doc.get("items")
    version = str(doc.get("version") or "")
    if "jsonfeed.org/version/" not in version and not isinstance(items, list):
        return Expectation(None, note="JSON but no JSON Feed version or items")
    if not isinstance(items, list):
        return Expectation(0, note="JSON Feed without items")

    def s(v: object) -> str:
        return v if isinstance(v, str) else ""

    def one(it: Mapping[str, Any]) -> tuple[str, str, str, str, bool]:
        ident = it.get("id")
        ident_text = "" if isinstance(ident, bool) or ident is None else str(ident).strip()
        if isinstance(ident, dict | list):
            ident_text = ""
        link = _web(url, s(it.get("url"))) or _web(url, s(it.get("external_url")))
        base = link or url
        atts = it.get("attachments")
        shows = (
            _shows(s(it.get("content_html")), base)
            or _shows(s(it.get("content_text")), base, is_html=False)
            or _shows(s(it.get("summary")), base, is_html=False)
            or (
                isinstance(atts, list)
                and any(isinstance(a, dict) and _web(url, s(a.get("url"))) for a in atts)
            )
        )
        text = s(it.get("content_html")) + s(it.get("content_text")) + s(it.get("summary"))
        return ident_text, _text(s(it.get("title"))), link, text, shows

    raw, empty, repeats = _count(one(it) for it in items if isinstance(it, dict))
    return Expectation(raw - empty - repeats, raw, empty, repeats)


# ---------------------------------------------------------------- the run


@dataclass(slots=True)
class Outcome:
    file: CorpusFile
    feed: str
    expected: Expectation
    ingested: int | None = None  # None: ended as an error
    error: str | None = None
    warning: str | None = None
    format: str | None = None
    seconds: float = 0.0
    fetches: int = 0  # GET requests the server saw for this file

    @property
    def ok(self) -> bool:
        if self.ingested is None:
            return self.expected.entries is None and bool(self.error)
        return self.expected.entries == self.ingested

    @property
    def reason(self) -> str:
        return error_reason(self.error or "")


@dataclass(slots=True)
class Report:
    outcomes: list[Outcome]
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)  # file -> "ok" or the problem
    integrity: str = ""
    output_entries: int = 0
    exception: str | None = None

    @property
    def mismatches(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def outputs_ok(self) -> bool:
        return bool(self.outputs) and all(v == "ok" for v in self.outputs.values())


def error_reason(error: str) -> str:
    """A short class of a per-feed error, for the tally."""
    text = error.lower()
    for needle, reason in [
        ("html page", "html page"),
        ("opml", "opml"),
        ("invalid json", "invalid json"),
        ("no rss, atom or json feed", "no feed found"),
        ("broken <", "broken feed"),
        ("json", "json, not a feed"),
        ("feedparser could not read", "unreadable"),
        ("empty body", "empty body"),
        ("could not store", "storage error"),
        ("timed out", "timeout"),
        ("too large", "too large"),
        ("http ", "http error"),
    ]:
        if needle in text:
            return reason
    return text.split(":", 1)[0][:40] or "error"


def _feed_name(index: int, cf: CorpusFile) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", Path(cf.name).stem.lower()).strip("-")[-40:]
    return f"{index:04d}-{slug}"


def run_corpus(
    files: Sequence[CorpusFile],
    workdir: Path,
    *,
    corpus: Path = CORPUS,
    max_entries: int = 1_000_000,
    workers: int = 8,
    schema: Path | None = ATOM_SCHEMA,
    on_result: Callable[[PollResult], None] | None = None,
) -> Report:
    """Serve ``files``, poll them all with the real pipeline, compare with the expectation."""
    outcomes: dict[str, Outcome] = {}
    paths: dict[str, str] = {}  # feed name -> served path
    with CorpusServer() as server:
        lines = []
        for index, cf in enumerate(files):
            body = (corpus / cf.rel).read_bytes()
            headers = served_headers(cf, body)
            path = f"/{index:04d}/{quote(cf.name)}"
            server.routes[path] = (body, headers)
            name = _feed_name(index, cf)
            paths[name] = path
            outcomes[name] = Outcome(cf, name, expected_entries(body, server.url(path), headers))
            lines.append(f"  - url: {json.dumps(server.url(path))}\n    name: {json.dumps(name)}")
        config_path = workdir / "feeds.yaml"
        config_path.write_text(
            "database: db/corpus.db\n"
            "output:\n  dir: out\n  title: Corpus, merged\n"
            "  id: tag:corpus.invalid,2026:merged\n"
            f"  max_entries: {max_entries}\n"
            "defaults:\n  timeout: 10s\n  connect_timeout: 5s\n"
            # One loopback server stands in for hundreds of publishers.
            f"  workers: {workers}\n  per_host: {workers}\n  max_body_size: 10MB\n"
            "feeds:\n" + "\n".join(lines) + "\n",
            encoding="utf-8",
        )
        config = load_config(config_path)
        durations: dict[str, float] = {}

        def seen(result: PollResult) -> None:
            durations[result.feed_name] = result.duration
            if on_result is not None:
                on_result(result)

        started = time.monotonic()
        exception = None
        try:
            update(config, on_result=seen)
        except Exception as e:  # the report says so; the test fails on it
            exception = f"{type(e).__name__}: {e}"
        seconds = time.monotonic() - started
        for name, path in paths.items():
            outcomes[name].fetches = server.hits[path]
    report = Report(list(outcomes.values()), seconds, exception=exception)
    _read_back(report, outcomes, config.database, durations)
    _check_outputs(report, config.output.dir, schema)
    return report


def _read_back(
    report: Report, outcomes: dict[str, Outcome], database: Path, durations: dict[str, float]
) -> None:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        counts = dict(
            db.execute("SELECT feed_id, count(*) FROM sources GROUP BY feed_id").fetchall()
        )
        for feed_id, name, last_error, warning, fmt, last_success in db.execute(
            "SELECT id, name, last_error, warning, format, last_success FROM feeds"
        ):
            outcome = outcomes.get(name)
            if outcome is None:
                continue
            outcome.seconds = durations.get(name, 0.0)
            if last_error is not None or last_success is None:
                outcome.error = last_error or "never polled"
            else:
                outcome.ingested = counts.get(feed_id, 0)
                outcome.warning, outcome.format = warning, fmt
        report.integrity = "; ".join(r[0] for r in db.execute("PRAGMA integrity_check"))
    finally:
        db.close()


def _check_outputs(report: Report, out: Path, schema: Path | None) -> None:
    """atom.xml against RELAX NG, atom.xml and rss.xml bozo-free, feed.json well formed."""
    atom, rss, jsonfeed = out / "atom.xml", out / "rss.xml", out / "feed.json"
    for path in (atom, rss):
        if not path.is_file():
            report.outputs[path.name] = "missing"
            continue
        d = feedparser.parse(path.read_bytes(), sanitize_html=False, resolve_relative_uris=False)
        problem = f"bozo: {d.get('bozo_exception')}" if d.get("bozo") else "ok"
        if path is atom:
            report.output_entries = len(d.entries)
            if problem == "ok" and schema is not None and schema.is_file():
                relaxng = etree.RelaxNG(etree.parse(str(schema)))
                doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False))
                if not relaxng.validate(doc):
                    problem = f"RELAX NG: {relaxng.error_log.last_error}"
            elif schema is not None and not schema.is_file():
                problem = f"{problem} (schema {schema} missing, not validated)"
        report.outputs[path.name] = problem
    try:
        doc = json.loads(jsonfeed.read_bytes())
        ok = isinstance(doc, dict) and isinstance(doc.get("items"), list)
        report.outputs[jsonfeed.name] = "ok" if ok else "not a JSON Feed"
    except (OSError, ValueError) as e:
        report.outputs[jsonfeed.name] = f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------- the tally


def tally(report: Report) -> str:
    rows = []
    by_category: dict[str, list[Outcome]] = defaultdict(list)
    for o in report.outcomes:
        by_category[o.file.category].append(o)
    header = ("category", "files", "ingested", "warned", "errors", "entries", "expected", "mism.")
    for category, group in sorted(by_category.items()):
        ingested = [o for o in group if o.ingested is not None]
        errors = Counter(o.reason for o in group if o.ingested is None)
        rows.append(
            (
                category,
                len(group),
                len(ingested),
                sum(1 for o in ingested if o.warning),
                sum(errors.values()),
                sum(o.ingested or 0 for o in ingested),
                sum(o.expected.entries or 0 for o in group),
                sum(1 for o in group if not o.ok),
                ", ".join(f"{r} {n}" for r, n in errors.most_common()),
            )
        )
    total = (
        "TOTAL",
        *(sum(r[i] for r in rows) for i in range(1, 8)),  # type: ignore[misc]
        ", ".join(
            f"{r} {n}"
            for r, n in Counter(
                o.reason for o in report.outcomes if o.ingested is None
            ).most_common()
        ),
    )
    widths = [max(len(str(r[i])) for r in [header, *rows, total]) for i in range(len(header))]
    lines = []
    for r in [header, *rows, total]:
        cells = [str(r[0]).ljust(widths[0])]
        cells += [str(r[i]).rjust(widths[i]) for i in range(1, len(header))]
        lines.append("  ".join(cells) + ("  " + str(r[8]) if len(r) > 8 and r[8] else ""))
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def describe(o: Outcome) -> str:
    got = f"ingested {o.ingested}" if o.ingested is not None else f"error: {o.error}"
    e = o.expected
    want = (
        f"expected {e.entries} (raw {e.raw}, empty {e.empty}, repeats {e.repeats})"
        if e.entries is not None
        else f"expected an error ({e.note})"
    )
    return f"{o.file.category:14} {o.file.rel}\n{'':15}{got}; {want}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--sample", type=int, metavar="N", help="N files per category at most")
    parser.add_argument("--category", action="append", help="only these categories")
    parser.add_argument("--max-entries", type=int, default=1_000_000, help="output.max_entries")
    parser.add_argument("--show-errors", action="store_true", help="list every per-feed error")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE, help="seconds")
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.tsv").is_file():
        print(
            f"corpus not found at {args.corpus}: it is test material beside the checkout"
            " (../shared; README: Test material)",
            file=sys.stderr,
        )
        return 2
    files = load_manifest(args.corpus)
    if args.category:
        files = [f for f in files if f.category in args.category]
    if args.sample:
        files = stratified_sample(files, args.sample)
    faulthandler.dump_traceback_later(args.deadline, exit=True)  # a hang is a failure too
    with tempfile.TemporaryDirectory(prefix="corpus-tally-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = run_corpus(files, workdir, corpus=args.corpus, max_entries=args.max_entries)
    faulthandler.cancel_dump_traceback_later()

    print(f"corpus {args.corpus}: {len(files)} files, one update() in {report.seconds:.1f}s")
    print()
    print(tally(report))
    slowest = sorted(report.outcomes, key=lambda o: -o.seconds)[:3]
    print("\nslowest feeds: " + ", ".join(f"{o.file.name} {o.seconds:.2f}s" for o in slowest))
    mismatches = report.mismatches
    print(f"\nmismatches ({len(mismatches)}):")
    for o in mismatches:
        print(describe(o))
    if args.show_errors:
        print("\nper-feed errors:")
        for o in report.outcomes:
            if o.ingested is None:
                print(f"{o.file.category:14} {o.file.rel}: {o.error}")
    print(f"\noutputs ({report.output_entries} entries in atom.xml):")
    for name, verdict in report.outputs.items():
        print(f"  {name}: {verdict}")
    print(f"  PRAGMA integrity_check: {report.integrity}")
    if report.exception:
        print(f"\nEXCEPTION escaped update(): {report.exception}")
    healthy = not report.exception and report.outputs_ok and report.integrity == "ok"
    return 0 if healthy and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
