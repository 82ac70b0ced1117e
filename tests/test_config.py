"""feeds.yaml validation: good configs load; bad ones name file, line and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config, no_feeds, parse_duration, parse_size
from aggregator.errors import ConfigError


def load_text(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("1w", timedelta(days=7)),
        ("30M", timedelta(minutes=30)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5 parsecs", "", "m", "-5m", "0s", "1x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a (positive )?duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["45", " 30 ", "1.5", 600, 1.5])
def test_a_duration_needs_its_unit(value: str | float) -> None:
    """Issue 14 #6: a bare 30 was read as seconds; minutes were meant as often."""
    with pytest.raises(ValueError, match=r"has no unit: .*units: ms, s, m, h, d, w"):
        parse_duration(value)


DURATION_KEYS = ["interval", "min_interval", "timeout", "connect_timeout", "parse_timeout"]


@pytest.mark.parametrize("key", DURATION_KEYS)
@pytest.mark.parametrize("value", ["30", "'30'", "2.5"])
def test_every_duration_in_defaults_needs_a_unit(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, f"defaults:\n  workers: 2\n  {key}: {value}\nfeeds: []\n")
    bare = value.strip("'")
    assert str(caught.value) == (
        f"{tmp_path / 'feeds.yaml'}:3: defaults.{key}: {bare} has no unit: "
        f"write e.g. {bare}s, {bare}m or {bare}h (units: ms, s, m, h, d, w)"
    )


@pytest.mark.parametrize("key", DURATION_KEYS)
def test_every_duration_in_defaults_takes_a_unit(tmp_path: Path, key: str) -> None:
    defaults = load_text(tmp_path, f"defaults:\n  {key}: 90s\nfeeds: []\n").defaults
    assert getattr(defaults, key) in (timedelta(seconds=90), 90.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30", "30 has no unit: write e.g. 30s, 30m or 30h (units: ms, s, m, h, d, w)"),
        ('"30"', "30 has no unit: write e.g. 30s, 30m or 30h (units: ms, s, m, h, d, w)"),
        # YAML 1.1 reads 1:30 as the number 90: the message shows what was written
        ("1:30", "'1:30' is not a duration (use e.g. 90s, 30m, 2h, 1d, 1h30m or auto; units:"),
        ("soon", "'soon' is not a duration (use e.g. 90s, 30m, 2h, 1d, 1h30m or auto; units:"),
    ],
)
def test_a_feed_interval_needs_a_unit(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, f"feeds:\n  - url: https://a.example/\n    interval: {value}\n")
    assert str(caught.value).startswith(f"{tmp_path / 'feeds.yaml'}:3: feeds[0].interval: ")
    assert message in str(caught.value)
    config = load_text(tmp_path, "feeds:\n  - url: https://a.example/\n    interval: 30m\n")
    assert config.feeds[0].interval == timedelta(minutes=30)


def test_sizes() -> None:
    assert parse_size("10MB") == 10_000_000
    assert parse_size("512KiB") == 524_288
    assert parse_size(2048) == 2048
    with pytest.raises(ValueError):
        parse_size("lots")


def test_full_config_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "local.xml").write_text("<rss/>")
    config = load_text(
        tmp_path,
        """
database: data/news.db
output:
  dir: public
  title: My news
  link: https://news.example.org/
  id: tag:example.org,2026:news
  base_url: https://news.example.org/feeds
  max_entries: 50
defaults:
  interval: 1h
  timeout: 10s
  parse_timeout: 3s
  max_body_size: 5MB
  workers: 4
feeds:
  - url: https://a.example/rss
    name: a
    title: Outlet A
    tags: [world, wire]
    interval: 2h
  - url: local.xml
    enabled: false
  - https://b.example/atom.xml
""",
    )
    assert config.database == tmp_path / "data" / "news.db"
    assert config.output.dir == tmp_path / "public"
    assert config.output.base_url == "https://news.example.org/feeds/"
    assert config.output.max_entries == 50
    assert config.defaults.interval == timedelta(hours=1)
    assert config.defaults.timeout == 10.0 and config.defaults.max_body_bytes == 5_000_000
    assert config.defaults.parse_timeout == 3.0
    a, local, b = config.feeds
    assert (a.name, a.title, a.tags, a.interval) == (
        "a",
        "Outlet A",
        ("world", "wire"),
        timedelta(hours=2),
    )
    assert local.url == (tmp_path / "local.xml").as_uri() and not local.enabled
    assert local.name == "local"
    assert b.name == "b.example/atom.xml" and b.interval is None and b.enabled


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, "feeds:\n  - url: https://a.example/rss\n")
    assert config.database == tmp_path / "db" / "aggregator.db"
    assert config.output.dir == tmp_path / "output"
    assert config.output.max_entries == 200
    assert config.defaults.max_body_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("feeds:\n  - url: [unclosed\n", 3, "YAML syntax error"),
        ("feeds:\n  - url: https://a/\n    colour: red\n", 3, "feeds[0].colour: unknown key"),
        ("feeds:\n  - name: nameless\n", 2, "feeds[0]: missing required key 'url'"),
        (
            "feeds:\n  - url: https://a/\n  - url: https://a/\n",
            3,
            "feeds[1].url: duplicate feed https://a/",
        ),
        # issue 14 #6: the same feed by the key opml import uses (tests/test_opml.py)
        (
            "feeds:\n  - url: https://a.example/rss\n  - url: https://A.EXAMPLE/rss\n",
            3,
            "feeds[1].url: duplicate feed https://A.EXAMPLE/rss (the same feed as "
            "https://a.example/rss at line 2)",
        ),
        (
            "feeds:\n  - url: http://a.example/rss\n    name: a\n"
            "  - url: HTTP://a.example:80/rss\n    name: b\n",
            4,
            "feeds[1].url: duplicate feed HTTP://a.example:80/rss (the same feed as",
        ),
        (
            "feeds:\n  - url: https://a.example:443/rss?b=2&a=1\n"
            "  - url: https://a.example/rss?a=1&b=2&utm_source=x\n",
            3,
            "feeds[1].url: duplicate feed https://a.example/rss?a=1&b=2&utm_source=x",
        ),
        (
            "feeds:\n  - url: https://a/x\n    name: n\n  - url: https://a/y\n    name: n\n",
            4,
            "duplicate feed name 'n'",
        ),
        (
            "feeds:\n  - url: https://a/\n    interval: 5 parsecs\n",
            3,
            "feeds[0].interval: '5 parsecs' is not a duration",
        ),
        ("feeds:\n  - url: https://a/\n    enabled: maybe\n", 3, "feeds[0].enabled: expected true"),
        ("output:\n  max_entries: -3\nfeeds: []\n", 2, "output.max_entries"),
        ("output:\n  id: not-an-iri\nfeeds: []\n", 2, "output.id"),
        ("feeds:\n  - url: gopher://a/\n", 2, "unsupported URL scheme 'gopher'"),
        # issue 14 #6: these loaded, then failed when fetched under the names "/x" and ""
        ('feeds:\n  - url: "http:/x"\n', 2, "feeds[0].url: 'http:/x' has no host"),
        ('feeds:\n  - url: "https://"\n', 2, "feeds[0].url: 'https://' has no host"),
        # YAML reads these as a bool and a number: `url: yes` was a feed named "True"
        ("feeds:\n  - url: yes\n", 2, "feeds[0].url: expected text, got True"),
        ("feeds:\n  - url: 12345\n", 2, "feeds[0].url: expected text, got 12345"),
        ("feeds:\n  - x.xml\n  - https://\n", 3, "feeds[1].url: 'https://' has no host"),
        (
            'feeds:\n  - url: "http://exa mple.org/"\n',
            2,
            "feeds[0].url: 'http://exa mple.org/' contains a space",
        ),
        (
            "feeds:\n  - url: http://exa%20mple.org/rss\n",
            2,
            "'http://exa%20mple.org/rss' has an invalid host 'exa%20mple.org'",
        ),
        ("feeds:\n  - url: http://a..b/rss\n", 2, "has an invalid host 'a..b'"),
        ("feeds:\n  - url: http://a.example:99999/\n", 2, "is not a valid URL (Port"),
        ("feeds:\n  - url: http://[::1/\n", 2, "feeds[0].url: 'http://[::1/' is not a valid"),
        ("output:\n  link: https://\nfeeds: []\n", 2, "output.link: 'https://' has no host"),
        ("output:\n  base_url: http:/x\nfeeds: []\n", 2, "output.base_url: 'http:/x' has no"),
        ("title: x\nfeeds: []\n", 1, "title: unknown key"),
        ("database: db.sqlite\n", 1, "missing required key 'feeds'"),
        ("feeds: {}\n", 1, "expected a list of feeds"),
        # tags the safe loader does not know are config errors, not tracebacks (issue 13)
        (
            "feeds:\n  - url: https://a/\n    name: !foo bar\n",
            3,
            "feeds[0].name: cannot read this value",
        ),
        ("feeds:\n  - url: !!python/name:os.system\n", 2, "feeds[0].url: cannot read"),
        ("defaults:\n  timeout: !!python/object/apply:os.getcwd []\nfeeds: []\n", 2, "timeout"),
    ],
)
def test_bad_config_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'feeds.yaml'}:{line}:"), message
    assert fragment in message


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://bücher.example/rss", "bücher.example/rss"),
        ("http://[::1]:8080/feed.xml", "::1/feed.xml"),
        ("https://example.org./atom.xml", "example.org./atom.xml"),
        ("http://my_host.lan/rss", "my_host.lan/rss"),
        ("HTTPS://Example.ORG:8443/a%20b", "example.org/a%20b"),
    ],
)
def test_unusual_but_valid_feed_urls_load(tmp_path: Path, url: str, name: str) -> None:
    (feed,) = load_text(tmp_path, f"feeds:\n  - url: '{url}'\n").feeds
    assert (feed.url, feed.name) == (url, name)


@pytest.mark.parametrize(
    "text",
    [
        "feeds: []\n",
        "feeds:\n",
        "feeds: ~\n",
        "feeds:\n  # - url: https://a.example/rss   (all commented out)\noutput:\n  title: T\n",
    ],
)
def test_an_empty_feed_list_loads_and_says_so(tmp_path: Path, text: str) -> None:
    """Issue 14 #6: no_feeds is what `update` and `run` refuse, and others warn about."""
    config = load_text(tmp_path, text)
    assert config.feeds == ()
    assert no_feeds(config) == f"no feeds configured in {tmp_path / 'feeds.yaml'}"
    assert no_feeds(load_text(tmp_path, "feeds: [https://a.example/]\n")) is None


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="empty"):
        load_text(tmp_path, "")


def test_shipped_configs_are_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    shipped = load_config(root / "feeds.yaml")
    assert 8 <= len(shipped.feeds) <= 15
    assert all(f.url.startswith("https://") and f.tags for f in shipped.feeds)
    offline = load_config(root / "examples" / "offline" / "feeds.yaml")
    assert offline.feeds and all(f.url.startswith("file://") for f in offline.feeds)


def test_a_thousand_feed_config_reads_every_feed_with_its_values(tmp_path: Path) -> None:
    """The fast path (libyaml, scalars built from their nodes) keeps types and line numbers."""
    feeds = "".join(
        f"  - url: https://f{n}.example/rss\n    name: f{n}\n    interval: {n % 50 + 5}m\n"
        f"    enabled: {'false' if n % 7 == 0 else 'true'}\n    tags: [t{n % 3}, world]\n"
        for n in range(1000)
    )
    path = tmp_path / "feeds.yaml"
    path.write_text("defaults:\n  workers: 4\nfeeds:\n" + feeds)
    config = load_config(path)
    assert len(config.feeds) == 1000
    last = config.feeds[-1]
    assert (last.name, last.url, last.enabled) == ("f999", "https://f999.example/rss", True)
    assert last.interval == timedelta(minutes=999 % 50 + 5)
    assert config.feeds[7].enabled is False and config.feeds[8].enabled is True
    assert last.tags == ("t0", "world")
    path.write_text("feeds:\n" + feeds + "  - url: https://x.example/\n    intervl: 5m\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:5003: .*intervl"):
        load_config(path)
