"""The real `aggregator` command in a subprocess, as users run it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
import requests
from conftest import FeedServer, item, rss, running, serving, wait_until, write_config
from conftest import run_cli as run

from aggregator.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_update_feeds_build_round_trip(feed_server: FeedServer, tmp_path: Path) -> None:
    good = feed_server.serve("/good.xml", rss(item("g1", "Good news", "https://g.example/1")))
    bad = feed_server.serve("/bad.xml", "no", status=500, content_type="text/plain")
    write_config(tmp_path, f"  - url: {good}\n    name: good\n  - url: {bad}\n    name: bad\n")

    done = run("update", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "good: 200 1 new, 0 updated" in done.stderr
    assert "bad: error 500: HTTP 500" in done.stderr
    assert "2 feeds polled, 1 failed; 1 new" in done.stderr
    atom = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert [e.title for e in atom.entries] == ["Good news"]

    listed = run("feeds", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    health = {row["name"]: row for row in json.loads(listed.stdout)}
    assert health["good"]["status"] == "ok" and health["good"]["entries"] == 1
    assert re.fullmatch(
        r"failing since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(1x\)", health["bad"]["status"]
    )
    assert "HTTP 500" in health["bad"]["last_error"]
    assert health["good"]["interval_reason"] == "auto (too little history)"
    table = run("feeds", cwd=tmp_path).stdout
    assert "good" in table and "failing since" in table
    assert health["bad"]["last_error"] in table  # whole in a pipe (issue 14 #7: cut at 20)
    assert "30m (auto (too little history))" in table

    shutil.rmtree(tmp_path / "out")
    rebuilt = run("build", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "wrote 4 changed output files" in rebuilt.stderr
    assert feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes()).entries[0].title == (
        "Good news"
    )


def test_counts_of_one_are_singular(feed_server: FeedServer, tmp_path: Path) -> None:
    """Issue 14 #8: "1 feeds polled", "1 outlets", "1 feeds added"."""
    url = feed_server.serve("/a.xml", rss(item("a1", "Only", "https://a.example/1")))
    write_config(tmp_path, f"  - url: {url}\n    name: a\n")
    done = run("update", cwd=tmp_path)
    assert "1 feed polled, 0 failed; 1 new, 0 updated; wrote 4 output files" in done.stderr
    stats = run("stats", cwd=tmp_path)
    assert stats.stdout.startswith("1 feed, 1 entry in 1 story (1 copy: 0 merged by URL")
    exported = run("opml", "export", "-o", str(tmp_path / "a.opml"), cwd=tmp_path)
    assert "wrote 1 feed to" in exported.stderr
    (tmp_path / "b.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>b</title></head><body>'
        '<outline type="rss" text="B" xmlUrl="https://b.example/rss"/>'
        '<outline type="rss" text="C" xmlUrl="https://c.example/rss"/></body></opml>'
    )
    other = tmp_path / "other" / "feeds.yaml"
    other.parent.mkdir()
    other.write_text("feeds:\n  - url: https://b.example/rss\n")
    imported = run("--config", str(other), "opml", "import", str(tmp_path / "b.opml"), cwd=tmp_path)
    assert f"1 feed added to {other}, 1 skipped (1 already configured)" in imported.stderr


def test_feeds_lists_the_configured_feeds_before_they_are_polled(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 14 #8: before the first update `feeds` was an empty table."""
    a = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    feeds = (
        f"  - url: {a}\n    name: a\n  - url: {a}?paused\n    name: paused\n    enabled: false\n"
    )
    path = write_config(tmp_path, feeds)
    table = run("feeds", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[2].split()[:3] == ["a", "never", "polled"]
    assert lines[3].split()[:4] == ["paused", "disabled", "in", "config"]
    listed = json.loads(run("feeds", "--format", "json", cwd=tmp_path).stdout)
    assert [(f["name"], f["status"], f["url"]) for f in listed] == [
        ("a", "never polled", a),
        ("paused", "disabled in config", f"{a}?paused"),
    ]
    assert not (tmp_path / "db").exists()  # listing created no database
    assert run("update", cwd=tmp_path).returncode == 0
    path.write_text(path.read_text() + f"  - url: {a}?new\n    name: new\n", encoding="utf-8")
    after = json.loads(run("feeds", "--format", "json", cwd=tmp_path).stdout)
    assert [(f["name"], f["status"]) for f in after] == [
        ("a", "ok"),
        ("new", "never polled"),
        ("paused", "disabled in config"),
    ]
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "feeds.yaml").write_text("feeds: []\n")
    empty = run("--config", str(tmp_path / "none" / "feeds.yaml"), "feeds", cwd=tmp_path)
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "no feeds\n")


def test_config_option_and_environment_variable(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "Elsewhere", "https://a.example/1")))
    (tmp_path / "conf").mkdir()
    config = write_config(tmp_path / "conf", f"  - url: {url}\n")
    by_option = run("--config", str(config), "update", cwd=tmp_path)
    assert by_option.returncode == 0, by_option.stderr
    assert (tmp_path / "conf" / "db" / "test.db").exists()  # relative to the config file
    by_env = run("feeds", cwd=tmp_path, env={"AGGREGATOR_CONFIG": str(config)})
    assert by_env.returncode == 0 and "a.xml" in by_env.stdout


def test_config_option_after_the_command(feed_server: FeedServer, tmp_path: Path) -> None:
    """Issue 14 #8: `aggregator update --config x` said "No such option"."""
    url = feed_server.serve("/a.xml", rss(item("a1", "After", "https://a.example/1")))
    (tmp_path / "conf").mkdir()
    config = str(write_config(tmp_path / "conf", f"  - url: {url}\n    name: a\n"))
    done = run("update", "--config", config, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "conf" / "db" / "test.db").exists()
    for args in (
        ("feeds", "-c", config, "--format", "json"),
        ("sql", "SELECT name FROM feeds", "--config", config, "--format", "json"),
        ("opml", "export", "--config", config),
        ("opml", "--config", config, "export"),
    ):
        ran = run(*args, cwd=tmp_path)
        assert ran.returncode == 0, (args, ran.stderr)
        assert "a.xml" in ran.stdout or '"a"' in ran.stdout, (args, ran.stdout)

    # In both places the one after the command wins; the environment variable loses to both.
    missing = str(tmp_path / "missing.yaml")
    after = run("--config", missing, "feeds", "--config", config, "--format", "json", cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert [row["name"] for row in json.loads(after.stdout)] == ["a"]
    before = run("--config", config, "feeds", "--config", missing, cwd=tmp_path)
    assert before.returncode == 2 and f"{missing}: config file not found" in before.stderr
    env = run("feeds", "--config", config, cwd=tmp_path, env={"AGGREGATOR_CONFIG": missing})
    assert env.returncode == 0, env.stderr
    imported = tmp_path / "x.opml"
    imported.write_text(run("opml", "export", "-c", config, cwd=tmp_path).stdout)
    other = tmp_path / "other.yaml"
    other.write_text(  # loopback URLs allowed
        "defaults:\n  allow_private_addresses: true\nfeeds:\n  - https://z.example/rss\n"
    )
    into = run(
        "--config", config, "opml", "import", str(imported), "--config", str(other), cwd=tmp_path
    )
    assert into.returncode == 0, into.stderr
    assert [f.url for f in load_config(other).feeds] == ["https://z.example/rss", url]


def test_every_command_takes_config_after_it() -> None:
    """Commands added later get it too: it is given to the whole tree in one place."""
    import click

    from aggregator.cli import cli

    def commands(group: click.Group) -> list[click.Command]:
        found: list[click.Command] = []
        for command in group.commands.values():
            found.append(command)
            if isinstance(command, click.Group):
                found += commands(command)
        return found

    every = commands(cli)
    assert {"update", "run", "build", "feeds", "sql", "opml", "export", "import"} <= {
        c.name for c in every
    }
    for command in every:
        options = [p for p in command.params if "--config" in getattr(p, "opts", [])]
        assert len(options) == 1 and options[0].opts == ["-c", "--config"], command.name


def test_bad_config_stops_before_anything_is_fetched(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "x", "https://a.example/1")))
    write_config(tmp_path, f"  - url: {url}\n    interval: 5 parsecs\n")
    done = run("update", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: feeds.yaml:12: feeds[0].interval")  # file, line, key
    assert "feeds[0].interval: '5 parsecs' is not a duration" in done.stderr
    assert "Traceback" not in done.stderr
    assert feed_server.requests == []
    assert not (tmp_path / "db").exists() and not (tmp_path / "out").exists()


def test_a_duration_without_its_unit_stops_before_anything_is_fetched(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 14 #6: `interval: 30` was read as 30 seconds without a word."""
    url = feed_server.serve("/a.xml", rss(item("a1", "x", "https://a.example/1")))
    write_config(tmp_path, f"  - url: {url}\n    interval: 30\n")
    done = run("update", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "Error: feeds.yaml:12: feeds[0].interval: 30 has no unit: "
        "write e.g. 30s, 30m or 30h (units: ms, s, m, h, d, w)\n"
    )
    assert feed_server.requests == [] and not (tmp_path / "db").exists()


EMPTY_FEEDS = [
    "feeds: []\n",
    "output:\n  dir: out\nfeeds:\n  # - url: https://a.example/rss   (commented out)\n",
]


@pytest.mark.parametrize("command", ["update", "run"])
@pytest.mark.parametrize("text", EMPTY_FEEDS)
def test_polling_no_feeds_is_an_error_unless_allowed(
    tmp_path: Path, command: str, text: str
) -> None:
    """Issue 14 #6: `feeds: []` polled nothing and exited 0 without a word."""
    (tmp_path / "feeds.yaml").write_text(text)
    done = run(command, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "Error: no feeds configured in feeds.yaml; add some (`aggregator opml import FILE` "
        "reads another reader's list), or give --allow-empty to poll none\n"
    )
    assert not (tmp_path / "db").exists()


def test_update_allow_empty_warns_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(EMPTY_FEEDS[1])
    done = run("update", "--allow-empty", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: no feeds configured in feeds.yaml\n")
    assert "0 feeds polled, 0 failed" in done.stderr
    quiet = run("update", "--allow-empty", "--quiet", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_run_allow_empty_starts_and_says_it_polls_nothing(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text("database: db/test.db\nfeeds: []\n")
    log = tmp_path / "run.log"
    with running("run", "--allow-empty", cwd=tmp_path, log=log) as process:
        assert wait_until(lambda: "polling nothing" in log.read_text(), 15), log.read_text()
        assert "WARNING no feeds configured in feeds.yaml: polling nothing" in log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_commands_that_do_not_poll_warn_about_no_feeds_and_exit_0(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text("output:\n  dir: out\nfeeds: []\n")
    built = run("build", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert built.stderr.startswith(
        "warning: no feeds configured in feeds.yaml: the outputs show what the database holds\n"
    )
    assert (tmp_path / "out" / "atom.xml").exists()
    exported = run("opml", "export", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == "warning: no feeds configured in feeds.yaml: the OPML lists none\n"
    assert exported.stdout.startswith("<?xml") and "<outline" not in exported.stdout
    listed = run("feeds", "--format", "json", cwd=tmp_path)  # reads the database: no warning
    assert (listed.returncode, listed.stderr, json.loads(listed.stdout)) == (0, "", [])


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    done = run("update", cwd=tmp_path)
    assert done.returncode == 2 and "feeds.yaml: config file not found" in done.stderr


def test_unknown_feed_name_is_a_usage_error(feed_server: FeedServer, tmp_path: Path) -> None:
    write_config(tmp_path, f"  - url: {feed_server.url('/a.xml')}\n    name: a\n")
    done = run("update", "--feed", "nope", cwd=tmp_path)
    assert done.returncode == 2 and "no feed named 'nope'" in done.stderr


def test_every_feed_failing_exits_1(feed_server: FeedServer, tmp_path: Path) -> None:
    write_config(tmp_path, f"  - url: {feed_server.url('/missing.xml')}\n")
    done = run("update", cwd=tmp_path)
    assert done.returncode == 1 and "every feed failed" in done.stderr


def test_offline_example_works_without_network(tmp_path: Path) -> None:
    example = tmp_path / "offline"
    shutil.copytree(
        ROOT / "examples" / "offline", example, ignore=shutil.ignore_patterns("db", "output")
    )
    done = run("--config", str(example / "feeds.yaml"), "update", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 feeds polled, 0 failed; 8 new" in done.stderr
    atom = feedparser.parse((example / "output" / "atom.xml").read_bytes())
    assert atom.bozo == 0
    titles = [e.title for e in atom.entries]
    assert titles.count("Council approves the new sea wall") == 1  # three feeds, one URL
    assert len(titles) == 5  # eight items: the sea wall by URL, the ferry story in other words
    (ferry,) = [e for e in atom.entries if "ferry" in e.title.lower()]
    assert (
        "Also reported by" in ferry.content[0].value and "Valley Courier" in ferry.content[0].value
    )
    again = run("--config", str(example / "feeds.yaml"), "update", cwd=tmp_path)
    assert "3 feeds polled, 0 failed; 0 new, 0 updated; wrote 0 output files" in again.stderr


def test_version_and_help(tmp_path: Path) -> None:
    assert "aggregator, version" in run("--version", cwd=tmp_path).stdout
    helped = run("--help", cwd=tmp_path).stdout
    for command in ("update", "build", "feeds"):
        assert command in helped


def test_serve_serves_the_outputs_until_sigterm(tmp_path: Path) -> None:
    example = tmp_path / "offline"
    shutil.copytree(
        ROOT / "examples" / "offline", example, ignore=shutil.ignore_patterns("db", "output")
    )
    config = str(example / "feeds.yaml")
    assert run("--config", config, "update", cwd=tmp_path).returncode == 0
    with serving("--config", config, cwd=tmp_path, log=tmp_path / "serve.log") as (process, base):
        response = requests.get(f"{base}/atom.xml", timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/atom+xml")
        assert response.content == (example / "output" / "atom.xml").read_bytes()
        again = requests.get(
            f"{base}/atom.xml",
            headers={"If-None-Match": response.headers["ETag"]},
            timeout=5,
        )
        assert again.status_code == 304
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_opml_export_and_import_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "a"
    source.mkdir()
    config = source / "feeds.yaml"
    config.write_text(
        "# my feeds\nfeeds:\n  - url: https://one.example/rss  # the first\n    tags: [world]\n"
        "  - url: https://two.example/atom.xml\n    title: Two & Co\n",
        encoding="utf-8",
    )
    exported = run("--config", str(config), "opml", "export", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("<?xml") and 'category="world"' in exported.stdout
    assert "Two &amp; Co" in exported.stdout
    to_file = run(
        "--config", str(config), "opml", "export", "-o", str(tmp_path / "x.opml"), cwd=tmp_path
    )
    assert to_file.returncode == 0 and "<dateCreated>" in (tmp_path / "x.opml").read_text()

    target = tmp_path / "b" / "feeds.yaml"
    target.parent.mkdir()
    original = "feeds:\n  # keep me\n  - url: https://two.example/atom.xml\n"
    target.write_text(original, encoding="utf-8")
    imported = run(
        "--config", str(target), "opml", "import", str(tmp_path / "x.opml"), cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    assert "added: https://one.example/rss" in imported.stderr
    assert "skipped: https://two.example/atom.xml: already configured" in imported.stderr
    text = target.read_text(encoding="utf-8")
    assert text.startswith(original)  # comments and order of the existing file kept
    assert [f.url for f in load_config(target).feeds] == [
        "https://two.example/atom.xml",
        "https://one.example/rss",
    ]
    again = run("--config", str(target), "opml", "import", str(tmp_path / "x.opml"), cwd=tmp_path)
    assert again.returncode == 0 and "nothing new" in again.stderr
    (tmp_path / "bad.opml").write_text("<html><body>not opml</body></html>")
    bad = run("--config", str(target), "opml", "import", str(tmp_path / "bad.opml"), cwd=tmp_path)
    assert bad.returncode == 2 and "not an OPML file" in bad.stderr
    assert target.read_text(encoding="utf-8") == text


def test_opml_round_trip_leaves_local_files_out_and_imports_the_rest(tmp_path: Path) -> None:
    """Issue 14 #8: export wrote file:// feeds that import then refused."""
    source = tmp_path / "a"
    source.mkdir()
    (source / "local.xml").write_text("<rss/>")
    config = source / "feeds.yaml"
    config.write_text(
        "feeds:\n  - url: https://one.example/rss\n    tags: [world]\n"
        "  - url: local.xml\n    name: mine\n  - url: https://two.example/atom.xml\n",
        encoding="utf-8",
    )
    exported = run("--config", str(config), "opml", "export", "-o", "x.opml", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    local_url = (source / "local.xml").as_uri()
    assert exported.stderr == (
        f"left out: {local_url}: a local file (OPML import never adds those)\n"
        "wrote 2 feeds to x.opml\n"
    )
    assert "local.xml" not in (tmp_path / "x.opml").read_text()

    target = tmp_path / "b" / "feeds.yaml"
    target.parent.mkdir()
    target.write_text("feeds: []\n", encoding="utf-8")
    imported = run("--config", str(target), "opml", "import", "x.opml", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr.endswith(f"2 feeds added to {target}, 0 skipped\n")
    assert [(f.url, f.tags) for f in load_config(target).feeds] == [
        ("https://one.example/rss", ("world",)),
        ("https://two.example/atom.xml", ()),
    ]

    # An OPML from elsewhere that names a local file adds nothing and says why.
    (tmp_path / "sent.opml").write_text(
        '<opml version="2.0"><body><outline text="x" xmlUrl="file:///etc/passwd"/></body></opml>'
    )
    before = target.read_text(encoding="utf-8")
    sent = run("--config", str(target), "opml", "import", "sent.opml", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert sent.stderr == (
        "skipped: file:///etc/passwd: a local file (OPML import never adds those; "
        "add it to the config by hand)\n"
        f"nothing new; {target} unchanged\n"
    )
    assert target.read_text(encoding="utf-8") == before


def test_a_broken_template_stops_before_anything_runs(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    path = write_config(tmp_path, f"  - url: {url}\n")
    (tmp_path / "page.html.j2").write_text("<h1>{{ feed.title }</h1>\n{% for e in entries %}")
    path.write_text(
        path.read_text().replace("defaults:\n", "  template: page.html.j2\ndefaults:\n", 1)
    )
    done = run("update", cwd=tmp_path)
    assert done.returncode == 2 and "page.html.j2: line 1" in done.stderr
    assert feed_server.requests == []
    (tmp_path / "page.html.j2").write_text(
        "<h1>{{ feed.title }}</h1>{% for e in entries %}<p>{{ e.title }}</p>{% endfor %}"
    )
    assert run("update", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out" / "index.html").read_text() == "<h1>Merged</h1><p>One</p>"


def test_bad_ports_and_missing_databases_are_messages_not_tracebacks(tmp_path: Path) -> None:
    """A port out of range is a usage error (exit 2; it was an OverflowError traceback), and
    `stories` before the first update says so instead of creating an empty database."""
    config = tmp_path / "feeds.yaml"
    config.write_text("database: db/a.db\nfeeds:\n  - url: https://a.example/rss\n")
    for args in (["serve", "--port", "99999"], ["run", "--serve", "--port", "70000"]):
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "99999" in done.stderr or "70000" in done.stderr
    for args in (["stories"], ["stories", "--rebuild"]):
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 1 and "run `aggregator update` first" in done.stderr
    assert not (tmp_path / "db" / "a.db").exists()


def test_update_quiet_prints_no_warning(tmp_path: Path) -> None:
    """`--quiet` prints only errors: not the warning that base_url is unset."""
    (tmp_path / "a.xml").write_text(
        '<rss version="2.0"><channel><title>A</title><link>https://a.example/</link>'
        "<item><title>One</title><link>https://a.example/1</link></item></channel></rss>"
    )
    (tmp_path / "feeds.yaml").write_text(
        "database: db/a.db\noutput:\n  dir: out\nfeeds:\n  - url: a.xml\n"
    )
    loud = run("update", cwd=tmp_path)
    assert loud.returncode == 0 and "base_url is not set" in loud.stderr, loud.stderr
    feed = tmp_path / "a.xml"
    feed.write_text(feed.read_text().replace("One", "Two"))
    os.utime(feed, (feed.stat().st_atime, feed.stat().st_mtime + 5))  # a new Last-Modified
    quiet = run("update", "--quiet", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert "Two" in (tmp_path / "out" / "atom.xml").read_text()
