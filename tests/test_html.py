"""index.html: structure, escaping, determinism, user templates, and a real headless browser."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import lxml.html
import pytest

from aggregator.errors import ConfigError
from aggregator.render import (
    HTML_FILE,
    OUTPUT_FILES,
    load_template,
    render_html,
    write_outputs,
)
from aggregator.types import Coverage, OutputEntry, OutputFeed, SourceFeed

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
REL = "noopener noreferrer nofollow"
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_OUTLET = 'Evil "><img src=x onerror=alert(1)>'

SRC_A = SourceFeed(
    id="tag:aggregator.invalid,2026:feed:1",
    title="Alpha News",
    url="https://alpha.example/feed.xml",
    link="https://alpha.example/",
    updated=T0,
)
SRC_B = SourceFeed(
    id="urn:uuid:6f1c1e9a-0000-4000-8000-000000000002",
    title="Beta & <Blog>",
    url="https://beta.example/rss",
    link=None,
)
SRC_C = SourceFeed(
    id="tag:c", title="Gamma Daily", url="https://gamma.example/atom", link="https://gamma.example/"
)
SRC_EVIL = SourceFeed(
    id="tag:evil", title=HOSTILE_OUTLET, url="https://evil.example/f", link="https://evil.example/"
)


def _entries() -> tuple[OutputEntry, ...]:
    """Newest first, over two UTC days: a story with coverage, a content-only entry, and more."""
    return (
        OutputEntry(
            id="https://alpha.example/posts/1",
            title="Storm hits the coast",
            link="https://alpha.example/posts/1",
            summary='<p>Summary <em>one</em> <a href="https://x.example/">x</a></p>',
            content="<p>The full story, far too long for the river.</p>",
            published=T0 + timedelta(hours=3),
            updated=T0 + timedelta(hours=4),
            source=SRC_A,
            authors=("Ann Author",),
            tags=("weather",),
            coverage=(
                Coverage(SRC_B, "Storm, as Beta told it", "https://beta.example/storm"),
                Coverage(SRC_C, "Gamma on the storm", "https://gamma.example/storm"),
                Coverage(SRC_EVIL, "no link here", None),
            ),
        ),
        OutputEntry(
            id="tag:aggregator.invalid,2026:entry:2",
            title="Content only",
            link="https://beta.example/2",
            summary=None,
            content="<p>Only <strong>content</strong></p>",
            published=T0,
            updated=T0,
            source=SRC_B,
        ),
        OutputEntry(
            id="tag:aggregator.invalid,2026:entry:3",
            title="Yesterday's news",
            link=None,
            summary=None,
            content=None,
            published=T0 - timedelta(days=1, hours=2),
            updated=T0 - timedelta(days=1),
            source=SRC_C,
        ),
    )


def _feed(**changes: object) -> OutputFeed:
    feed = OutputFeed(
        id="tag:aggregator.invalid,2026:merged",
        title="World news, merged",
        updated=T0 + timedelta(hours=4),
        entries=_entries(),
        link="https://news.example.org/",
        base_url="https://news.example.org/feeds/",
    )
    return replace(feed, **changes)  # type: ignore[arg-type]


def _hostile_feed() -> OutputFeed:
    evil = OutputEntry(
        id="tag:evil:1",
        title=HOSTILE_TITLE,
        link="https://evil.example/1",
        summary="<p>fine</p>",
        content=None,
        published=T0,
        updated=T0,
        source=SRC_EVIL,
        coverage=(Coverage(SRC_EVIL, HOSTILE_TITLE, "https://evil.example/2"),),
    )
    return _feed(entries=(evil, *_entries()))


def _tree(data: bytes) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(data.decode("utf-8"))


# ---------------------------------------------------------------- HTML5 conformance (a subset)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
VOID |= {"track", "wbr"}
HEAD_ONLY = {"meta", "title", "link", "style", "base"}
NOT_IN_P = {"p", "div", "section", "article", "header", "footer", "main", "nav", "ul", "ol"}
NOT_IN_P |= {"table", "pre", "blockquote", "figure", "hr", "h1", "h2", "h3", "h4", "h5", "h6"}


class _Checker(HTMLParser):
    """Flags what an HTML5 parser would have to repair or a validator would report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.stack: list[str] = []
        self.first: str | None = None  # the first token: must be the doctype
        self.titles = 0
        self.ids: set[str] = set()

    def _first(self, what: str) -> None:
        if self.first is None:
            self.first = what

    def handle_decl(self, decl: str) -> None:
        self._first(decl.lower())

    def handle_data(self, data: str) -> None:
        if data.strip():
            self._first("text")
            if not self.stack or self.stack[-1] in ("html", "head"):
                self.problems.append(f"stray text {data.strip()[:30]!r}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._first(tag)
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"duplicate attribute on <{tag}>")
        for name, value in attrs:
            if name == "id" and value is not None:
                if value in self.ids:
                    self.problems.append(f"duplicate id {value}")
                self.ids.add(value)
        inside = set(self.stack)
        if tag in HEAD_ONLY and "head" not in inside and tag != "style":
            self.problems.append(f"<{tag}> outside <head>")
        if "head" in inside and tag not in HEAD_ONLY:
            self.problems.append(f"<{tag}> inside <head>")
        if tag == "a" and "a" in inside:
            self.problems.append("nested <a>")
        if tag in NOT_IN_P and "p" in inside:
            self.problems.append(f"<{tag}> inside <p>")
        if tag == "title":
            self.titles += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.problems.append(f"self-closing non-void <{tag}/>")
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void <{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def assert_html5(data: bytes) -> None:
    text = data.decode("utf-8")  # strict: the page is declared UTF-8
    assert text.startswith("<!doctype html>\n")
    assert '<meta charset="utf-8">' in text[:1024]  # must be within the first 1024 bytes
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.first == "doctype html"
    assert checker.titles == 1
    assert checker.problems == []
    assert checker.stack == [], f"unclosed {checker.stack}"
    root = _tree(data)
    assert root.tag == "html" and root.get("lang") == "en"
    assert [child.tag for child in root] == ["head", "body"]
    assert root.find("head/title").text_content().strip()
    viewport = root.find("head/meta[@name='viewport']")
    assert viewport is not None and "width=device-width" in viewport.get("content")


# ---------------------------------------------------------------- the built-in page


def test_page_is_valid_html5_with_head_metadata() -> None:
    data = render_html(_feed())
    assert_html5(data)
    root = _tree(data)
    assert root.findtext("head/title") == "World news, merged"
    css = root.findtext("head/style")
    assert "max-width:42rem" in css and "prefers-color-scheme:dark" in css
    assert "system-ui" in css


def test_alternate_links_for_feed_discovery() -> None:
    root = _tree(render_html(_feed()))
    links = {
        link.get("type"): link.get("href") for link in root.findall("head/link[@rel='alternate']")
    }
    assert links == {
        "application/atom+xml": "atom.xml",
        "application/rss+xml": "rss.xml",
        "application/feed+json": "feed.json",
    }
    for link in root.findall("head/link[@rel='alternate']"):
        assert link.get("title").startswith("World news, merged (")


def test_each_entry_has_title_link_outlet_and_time() -> None:
    root = _tree(render_html(_feed()))
    articles = root.findall(".//article")
    assert len(articles) == 3
    first = articles[0]
    title_link = first.find("h3/a")
    assert title_link.text == "Storm hits the coast"
    assert title_link.get("href") == "https://alpha.example/posts/1"
    assert title_link.get("rel") == REL
    outlet = first.find(".//a[@class='outlet']")
    assert outlet.text == "Alpha News" and outlet.get("href") == "https://alpha.example/"
    assert outlet.get("rel") == REL
    time = first.find(".//p[@class='meta']/time")
    assert time.get("datetime") == "2026-11-25T12:00:00Z"
    assert time.text == "12:00 UTC" and time.get("title") == "25 Nov 2026, 12:00 UTC"
    # An outlet without a site and an entry without a link are text, not empty links.
    second, third = articles[1], articles[2]
    assert second.find(".//span[@class='outlet']").text == "Beta & <Blog>"
    assert third.find("h3/a") is None and third.findtext("h3") == "Yesterday's news"
    # Every link we make to another site is marked as such (the h1 is the operator's own site;
    # links inside summaries are the sanitizer's).
    ours = root.xpath("//a[starts-with(@href, 'http')][not(ancestor::h1)][not(ancestor::div)]")
    assert len(ours) == 6 and {a.get("rel") for a in ours} == {REL}


def test_newest_first_grouped_by_utc_day() -> None:
    root = _tree(render_html(_feed()))
    sections = root.findall(".//main/section")
    headings = [s.find("h2/time") for s in sections]
    assert [h.get("datetime") for h in headings] == ["2026-11-25", "2026-11-24"]
    assert [h.text for h in headings] == [
        "Wednesday, 25 November 2026",
        "Tuesday, 24 November 2026",
    ]
    assert [len(s.findall("article")) for s in sections] == [2, 1]
    titles = [a.findtext("h3/a") or a.findtext("h3") for a in root.iter("article")]
    assert titles == ["Storm hits the coast", "Content only", "Yesterday's news"]


def test_days_are_utc_whatever_the_input_offset() -> None:
    late = datetime(2026, 11, 25, 1, 30, tzinfo=timezone(timedelta(hours=5)))  # 24 Nov 20:30Z
    entry = replace(_entries()[2], published=late)
    root = _tree(render_html(_feed(entries=(entry,))))
    assert root.find(".//h2/time").get("datetime") == "2026-11-24"
    assert root.find(".//article//time").get("datetime") == "2026-11-24T20:30:00Z"


def test_also_reported_by_links_each_outlet_copy() -> None:
    root = _tree(render_html(_feed()))
    also = root.find(".//article/p[@class='also']")
    assert also.text_content().startswith("Also reported by: ")
    links = [(a.text, a.get("href"), a.get("title"), a.get("rel")) for a in also.iter("a")]
    assert links == [
        ("Beta & <Blog>", "https://beta.example/storm", "Storm, as Beta told it", REL),
        ("Gamma Daily", "https://gamma.example/storm", "Gamma on the storm", REL),
    ]
    assert also.text_content().endswith(", " + HOSTILE_OUTLET)  # no link: plain text
    assert len(root.findall(".//p[@class='also']")) == 1  # only the entry with coverage


def test_summary_preferred_and_sanitized_html_passes_through() -> None:
    root = _tree(render_html(_feed()))
    summaries = root.findall(".//div[@class='summary']")
    assert len(summaries) == 2  # the third entry has neither summary nor content
    first = summaries[0]
    assert first.find("p/em").text == "one"  # a <p> stays a <p>
    assert "full story" not in first.text_content()
    assert summaries[1].find("p/strong").text == "content"  # content when there is no summary


def test_hostile_text_is_escaped_and_inert() -> None:
    data = render_html(_hostile_feed())
    assert_html5(data)
    root = _tree(data)
    assert root.find(".//script") is None
    assert root.find(".//img") is None
    for el in root.iter():
        assert not [name for name in el.attrib if name.lower().startswith("on")], el.tag
    first = root.find(".//article")
    assert first.find("h3/a").text == HOSTILE_TITLE
    assert first.find(".//a[@class='outlet']").text == HOSTILE_OUTLET
    assert first.find(".//p[@class='also']/a").get("title") == HOSTILE_TITLE
    assert b"<script>" not in data and b"<img" not in data


def test_only_http_links_become_hrefs() -> None:
    entry = replace(
        _entries()[0],
        link="javascript:alert(1)",
        source=replace(SRC_A, link="data:text/html,x"),
        coverage=(Coverage(SRC_B, "t", "javascript:alert(2)"),),
    )
    root = _tree(render_html(_feed(entries=(entry,), link="javascript:alert(3)")))
    hrefs = [a.get("href") for a in root.iter("a")]
    assert not [h for h in hrefs if not h.startswith(("https://", "atom.", "rss.", "feed."))]
    assert root.findtext(".//h3") == "Storm hits the coast"


def test_built_in_template_has_no_script_and_forbids_scripts() -> None:
    source = Path(__file__).resolve().parents[1] / "aggregator/render/templates/index.html.j2"
    assert "<script" not in source.read_text(encoding="utf-8").lower()
    root = _tree(render_html(_feed()))
    assert root.find(".//script") is None and root.find(".//noscript") is None
    csp = root.find("head/meta[@http-equiv='Content-Security-Policy']").get("content")
    assert "default-src 'none'" in csp and "script-src" not in csp  # so no script may run


def test_control_characters_are_dropped() -> None:
    entry = replace(_entries()[2], title="Bad\x0b\x00 title")
    data = render_html(_feed(entries=(entry,)))
    assert b"Bad title" in data and b"\x0b" not in data and b"\x00" not in data


def test_same_feed_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    first = render_html(_feed())
    assert render_html(_feed()) == first
    assert b'<time datetime="2026-11-25T13:00:00Z">' in first  # feed.updated, not the clock
    # Neither the local time zone nor the locale may leak into the bytes.
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    time.tzset()
    try:
        assert render_html(_feed()) == first
    finally:
        monkeypatch.undo()
        time.tzset()


def test_empty_feed_is_a_friendly_page() -> None:
    data = render_html(_feed(entries=()))
    assert_html5(data)
    root = _tree(data)
    assert root.find(".//article") is None
    assert "No entries yet" in root.find(".//main").text_content()
    assert len(root.findall("head/link[@rel='alternate']")) == 3


# ---------------------------------------------------------------- user templates


def test_user_template_overrides_the_built_in(tmp_path: Path) -> None:
    (tmp_path / "part.j2").write_text("<li>{{ e.title }} ({{ e.source.title }})</li>\n")
    template = tmp_path / "river.html.j2"
    template.write_text(
        "<ul>{% for e in entries %}{% include 'part.j2' %}{% endfor %}</ul>\n"
        "{{ entries[0].summary_html }}|{{ feed.title }}|{{ feeds[2].type }}\n"
    )
    text = render_html(_hostile_feed(), template).decode()
    assert text.startswith("<ul><li>&lt;script&gt;alert(1)&lt;/script&gt; (Evil &#34;&gt;")
    assert "<li>Storm hits the coast (Alpha News)</li>" in text
    assert "<p>fine</p>|World news, merged|application/feed+json" in text


def test_user_template_can_extend_the_built_in(tmp_path: Path) -> None:
    template = tmp_path / "index.html.j2"  # same name as the built-in: must not shadow it
    template.write_text(
        '{% extends "builtin/index.html.j2" %}'
        "{% block style %}<style>body{color:red}</style>{% endblock %}"
    )
    data = render_html(_feed(), template)
    assert_html5(data)
    root = _tree(data)
    assert root.findtext("head/style") == "body{color:red}"
    assert len(root.findall(".//article")) == 3


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("line one\n{% for e in entries %}\n{{ e.title }}\n", "line 3: Unexpected end of template"),
        ("ok\n{{ feed.nope }}\n", "line 2: 'aggregator.render.html.FeedView object' has no attr"),
        ("ok\n\n{{ nothing }}\n", "line 3: 'nothing' is undefined"),
        ("{% include 'missing.j2' %}", "template not found: missing.j2"),
        ("{{ 1 // 0 }}", "line 1: ZeroDivisionError: integer division or modulo by zero"),
    ],
    ids=["syntax", "attribute", "undefined", "include", "runtime"],
)
def test_broken_user_template_is_a_config_error(tmp_path: Path, source: str, expected: str) -> None:
    template = tmp_path / "broken.html.j2"
    template.write_text(source)
    with pytest.raises(ConfigError) as err:
        render_html(_feed(), template)
    assert str(err.value).startswith(f"{template}: ")
    assert expected in str(err.value)


def test_error_in_an_included_template_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "part.j2").write_text("fine\n{{ entries[0].nope }}\n")
    (tmp_path / "syntax.j2").write_text("{% if %}")
    template = tmp_path / "main.j2"
    template.write_text("{% include 'part.j2' %}")
    with pytest.raises(ConfigError, match=r"part\.j2: line 2: .*has no attribute 'nope'"):
        render_html(_feed(), template)
    template.write_text("{% include 'syntax.j2' %}")
    with pytest.raises(ConfigError, match=r"syntax\.j2: line 1: "):
        render_html(_feed(), template)


def test_missing_or_unreadable_template_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.html.j2"
    with pytest.raises(ConfigError, match=rf"^{missing}: template not found$"):
        render_html(_feed(), missing)
    with pytest.raises(ConfigError, match="template not found"):
        load_template(tmp_path)  # a directory
    latin1 = tmp_path / "latin1.j2"
    latin1.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{latin1}: cannot read template"):
        load_template(latin1)


def test_load_template_checks_syntax_early(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ feed.title }}")
    assert load_template(template).render(feed={"title": "<b>"}) == "&lt;b&gt;"
    template.write_text("{{ feed.title ")
    with pytest.raises(ConfigError, match=rf"^{template}: line 1: "):
        load_template(template)


# ---------------------------------------------------------------- writing


def test_write_outputs_writes_index_html_once(tmp_path: Path) -> None:
    assert OUTPUT_FILES == ("atom.xml", "rss.xml", "feed.json") and HTML_FILE == "index.html"
    written = write_outputs(_feed(), tmp_path)
    assert [p.name for p in written] == [*OUTPUT_FILES, HTML_FILE]
    page = tmp_path / HTML_FILE
    assert page.read_bytes() == render_html(_feed())
    before = page.stat()
    os.utime(page, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))
    mtime = page.stat().st_mtime_ns
    assert write_outputs(_feed(), tmp_path) == []
    assert page.stat().st_mtime_ns == mtime and page.stat().st_ino == before.st_ino
    # A new entry changes every file; a template change only the page.
    assert len(write_outputs(_feed(entries=_entries()[:2]), tmp_path)) == 4
    template = tmp_path / "t.j2"
    template.write_text("{{ feed.title }}\n")
    assert write_outputs(_feed(entries=_entries()[:2]), tmp_path, template) == [page]
    assert page.read_text() == "World news, merged\n"


def test_broken_template_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    template = tmp_path / "t.j2"
    template.write_text("{{ missing }}")
    with pytest.raises(ConfigError):
        write_outputs(_feed(), out, template)
    assert not out.exists()


# ---------------------------------------------------------------- a real browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PWNED = "pwned"
PAYLOAD_SCRIPT = f"<script>document.title='{PWNED}'</script>"
PAYLOAD_IMG = f"<img src=x onerror=\"document.title='{PWNED}'\">"


def _require_chromium() -> str:
    """Skip (loudly, with the reason in -ra) without a browser; fail if one is demanded."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"real-browser test needs Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("AGGREGATOR_REQUIRE_BROWSER"):
        pytest.fail(reason + "; AGGREGATOR_REQUIRE_BROWSER is set")
    pytest.skip(reason)


def _chromium(binary: str, profile: Path, *args: str, timeout: float = 15.0) -> str:
    """Run headless Chromium once; on a timeout kill its whole process group (and only it)."""
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--mute-audio",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so the kill reaches its helpers
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium took more than {timeout}s: {' '.join(args)}")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode("utf-8")


def _browser_feed() -> OutputFeed:
    """Payloads in the title and outlet (escaped), and in a summary (a sanitizer bypass)."""
    evil_source = replace(SRC_EVIL, title=f'Evil "> {PAYLOAD_IMG} {PAYLOAD_SCRIPT}')
    evil = OutputEntry(
        id="tag:evil:1",
        title=f"{PAYLOAD_SCRIPT} {PAYLOAD_IMG}",
        link="https://evil.example/story",
        summary=f"<p>bypassed</p>{PAYLOAD_SCRIPT}{PAYLOAD_IMG}",
        content=None,
        published=T0 + timedelta(hours=5),
        updated=T0 + timedelta(hours=5),
        source=evil_source,
        coverage=(Coverage(SRC_A, PAYLOAD_SCRIPT, "https://alpha.example/copy"),),
    )
    return _feed(entries=(evil, *_entries()))


def test_real_browser_renders_links_and_runs_nothing(tmp_path: Path) -> None:
    binary = _require_chromium()
    page = tmp_path / "site" / HTML_FILE
    page.parent.mkdir()
    data = render_html(_browser_feed())
    page.write_bytes(data)

    dom = _chromium(binary, tmp_path / "profile1", "--dump-dom", page.as_uri())
    assert "</article>" in dom, dom[:500]  # the browser really loaded and rendered the page
    root = lxml.html.document_fromstring(dom)
    assert root.findtext("head/title") == "World news, merged"
    assert PWNED not in root.findtext("head/title")
    articles = root.findall(".//article")
    assert len(articles) == 4
    assert [
        a.find("h3/a").get("href") if a.find("h3/a") is not None else None for a in articles
    ] == [
        "https://evil.example/story",
        "https://alpha.example/posts/1",
        "https://beta.example/2",
        None,
    ]
    outlets = [a.find(".//p[@class='meta']/*[@class='outlet']") for a in articles]
    assert [o.get("href") for o in outlets] == [
        "https://evil.example/",
        "https://alpha.example/",
        None,
        "https://gamma.example/",
    ]
    assert articles[0].find("h3/a").text == f"{PAYLOAD_SCRIPT} {PAYLOAD_IMG}"  # shown as text
    assert outlets[0].text.startswith('Evil "> <img src=x')
    also = [a.get("href") for a in articles[1].findall(".//p[@class='also']/a")]
    assert also == ["https://beta.example/storm", "https://gamma.example/storm"]
    # Escaped text made no element; only the simulated sanitizer bypass put markup there.
    assert len(root.findall(".//script")) == 1
    assert root.find(".//script").getparent().get("class") == "summary"

    # The canary: the same page without its Content-Security-Policy does run the bypass,
    # so the harness can tell "nothing ran" from "the browser never ran scripts".
    canary = page.with_name("canary.html")
    text = data.decode()
    start = text.index('<meta http-equiv="Content-Security-Policy"')
    canary.write_text(text[:start] + text[text.index(">", start) + 1 :], encoding="utf-8")
    canary_dom = _chromium(binary, tmp_path / "profile2", "--dump-dom", canary.as_uri())
    assert lxml.html.document_fromstring(canary_dom).findtext("head/title") == PWNED


def test_real_browser_phone_screenshot(tmp_path: Path) -> None:
    binary = _require_chromium()
    page = tmp_path / HTML_FILE
    page.write_bytes(render_html(_feed()))
    shot = tmp_path / "shot.png"
    _chromium(
        binary, tmp_path / "profile", f"--screenshot={shot}", "--window-size=412,900", page.as_uri()
    )
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (412, 900)
    assert len(png) > 10_000  # text and rules, not a blank page
