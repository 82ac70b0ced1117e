"""OPML: export is valid OPML 2.0 and round-trips; import reads any reader's export safely and
appends to feeds.yaml without touching a byte of what is already there."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from aggregator.config import load_config, parse_config
from aggregator.errors import ConfigError
from aggregator.opml import (
    ALREADY_CONFIGURED,
    DUPLICATE_IN_OPML,
    INTERNAL,
    LOCAL_FILE,
    NOT_HTTP,
    ImportResult,
    OpmlFeed,
    add_feeds,
    export_opml,
    import_opml,
    left_out,
    parse_opml,
)

OPML_DATA = Path(__file__).parent / "data" / "opml"

CONFIG = """\
database: db/test.db
output:
  dir: out
  title: World news, merged
  id: tag:test.invalid,2026:merged
feeds:
  - url: https://feeds.bbci.co.uk/news/world/rss.xml
    name: bbc-world
    title: BBC World
    tags: [world, uk]
  - url: https://feeds.npr.org/1004/rss.xml
    tags: [world, us]
  - https://example.org/atom.xml
  - url: local.xml
    enabled: false
"""

# Comments everywhere, a custom key order, blank lines, and feeds: in the middle of the file.
COMMENTED = """\
# The real job.   Keep this comment exactly as it is.

feeds:   # my feeds, newest last
  # --- world ---
  - name: bbc-world          # name before url: custom order
    url: https://feeds.bbci.co.uk/news/world/rss.xml
    tags: [world, uk]
  - url: http://example.com/rss
    title: 'Example: "quoted"'

  - https://example.org/atom.xml   # shorthand
  # - url: https://disabled.example/rss   (commented out)

# Output last, on purpose.
output:
  title: Mine
  id: tag:test.invalid,2026:merged   # never change
"""


def opml(body: str, *, version: str = "2.0") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<opml version="{version}">'
        f"<head><title>t</title></head><body>{body}</body></opml>"
    ).encode()


def feed(url: str, title: str | None = None, *tags: str) -> OpmlFeed:
    return OpmlFeed(url=url, title=title, html_url=None, tags=tags)


def write(tmp_path: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def without_lines(text: str, removed: list[str]) -> str:
    """``text`` minus the given lines (each once), to compare with the original byte for byte."""
    lines = text.splitlines(keepends=True)
    for line in removed:
        lines.remove(line)
    return "".join(lines)


# ---------------------------------------------------------------- export


def test_export_is_opml_2_structurally(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    data = export_opml(config)

    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert [child.tag for child in root] == ["head", "body"]
    head, body = root
    assert head.findtext("title") == "World news, merged"
    assert head.find("dateCreated") is None  # deterministic without `now`
    outlines = body.findall("outline")
    http_urls = [f.url for f in config.feeds if f.url.startswith("https://")]
    assert [o.get("xmlUrl") for o in outlines] == http_urls  # config order, file:// left out
    assert left_out(config) == [config.feeds[-1]] and config.feeds[-1].url.startswith("file:")
    assert all(o.get("type") == "rss" and o.get("text") for o in outlines)
    assert all(o.get("htmlUrl") is None for o in outlines)  # we do not know the sites
    bbc, npr, example = outlines
    assert (bbc.get("text"), bbc.get("title"), bbc.get("category")) == (
        "BBC World",
        "BBC World",
        "world,uk",
    )
    # OPML requires text; without a configured title it is the name, and no title is claimed
    assert (npr.get("text"), npr.get("title"), npr.get("category")) == (
        "feeds.npr.org/1004/rss.xml",
        None,
        "world,us",
    )
    assert example.get("category") is None
    assert str(tmp_path).encode() not in data  # no local path leaves the machine
    assert export_opml(config) == data


def test_export_date_created_is_rfc_822_only_when_asked(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    paris = timezone(timedelta(hours=1))
    data = export_opml(config, now=datetime(2026, 11, 25, 13, 0, tzinfo=paris))
    root = etree.fromstring(data)
    assert root.findtext("head/dateCreated") == "Wed, 25 Nov 2026 12:00:00 GMT"
    assert [child.tag for child in root.find("head")] == ["title", "dateCreated"]


def test_export_round_trips_through_parse(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    feeds = parse_opml(export_opml(config))
    assert [(f.url, f.title, f.tags) for f in feeds] == [
        ("https://feeds.bbci.co.uk/news/world/rss.xml", "BBC World", ("world", "uk")),
        ("https://feeds.npr.org/1004/rss.xml", "feeds.npr.org/1004/rss.xml", ("world", "us")),
        ("https://example.org/atom.xml", "example.org/atom.xml", ()),
    ]
    assert all(f.html_url is None for f in feeds)


def test_export_escapes_titles_and_urls(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "output:\n  title: 'News & <views> \"quoted\"'\nfeeds:\n"
            "  - url: https://a.example/rss?x=1&y=2\n"
            "    title: 'Tom & Jerry <b>bold</b> \"q\" ''s'\n"
            '    tags: ["r&d", "<x>"]\n'
            '  - url: https://b.example/rss\n    title: "bell\\a and tab\\tend"\n',
        )
    )
    data = export_opml(config)
    assert b"Tom &amp; Jerry &lt;b&gt;bold&lt;/b&gt; &quot;q&quot;" in data
    assert b"x=1&amp;y=2" in data
    root = etree.fromstring(data)  # well-formed despite the control character in a title
    assert root.findtext("head/title") == 'News & <views> "quoted"'
    first, second = parse_opml(data)
    assert first == OpmlFeed(
        url="https://a.example/rss?x=1&y=2",
        title='Tom & Jerry <b>bold</b> "q" \'s',
        html_url=None,
        tags=("r&d", "<x>"),
    )
    assert second.title == "bell and tab end"


def test_export_then_import_into_an_empty_config_gives_the_same_feeds(tmp_path: Path) -> None:
    source = load_config(write(tmp_path, CONFIG))
    target = tmp_path / "other" / "feeds.yaml"
    target.parent.mkdir()
    result = add_feeds("", target, parse_opml(export_opml(source)))
    copied = parse_config(result.text, target)
    http_feeds = [f for f in source.feeds if f.url.startswith("http")]
    # names do not travel in OPML; titles that were only our default names are not made titles
    assert [(f.url, f.title, f.tags) for f in copied.feeds] == [
        (f.url, f.title, f.tags) for f in http_feeds
    ]
    assert result.skipped == []  # the file:// feed was left out of the export (issue 14 #8)


# ---------------------------------------------------------------- parse


def test_nested_folders_categories_and_attribute_case() -> None:
    feeds = parse_opml((OPML_DATA / "nested.opml").read_bytes())
    assert feeds == [
        OpmlFeed(
            url="https://feeds.bbci.co.uk/news/world/rss.xml",
            title="BBC News - World",  # title wins over text
            html_url="https://www.bbc.co.uk/news/world",
            tags=("News", "World", "broadcaster"),
        ),
        OpmlFeed("https://feeds.npr.org/1004/rss.xml", "NPR", None, ("News", "World")),
        OpmlFeed(
            "https://atom.example/feed", "Atom outlet", None, ("News", "Wire", "Agencies", "europe")
        ),
        OpmlFeed(
            "https://news.ycombinator.com/rss", "Hacker News", None, ("Tech", "Deep", "Deeper")
        ),
        OpmlFeed("https://top.example/rss.xml", "Top level", None, ()),
    ]


@pytest.mark.parametrize("attribute", ["xmlUrl", "xmlurl", "XMLURL", "XmlUrl"])
def test_xml_url_in_any_case(attribute: str) -> None:
    feeds = parse_opml(opml(f'<outline text="A" {attribute}="https://a.example/rss"/>'))
    assert [f.url for f in feeds] == ["https://a.example/rss"]


def test_parse_details() -> None:
    feeds = parse_opml(
        opml(
            '<outline text="  Folder \n one  ">'
            '<outline xmlUrl="  https://a.example/rss  " text=" A\n\tB " category="x, x,/x/y"/>'
            '<outline xmlUrl="" text="empty url is a folder">'
            '<outline xmlUrl="https://b.example/rss"/>'
            "</outline></outline>"
            '<outline xmlUrl="https://a.example/rss" text="again"/>'
            '<outline xmlns:x="urn:x" x:xmlUrl="https://not-ours.example/" text="ns"/>',
            version="1.0",
        )
    )
    assert feeds == [
        OpmlFeed("https://a.example/rss", "A B", None, ("Folder one", "x", "y")),
        OpmlFeed("https://b.example/rss", None, None, ("Folder one", "empty url is a folder")),
        OpmlFeed("https://a.example/rss", "again", None, ()),  # duplicates are kept here
    ]
    assert parse_opml(opml("")) == []


def test_deep_nesting_is_not_a_recursion_problem() -> None:
    depth = 200
    data = opml(
        '<outline text="f">' * depth + '<outline xmlUrl="https://a/"/>' + "</outline>" * depth
    )
    (only,) = parse_opml(data)
    assert only.tags == ("f",) and only.url == "https://a/"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b"url,title\nhttps://a.example/rss,A\n", "not well-formed XML"),
        ((OPML_DATA / "page.html").read_bytes(), "not well-formed XML"),
        (b"<html><body><p>hi</p></body></html>", "the root element is <html>, not <opml>"),
        ((OPML_DATA / "rss.xml").read_bytes(), "the root element is <rss>, not <opml>"),
        (b'<opml version="2.0"><head/></opml>', "<opml> has no <body>"),
        (b'<opml version="2.0"><head/><body>', "not well-formed XML"),
        (b'<?xml version="1.0" encoding="nope"?><opml/>', "XML"),
        ((OPML_DATA / "billion_laughs.opml").read_bytes(), "declares XML entities"),
        ((OPML_DATA / "xxe_hostname.opml").read_bytes(), "declares XML entities"),
    ],
)
def test_bad_opml_is_a_config_error(data: bytes, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_opml(data, source="subs.opml")
    message = str(caught.value)
    assert message.startswith("subs.opml: not an OPML file: ")
    assert reason in message
    assert "lollollol" not in message


def test_xxe_leaks_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42\n")
    hostname = Path("/etc/hostname")
    leaks = ["TOP-SECRET-42"]
    if hostname.is_file() and hostname.read_text().strip():
        leaks.append(hostname.read_text().strip())
    documents = [
        (OPML_DATA / "xxe_hostname.opml").read_bytes(),
        f'<!DOCTYPE opml [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        '<opml version="2.0"><head/><body><outline xmlUrl="https://a/" text="&x;">&x;'
        "</outline></body></opml>".encode(),
    ]
    for data in documents:
        with pytest.raises(ConfigError) as caught:
            parse_opml(data)
        assert not any(leak in str(caught.value) for leak in leaks)
    # an entity declared in UTF-16 slips past the byte check and is refused after parsing,
    # with libxml2 itself refusing to expand it in attributes
    utf16 = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        f'<!DOCTYPE opml [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        '<opml version="2.0"><head/><body><outline xmlUrl="https://a/" text="t">&x;'
        "</outline></body></opml>"
    ).encode("utf-16")
    with pytest.raises(ConfigError) as caught:
        parse_opml(utf16)
    assert "TOP-SECRET-42" not in str(caught.value)


def test_billion_laughs_in_utf16_does_not_expand() -> None:
    bomb = (OPML_DATA / "billion_laughs.opml").read_text(encoding="utf-8")
    data = bomb.replace('encoding="utf-8"', 'encoding="UTF-16"').encode("utf-16")
    with pytest.raises(ConfigError, match="not an OPML file"):
        parse_opml(data)


# ---------------------------------------------------------------- add_feeds


def test_add_feeds_keeps_everything_and_appends(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    feeds = [
        feed("https://feeds.bbci.co.uk/news/world/rss.xml", "BBC"),  # exact
        feed("http://Example.com:80/rss?utm_source=opml#top", "Example"),  # canonical same
        feed("https://new.example/rss", "New: one", "a", "b"),
        feed("https://NEW.example/rss", "New again", "c"),  # duplicate inside the OPML
        feed("file:///etc/passwd", "local"),
        feed("feeds/local.xml", "relative"),
        feed("ftp://ftp.example/rss", "ftp"),
        feed("javascript:alert(1)", "js"),
        feed("https://has space.example/rss", "space"),
        feed("https://example.org/atom.xml?page=2", "Page two"),
    ]
    result = add_feeds(COMMENTED, path, feeds)

    assert isinstance(result, ImportResult)
    assert result.added == [
        feed("https://new.example/rss", "New: one", "a", "b", "c"),  # tags merged
        feed("https://example.org/atom.xml?page=2", "Page two"),
    ]
    assert [(f.url, why) for f, why in result.skipped] == [
        ("https://feeds.bbci.co.uk/news/world/rss.xml", ALREADY_CONFIGURED),
        ("http://Example.com:80/rss?utm_source=opml#top", ALREADY_CONFIGURED),
        ("https://NEW.example/rss", DUPLICATE_IN_OPML),
        ("file:///etc/passwd", LOCAL_FILE),
        ("feeds/local.xml", NOT_HTTP),
        ("ftp://ftp.example/rss", NOT_HTTP),
        ("javascript:alert(1)", NOT_HTTP),
        ("https://has space.example/rss", NOT_HTTP),
    ]
    new_lines = [
        '  - url: "https://new.example/rss"\n',
        '    title: "New: one"\n',
        '    tags: ["a", "b", "c"]\n',
        '  - url: "https://example.org/atom.xml?page=2"\n',
        '    title: "Page two"\n',
    ]
    # appended right after the last item of the list (and its indented comment) ...
    marker = "  # - url: https://disabled.example/rss   (commented out)\n"
    assert result.text.replace(marker + "".join(new_lines), marker) == COMMENTED
    # ... and everything else is exactly as it was
    assert without_lines(result.text, new_lines) == COMMENTED
    assert path.read_text() == COMMENTED  # add_feeds writes nothing

    path.write_text(result.text)
    config = load_config(path)
    assert [(f.url, f.name, f.title, f.tags) for f in config.feeds] == [
        ("https://feeds.bbci.co.uk/news/world/rss.xml", "bbc-world", None, ("world", "uk")),
        ("http://example.com/rss", "example.com/rss", 'Example: "quoted"', ()),
        ("https://example.org/atom.xml", "example.org/atom.xml", None, ()),
        ("https://new.example/rss", "new.example/rss", "New: one", ("a", "b", "c")),
        ("https://example.org/atom.xml?page=2", "example.org/atom.xml?page=2", "Page two", ()),
    ]
    assert config.output.title == "Mine"


def test_urls_the_config_refuses_are_skipped_not_added(tmp_path: Path) -> None:
    """Issue 14 #6: one URL the config then refused failed the whole import."""
    text = "feeds:\n  - url: https://a.example/rss\n"
    path = write(tmp_path, text)
    bad = ["http://exa%20mple.org/rss", "http://a..b/rss", "http:/x", "https://"]
    result = add_feeds(text, path, [*map(feed, bad), feed("https://b.example/rss")])
    assert [f.url for f in result.added] == ["https://b.example/rss"]
    assert [(f.url, why) for f, why in result.skipped] == [(url, NOT_HTTP) for url in bad]
    assert [f.url for f in parse_config(result.text, path).feeds][-1] == "https://b.example/rss"


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("https://a.example/rss", "https://A.Example/rss", True),
        ("http://a.example/rss", "HTTP://a.example:80/rss", True),
        ("https://a.example/rss", "https://a.example:443/rss#top", True),
        ("https://a.example/rss?x=1&y=2", "https://a.example/rss?y=2&x=1&utm_medium=opml", True),
        ("https://a.example/rss", "http://a.example/rss", False),
        ("https://a.example/rss", "https://a.example/rss/", False),
        ("https://a.example/rss", "https://a.example:8443/rss", False),
    ],
)
def test_config_and_import_agree_on_what_is_the_same_feed(
    tmp_path: Path, first: str, second: str, same: bool
) -> None:
    """Issue 14 #6: the config let A.example and a.example both in; the import did not."""
    text = f"feeds:\n  - url: {first}\n"
    path = write(tmp_path, text)
    result = add_feeds(text, path, [feed(second)])
    assert bool(result.skipped) == same
    assert result.skipped == ([(feed(second), ALREADY_CONFIGURED)] if same else [])
    both = f"feeds:\n  - url: {first}\n    name: one\n  - url: '{second}'\n    name: two\n"
    if same:
        with pytest.raises(ConfigError, match=r"feeds.yaml:4: feeds\[1\].url: duplicate feed"):
            parse_config(both, path)
    else:
        assert len(parse_config(both, path).feeds) == 2


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "FILE:///home/me/.ssh/id_rsa", "file://host/share/feed.xml"]
)
def test_local_files_are_never_imported(tmp_path: Path, url: str) -> None:
    """Issue 14 #8: an OPML someone sent must not make the aggregator read local files, even
    where the config trusts internal addresses."""
    text = "defaults:\n  allow_private_addresses: true\nfeeds: []\n"
    result = add_feeds(text, write(tmp_path, text), [feed(url)])
    assert (result.text, result.added, result.skipped) == (text, [], [(feed(url), LOCAL_FILE)])


def test_names_stay_unique(tmp_path: Path) -> None:
    text = (
        "feeds:\n"
        "  - url: https://a.example/rss\n"
        "  - url: https://b.example/x\n    name: a.example/rss-2\n"
    )
    path = write(tmp_path, text)
    result = add_feeds(
        text,
        path,
        [feed("http://a.example/rss"), feed("https://a.example/rss/"), feed("https://c.example/")],
    )
    config = parse_config(result.text, path)
    assert [f.name for f in config.feeds] == [
        "a.example/rss",
        "a.example/rss-2",
        "a.example/rss-3",  # http: another URL, the same default name
        "a.example/rss-4",  # a trailing slash is another URL too
        "c.example",
    ]
    assert result.text.count("name:") == 3  # written only where the default would collide


def test_values_are_quoted_safely(tmp_path: Path) -> None:
    nasty = [
        'He said "hi": #1',
        "- starts like an item",
        "*alias &anchor !tag % @ ` |",
        "yes",
        "null",
        "123",
        "Ünïcödé 🎉 \\ backslash",
        "line\nbreak\u2028sep\x85nel\x07bell\x7f",
        "'single'",
    ]
    path = write(tmp_path, "feeds:\n  - https://a.example/rss\n")
    feeds = [
        feed(f"https://n{i}.example/rss", title, title, "tag: x") for i, title in enumerate(nasty)
    ]
    result = add_feeds(path.read_text(), path, feeds)
    config = parse_config(result.text, path)
    titles = [f.title for f in config.feeds[1:]]
    assert titles == [
        *nasty[:7],
        "line break sep nel bell",
        "'single'",
    ]
    assert all(f.tags[1] == "tag: x" for f in config.feeds[1:])


@pytest.mark.parametrize("empty", ["[]", "[ ]"])
def test_flow_style_empty_list_becomes_a_block_list(tmp_path: Path, empty: str) -> None:
    text = f"# head\nfeeds: {empty}   # none yet\noutput:\n  title: T\n"
    path = write(tmp_path, text)
    result = add_feeds(text, path, [feed("https://a.example/rss", "A", "x")])
    assert result.text == (
        "# head\nfeeds:  # none yet\n"
        '  - url: "https://a.example/rss"\n    title: "A"\n    tags: ["x"]\n'
        "output:\n  title: T\n"
    )
    assert parse_config(result.text, path).output.title == "T"


@pytest.mark.parametrize("value", ["", "~", "null"])
def test_empty_feeds_key(tmp_path: Path, value: str) -> None:
    text = f"feeds: {value}\n  # - url: https://old.example/rss\noutput:\n  title: T\n".replace(
        "feeds: \n", "feeds:\n"
    )
    path = write(tmp_path, text)
    result = add_feeds(text, path, [feed("https://a.example/rss")])
    assert result.text.endswith(
        '  # - url: https://old.example/rss\n  - url: "https://a.example/rss"\n'
        "output:\n  title: T\n"
    )
    assert [f.url for f in parse_config(result.text, path).feeds] == ["https://a.example/rss"]


def test_no_feeds_key(tmp_path: Path) -> None:
    text = "output:\n  title: T   # no feeds yet"  # and no final newline
    path = write(tmp_path, text)
    result = add_feeds(text, path, [feed("https://a.example/rss", "A")])
    assert result.text == text + '\nfeeds:\n  - url: "https://a.example/rss"\n    title: "A"\n'
    assert parse_config(result.text, path).feeds[0].title == "A"
    # an empty file gets just the list
    empty = add_feeds("", path, [feed("https://a.example/rss")])
    assert empty.text == 'feeds:\n  - url: "https://a.example/rss"\n'


@pytest.mark.parametrize(
    ("text", "item"),
    [
        ("feeds:\n- url: https://a.example/\n  tags: [x]\n", '- url: "https://b.example/rss"\n'),
        ("feeds:\n    -   url: https://a.example/\n        title: T\n", "    -   url: "),
        ("feeds:\n  -\n    url: https://a.example/\n", '  - url: "https://b.example/rss"\n'),
    ],
)
def test_indentation_follows_the_existing_items(tmp_path: Path, text: str, item: str) -> None:
    path = write(tmp_path, text)
    result = add_feeds(text, path, [feed("https://b.example/rss", "B")])
    assert result.text.startswith(text)
    added = result.text[len(text) :]
    assert added.startswith(item)
    assert parse_config(result.text, path).feeds[-1].title == "B"


def test_crlf_and_bom_are_kept(tmp_path: Path) -> None:
    text = "\ufeff# windows\r\nfeeds:\r\n  - url: https://a.example/\r\n"
    path = write(tmp_path, text)
    result = add_feeds(text, path, [feed("https://b.example/rss", "B")])
    assert result.text == text + '  - url: "https://b.example/rss"\r\n    title: "B"\r\n'


def test_nothing_new_returns_the_text_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    result = add_feeds(COMMENTED, path, [feed("http://example.com/rss"), feed("mailto:x@y")])
    assert result.text is COMMENTED and result.added == []
    assert [why for _f, why in result.skipped] == [ALREADY_CONFIGURED, NOT_HTTP]


def test_refuses_what_it_cannot_edit_safely(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    new = [feed("https://b.example/rss")]
    # an inline list with feeds in it
    with pytest.raises(ConfigError, match=r"feeds.yaml:1: feeds: is written inline"):
        add_feeds("feeds: [https://a.example/rss]\n", path, new)
    # an invalid config is reported as load_config would, not edited
    with pytest.raises(ConfigError, match=r"feeds.yaml:3: feeds\[0\].colour: unknown key"):
        add_feeds("feeds:\n  - url: https://a.example/rss\n    colour: red\n", path, new)
    # invalid elsewhere, with no feeds to read first: the check of the result catches it
    with pytest.raises(ConfigError, match="cannot add the OPML feeds"):
        add_feeds("output:\n  colour: red\n", path, new)
    # a layout the text editing gets wrong is caught: the result must load, and load as the old
    # feeds plus the new ones (here the new item would vanish into a multi-line quoted title)
    with pytest.raises(ConfigError, match=r"cannot add the OPML feeds.*too unusual"):
        add_feeds("feeds:\n  - url: https://a.example/rss\n    title: 'a\nb'\n", path, new)
    with pytest.raises(ConfigError, match=r"cannot add the OPML feeds.*YAML syntax error"):
        add_feeds('feeds:\n  - url: https://a.example/rss\n    title: "a\nb"\n', path, new)


def test_document_end_marker(tmp_path: Path) -> None:
    text = "feeds:\n  - url: https://a.example/rss\n...\n"
    result = add_feeds(text, tmp_path / "feeds.yaml", [feed("https://b.example/rss")])
    assert result.text == text.replace("...", '  - url: "https://b.example/rss"\n...')


# ---------------------------------------------------------------- import_opml


def test_import_opml_writes_atomically_and_only_when_needed(tmp_path: Path) -> None:
    config_path = write(tmp_path, COMMENTED)
    config_path.chmod(0o640)
    opml_path = tmp_path / "subs.opml"
    opml_path.write_bytes((OPML_DATA / "nested.opml").read_bytes())

    result = import_opml(config_path, opml_path)
    assert [f.url for f, why in result.skipped] == ["https://feeds.bbci.co.uk/news/world/rss.xml"]
    assert len(result.added) == 4
    assert config_path.read_text(encoding="utf-8") == result.text
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds.yaml", "subs.opml"]  # no temp
    assert len(load_config(config_path).feeds) == 7

    old = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    os.utime(config_path, (old, old))
    again = import_opml(config_path, opml_path)
    assert again.added == [] and {why for _f, why in again.skipped} == {ALREADY_CONFIGURED}
    assert config_path.stat().st_mtime == old
    assert config_path.read_text(encoding="utf-8") == result.text


def test_import_opml_errors_leave_the_config_alone(tmp_path: Path) -> None:
    config_path = write(tmp_path, COMMENTED)
    before = config_path.stat().st_mtime_ns
    bad = tmp_path / "bad.opml"
    bad.write_bytes((OPML_DATA / "page.html").read_bytes())
    with pytest.raises(ConfigError, match=r"bad.opml: not an OPML file"):
        import_opml(config_path, bad)
    with pytest.raises(ConfigError, match=r"missing.opml: OPML file not found"):
        import_opml(config_path, tmp_path / "missing.opml")
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        import_opml(tmp_path / "nope.yaml", bad)
    latin1 = write(tmp_path, "", name="latin1.yaml")
    latin1.write_bytes(b"# caf\xe9\nfeeds: []\n")
    good = tmp_path / "good.opml"
    good.write_bytes(opml('<outline xmlUrl="https://a.example/rss"/>'))
    with pytest.raises(ConfigError, match=r"latin1.yaml: cannot read config file"):
        import_opml(latin1, good)
    assert config_path.read_text(encoding="utf-8") == COMMENTED
    assert config_path.stat().st_mtime_ns == before


def test_import_opml_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = write(tmp_path, "feeds: []\n", name="real.yaml")
    link = tmp_path / "feeds.yaml"
    link.symlink_to(real)
    good = tmp_path / "good.opml"
    good.write_bytes(opml('<outline xmlUrl="https://a.example/rss"/>'))
    import_opml(link, good)
    assert link.is_symlink()
    assert [f.url for f in load_config(link).feeds] == ["https://a.example/rss"]


def test_import_skips_internal_addresses_unless_allowed(tmp_path: Path) -> None:
    """Issue 13 #5: an OPML file could add loopback and metadata URLs without a word."""
    internal = [
        "http://127.0.0.1:8080/feed.xml",
        "http://localhost/rss",
        "http://api.localhost/rss",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed",
        "http://10.0.0.7/rss",
    ]
    feeds = [feed(url) for url in [*internal, "https://public.example/rss"]]
    config_text = "feeds:\n  - url: https://a.example/rss\n"
    result = add_feeds(config_text, tmp_path / "feeds.yaml", feeds)
    assert [f.url for f in result.added] == ["https://public.example/rss"]
    assert [(f.url, why) for f, why in result.skipped] == [(url, INTERNAL) for url in internal]
    allowed = add_feeds(
        "defaults:\n  allow_private_addresses: true\n" + config_text,
        tmp_path / "feeds.yaml",
        feeds,
    )
    assert len(allowed.added) == len(feeds) and allowed.skipped == []


@pytest.mark.parametrize("empty", ["feeds: []\n", "feeds:\n", "feeds: ~\n"])
def test_an_empty_feed_list_keeps_the_configs_defaults(tmp_path: Path, empty: str) -> None:
    """The config was not read when its list was empty: allow_private_addresses was ignored."""
    text = "defaults:\n  allow_private_addresses: true\n" + empty
    result = add_feeds(text, tmp_path / "feeds.yaml", [feed("http://127.0.0.1:8080/feed.xml")])
    assert [f.url for f in result.added] == ["http://127.0.0.1:8080/feed.xml"]
    assert result.skipped == []
