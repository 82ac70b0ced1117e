"""The outputs as validators and clients see them (issue 14, "Validator and client findings").

atom.xml and rss.xml go through the W3C Feed Validator's own checker (../shared/tools/
validate-feed, offline), which must report 0 errors and 0 warnings; feed.json, which it does
not read, is checked against the JSON Feed 1.1 text. Two kinds of input: the offline example
of the README, run by the real CLI, and a sample of the real-world corpus in ../shared/corpus
served from a loopback server. Without ../shared these tests skip, saying why (CI must have it).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import SHARED, VALIDATOR, need_shared, run_cli, run_validator, wait_until

from aggregator.config import load_config
from aggregator.pipeline import update, warn_without_base_url
from aggregator.render import render_atom, render_rss
from aggregator.types import OutputEntry, OutputFeed, SourceFeed

ROOT = Path(__file__).resolve().parents[1]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_SUMMARY = re.compile(r": feed type \S+, (\d+) errors, (\d+) warnings$")


def validate(path: Path, published_at: str) -> tuple[int, int, str]:
    """Run the W3C checker on one file as if fetched from ``published_at``.

    Returns (errors, warnings, its report). ``--base`` makes it compare rel="self" with the
    place the file is published, as the online service does.
    """
    result = run_validator(path, base=published_at, timeout=300)
    lines = result.stdout.strip().splitlines()
    summary = _SUMMARY.search(lines[-1]) if lines else None
    assert summary, f"no verdict from the validator:\n{result.stdout}{result.stderr}"
    return int(summary.group(1)), int(summary.group(2)), result.stdout


def _http(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def json_feed_problems(doc: Any, feed_url: str) -> list[str]:
    """What JSON Feed 1.1 (https://jsonfeed.org/version/1.1) says is wrong, or missing though
    recommended, in ``doc``; also any local file:// path, which is nobody's business."""
    problems = []
    if not isinstance(doc, dict):
        return ["not an object"]
    if doc.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append(f"version {doc.get('version')!r}")
    if not isinstance(doc.get("title"), str) or not doc["title"].strip():
        problems.append("no title")
    if not _http(doc.get("home_page_url")):
        problems.append(f"home_page_url {doc.get('home_page_url')!r}")
    if doc.get("feed_url") != feed_url:
        problems.append(f"feed_url {doc.get('feed_url')!r}, published at {feed_url}")
    items = doc.get("items")
    if not isinstance(items, list):
        return [*problems, "items is not a list"]
    ids = [item.get("id") for item in items]
    if len(set(ids)) != len(ids):
        problems.append("duplicate item ids")
    for n, item in enumerate(items):
        where = f"items[{n}]"
        if not isinstance(item.get("id"), str) or not item["id"]:
            problems.append(f"{where}: id {item.get('id')!r}")
        if not (item.get("content_html") or item.get("content_text")):
            problems.append(f"{where}: neither content_html nor content_text")
        for key in ("url", "external_url", "image", "banner_image"):
            if key in item and not _http(item[key]):
                problems.append(f"{where}: {key} {item[key]!r}")
        for key in ("date_published", "date_modified"):
            if key in item and not RFC3339.match(str(item[key])):
                problems.append(f"{where}: {key} {item[key]!r}")
        for author in item.get("authors", []):
            if not isinstance(author, dict) or not any(author.get(k) for k in ("name", "url")):
                problems.append(f"{where}: author {author!r}")
        for attachment in item.get("attachments", []):
            if not _http(attachment.get("url")) or not attachment.get("mime_type"):
                problems.append(f"{where}: attachment {attachment!r}")
    local = [url for url in _urls(doc) if url.lower().startswith("file:")]
    if local:
        problems.append(f"local paths published: {local[:3]}")
    return problems


def _urls(node: Any) -> Iterator[str]:
    """Every URL-valued member (``url``, ``feed_url``, ``home_page_url``...), at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key.endswith("url") or key in ("image", "icon")):
                yield value
            else:
                yield from _urls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _urls(value)


def check_outputs(out: Path, base_url: str) -> dict[str, tuple[int, int, str]]:
    """Validate atom.xml and rss.xml as published under ``base_url``; feed.json by the spec."""
    verdicts = {name: validate(out / name, base_url + name) for name in ("atom.xml", "rss.xml")}
    doc = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    problems = json_feed_problems(doc, base_url + "feed.json")
    verdicts["feed.json"] = (len(problems), 0, "\n".join(problems))
    return verdicts


def assert_valid(verdicts: dict[str, tuple[int, int, str]]) -> None:
    bad = {
        name: report for name, (errors, warnings, report) in verdicts.items() if errors or warnings
    }
    assert not bad, "\n\n".join(f"{name}:\n{report}" for name, report in bad.items())


# ---------------------------------------------------------------- (a) the offline example

EXAMPLE = ROOT / "examples" / "offline"


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    """A copy of examples/offline (its db/ and output/ would land in the checkout)."""
    copy = tmp_path / "offline"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("db", "output"))
    yield copy


def test_the_offline_example_is_valid_where_aggregator_serve_publishes_it(example: Path) -> None:
    """README: `aggregator --config examples/offline/feeds.yaml update`, then `serve`."""
    config = load_config(example / "feeds.yaml")
    assert config.output.base_url == "http://127.0.0.1:8080/"  # serve's default address
    result = run_cli("--config", "feeds.yaml", "update", cwd=example, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "base_url" not in result.stderr  # nothing to warn about: the example sets it
    verdicts = check_outputs(example / "output", config.output.base_url)
    assert_valid(verdicts)


def test_without_base_url_update_says_so_once_and_the_feeds_name_no_self(example: Path) -> None:
    config_path = example / "feeds.yaml"
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(re.sub(r"(?m)^  base_url: .*\n", "", text), encoding="utf-8")
    result = run_cli("--config", "feeds.yaml", "update", cwd=example, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("output.base_url is not set") == 1, result.stderr
    out = example / "output"
    assert 'rel="self"' not in (out / "atom.xml").read_text(encoding="utf-8")
    # The validator says what is missing, and nothing else: the self link, in both.
    for name, missing in (("atom.xml", "MissingSelf"), ("rss.xml", "MissingAtomSelfLink")):
        errors, warnings, report = validate(out / name, "http://127.0.0.1:8080/" + name)
        assert (errors, warnings) == (0, 1) and missing in report, report
    rebuilt = run_cli("--config", "feeds.yaml", "build", cwd=example, timeout=120)
    assert rebuilt.returncode == 0 and "output.base_url is not set" in rebuilt.stderr


def test_the_service_warns_once_however_often_it_rebuilds(
    example: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(example / "feeds.yaml")
    assert not warn_without_base_url(config)  # base_url is set: nothing to say
    unset = replace(config, output=replace(config.output, base_url=None))
    with caplog.at_level("WARNING", logger="aggregator.pipeline"):
        assert warn_without_base_url(unset)
        assert not warn_without_base_url(unset)
    assert [r.getMessage().count("base_url") for r in caplog.records] == [1]


# ---------------------------------------------------------------- (b) real-world feeds

CORPUS = SHARED / "corpus"
PUBLISHED_AT = "https://news.example.org/feeds/"
PER_CATEGORY = 3  # files of each corpus category: 56 files, some 250 merged items, 2 s


@pytest.fixture(scope="module")
def corpus_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded sample of every category of the corpus, merged by the real pipeline.

    Most files are served from a loopback server as a publisher would; every fourth is read
    as a file:// feed, whose local path must not be published.
    """
    need_shared(CORPUS / "MANIFEST.tsv", "the feed corpus")
    from test_corpus import load_tally

    tally = load_tally()
    files = tally.stratified_sample(tally.load_manifest(CORPUS), PER_CATEGORY)
    work = tmp_path_factory.mktemp("corpus-sample")
    with tally.CorpusServer() as server:
        lines = []
        for n, cf in enumerate(files):
            if n % 4 == 3:
                url = (CORPUS / cf.rel).as_uri()
            else:
                body = (CORPUS / cf.rel).read_bytes()
                server.routes[f"/{n}"] = (body, tally.served_headers(cf, body))
                url = server.url(f"/{n}")
            lines.append(f"  - url: {json.dumps(url)}\n    name: f{n}")
        (work / "feeds.yaml").write_text(
            "database: db/sample.db\n"
            "output:\n  dir: out\n  title: Corpus sample, merged\n"
            f"  id: tag:corpus.invalid,2026:sample\n  base_url: {PUBLISHED_AT}\n"
            "  max_entries: 100000\n"
            "defaults:\n  timeout: 10s\n  allow_private_addresses: true\n"
            "feeds:\n" + "\n".join(lines) + "\n",
            encoding="utf-8",
        )
        update(load_config(work / "feeds.yaml"))
    return work / "out"


@pytest.mark.parametrize("name", ["atom.xml", "rss.xml", "feed.json"])
def test_a_merged_sample_of_real_feeds_is_valid(corpus_outputs: Path, name: str) -> None:
    if name == "feed.json":
        doc = json.loads((corpus_outputs / name).read_text(encoding="utf-8"))
        assert len(doc["items"]) > 200  # the sample really was merged
        problems = json_feed_problems(doc, PUBLISHED_AT + name)
        assert not problems, "\n".join(problems)
        return
    errors, warnings, report = validate(corpus_outputs / name, PUBLISHED_AT + name)
    assert (errors, warnings) == (0, 0), report


def test_no_output_publishes_a_local_path(corpus_outputs: Path) -> None:
    """Every fourth feed of the sample was read from disk (file://): its path is nowhere."""
    for name in ("atom.xml", "rss.xml", "feed.json", "index.html"):
        text = (corpus_outputs / name).read_text(encoding="utf-8")
        assert str(CORPUS) not in text, name
        assert not re.search(r"""(href|src|url)=["']file:""", text, re.I), name


# ---------------------------------------------------------------- what real feeds hold, one by one


def _entry(n: int, **fields: Any) -> OutputEntry:
    values: dict[str, Any] = {
        "id": f"tag:valid.example,2026:{n}",
        "title": f"Item {n}",
        "link": f"https://valid.example/{n}",
        "summary": None,
        "content": f"<p>Body {n}</p>",
        "published": T0 - timedelta(hours=n),
        "updated": T0 - timedelta(hours=n),
        "source": SourceFeed(id="tag:valid.example,2026:src", title="Src", url=SRC_URL),
    }
    values.update(fields)
    return OutputEntry(**values)


SRC_URL = "https://valid.example/feed.xml"
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TRICKY = {
    # NotBlank: an untitled item is titled by its text, or "(no text)"
    "untitled": _entry(1, title="", content="<p>A long first sentence, " + "word " * 30 + "</p>"),
    "untitled, no text": _entry(2, title=" ", content=None),
    "no text, no link": _entry(11, content=None, link=None),
    # ContainsUndeclaredHTML / ContainsHTML: text a careless reader would take for markup
    "entity-like title": _entry(3, title="alpha&omega", content=None, summary=None),
    "tag-like title": _entry(4, title="Why <b> is not <strong>"),
    "ampersand title": _entry(5, title="AT&T & R&D <3"),
    # InvalidIRI, UriNotIri, InvalidUriChar
    "IRI link": _entry(6, link="http://www.dw.de/原军委副主席/a-18317576?maca=chi-rss"),
    "bracketed link": _entry(7, link="https://valid.example/item[0].link"),
    # DuplicateUpdated: three items stamped in the same second (one fetch found them undated)
    **{f"same second {n}": _entry(n, published=T0, updated=T0) for n in (8, 9, 10)},
}


@pytest.mark.parametrize("render", ["atom", "rss"])
def test_what_real_feeds_hold_renders_valid(tmp_path: Path, render: str) -> None:
    name, renderer = {"atom": ("atom.xml", render_atom), "rss": ("rss.xml", render_rss)}[render]
    feed = OutputFeed(
        id="tag:valid.example,2026:merged",
        title="Merged & <Mixed>",
        updated=T0,
        entries=tuple(TRICKY.values()),
        base_url=PUBLISHED_AT,
    )
    (tmp_path / name).write_bytes(renderer(feed))
    errors, warnings, report = validate(tmp_path / name, PUBLISHED_AT + name)
    assert (errors, warnings) == (0, 0), report


def test_served_by_aggregator_serve_the_feeds_are_valid_where_they_are_fetched(
    example: Path,
) -> None:
    """The validator fetches the feeds from `aggregator serve` itself, as the online service
    would, so their self links are checked against where they really are; the page they
    name is the one serve shows."""
    need_shared(VALIDATOR, "the feed validator")
    pytest.importorskip("html5lib", reason="the feed validator needs html5lib")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/"
    config_path = example / "feeds.yaml"
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace("http://127.0.0.1:8080/", base), encoding="utf-8")
    assert run_cli("--config", "feeds.yaml", "update", cwd=example, timeout=120).returncode == 0
    command = ["--config", "feeds.yaml", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregator", *command],
        cwd=example,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: _answers(base), timeout=20), "aggregator serve did not start"
        for name in ("atom.xml", "rss.xml"):
            result = run_validator(base + name)
            assert result.stdout.rstrip().endswith("0 errors, 0 warnings"), result.stdout
        with urllib.request.urlopen(base, timeout=10) as page:  # the feeds' site link
            assert page.headers.get_content_type() == "text/html"
            assert b"Offline demo, merged" in page.read()
    finally:
        server.terminate()
        server.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
