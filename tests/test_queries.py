"""Querying the database from the CLI and Datasette: a real database built by the pipeline."""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import json
import os
import pty
import queue
import re
import shlex
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
import requests
from conftest import FeedServer, item, rss, write_config

from aggregator.config import load_config
from aggregator.pipeline import update

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def news(feed_server: FeedServer, tmp_path: Path) -> Path:
    """A config whose database holds two feeds' entries, one story told by both."""
    world = rss(
        item(
            "w1",
            "Volcano erupts near Grindavik, thousands evacuated",
            "https://w.example/1",
            date="Wed, 25 Nov 2026 09:00:00 GMT",
            body="Lava reached the town's edge.",
        )
        + item(
            "w2",
            "Parliament passes the budget",
            "https://w.example/2",
            date="Tue, 24 Nov 2026 15:00:00 GMT",
            body="A narrow vote on spending.",
        )
        + item(
            "w3",
            "Old news from last year",
            "https://w.example/3",
            date="Mon, 25 Nov 2025 15:00:00 GMT",
            body="Archive.",
        ),
        title="World",
    )
    local = rss(
        item(
            "l1",
            "Thousands evacuated as volcano erupts near Grindavik",
            "https://l.example/1",
            date="Wed, 25 Nov 2026 09:30:00 GMT",
            body="Evacuation of Grindavik continues.",
        ),
        title="Local",
    )
    feeds = (
        f"  - url: {feed_server.serve('/world.xml', world)}\n    name: world\n    tags: [world]\n"
        f"  - url: {feed_server.serve('/local.xml', local)}\n    name: local\n    tags: [local]\n"
    )
    path = write_config(tmp_path, feeds)
    update(load_config(path))
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_entries_formats_and_filters(news: Path) -> None:
    as_json = json.loads(cli(news, "entries", "--format", "json").stdout)
    assert [e["title"] for e in as_json] == [
        "Thousands evacuated as volcano erupts near Grindavik",
        "Volcano erupts near Grindavik, thousands evacuated",
        "Parliament passes the budget",
        "Old news from last year",
    ]
    assert as_json[0]["feed"] == "local" and as_json[0]["feed_tags"] == ["local"]
    assert as_json[0]["story"] == as_json[1]["story"]  # one story, two outlets

    lines = cli(news, "entries", "--feed", "world", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["feed"] for line in lines] == ["world"] * 3

    rows = list(
        csv.DictReader(
            io.StringIO(cli(news, "entries", "--tag", "local", "--format", "csv").stdout)
        )
    )
    assert [r["title"] for r in rows] == ["Thousands evacuated as volcano erupts near Grindavik"]

    since = json.loads(cli(news, "entries", "--since", "2026-11-25", "--format", "json").stdout)
    assert len(since) == 2
    until = json.loads(cli(news, "entries", "--until", "2026-11-01", "--format", "json").stdout)
    assert [e["title"] for e in until] == ["Old news from last year"]
    story = as_json[0]["story"]
    members = json.loads(cli(news, "entries", "--story", str(story), "--format", "json").stdout)
    assert len(members) == 2
    assert len(json.loads(cli(news, "entries", "--limit", "1", "--format", "json").stdout)) == 1

    table = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(news), "entries"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "60"},
    ).stdout.splitlines()
    assert table[0].split() == ["published", "feed", "title", "link", "story"]
    # A pipe gets every value whole, whatever COLUMNS says (issue 14 #7).
    assert "Thousands evacuated as volcano erupts near Grindavik" in table[2]
    assert "…" not in "".join(table)


def on_terminal(config: Path, *args: str, columns: int) -> str:
    """What the command writes to a terminal ``columns`` wide (a pseudo-terminal, its size
    set as a terminal sets it; no COLUMNS in the environment)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    return output.decode().replace("\r\n", "\n")


def test_entries_and_feeds_fit_an_80_column_terminal(news: Path) -> None:
    """Issue 14 #7: at 80 columns `entries` lost the time and `feeds` was 131+ wide."""
    entries = on_terminal(news, "entries", columns=80).splitlines()
    assert entries[0].split() == ["published", "feed", "title", "link", "story"]
    assert all(len(line) <= 80 for line in entries), entries
    assert entries[2].startswith("2026-11-25T09:30:00Z  local")
    assert entries[-1].startswith("2025-11-25T15:00:00Z  world")
    assert "…" in entries[2]  # the title or link gave way instead
    feeds = on_terminal(news, "feeds", columns=80).splitlines()
    assert all(len(line) <= 80 for line in feeds), feeds
    body = feeds[1 + next(i for i, line in enumerate(feeds) if line.startswith("---")) :]
    assert [line.split()[0] for line in body if not line.startswith(" ")] == ["local", "world"]


def test_entries_story_lists_every_outlets_copy(news: Path, feed_server: FeedServer) -> None:
    """Issue 14 #8: a copy merged into another feed's entry by its URL was not listed."""
    wire = rss(
        item(
            "x1",
            "Grindavik volcano erupts; thousands leave",
            "https://w.example/1?utm_source=wire",  # the world feed's URL: one entry, two copies
            date="Wed, 25 Nov 2026 09:10:00 GMT",
        ),
        title="Wire",
    )
    url = feed_server.serve("/wire.xml", wire)
    news.write_text(news.read_text() + f"  - url: {url}\n    name: wire\n", encoding="utf-8")
    update(load_config(news))
    (volcano,) = {
        e["story"]
        for e in json.loads(cli(news, "entries", "--format", "json").stdout)
        if "olcano" in e["title"]
    }
    copies = json.loads(cli(news, "entries", "--story", str(volcano), "--format", "json").stdout)
    assert [(c["feed"], c["title"]) for c in copies] == [
        ("local", "Thousands evacuated as volcano erupts near Grindavik"),
        ("wire", "Grindavik volcano erupts; thousands leave"),
        ("world", "Volcano erupts near Grindavik, thousands evacuated"),
    ]
    assert copies[1]["link"] == "https://w.example/1?utm_source=wire"
    assert copies[1]["published"] == "2026-11-25T09:10:00Z" and copies[1]["feed_tags"] == []
    assert {c["story"] for c in copies} == {volcano}
    table = cli(news, "entries", "--story", str(volcano)).stdout
    assert "Grindavik volcano erupts; thousands leave" in table
    one = json.loads(
        cli(news, "entries", "--story", str(volcano), "--feed", "wire", "--format", "json").stdout
    )
    assert [c["feed"] for c in one] == ["wire"]


@pytest.mark.parametrize(
    ("args", "message", "stdout"),
    [
        (("entries", "--since", "2030-01-01"), "no entries", ""),
        (("entries", "--since", "2030-01-01", "--format", "json"), "no entries", "[]\n"),
        (
            ("entries", "--feed", "local", "--format", "csv", "--until", "2000-01-01"),
            "no entries",
            "",
        ),
        (("search", "zeppelin"), "no entries match 'zeppelin'", ""),
        (("sql", "SELECT name FROM feeds WHERE 0"), "no rows", ""),
        (("stories", "--since", "2030-01-01"), "no stories told by several outlets since", ""),
        (
            ("stories", "--all", "--since", "2030-01-01", "--format", "json"),
            "no stories since",
            "[]\n",
        ),
    ],
)
def test_an_empty_result_says_so_on_stderr(
    news: Path, args: tuple[str, ...], message: str, stdout: str
) -> None:
    """Issue 14 #8: an empty result printed nothing at all."""
    done = cli(news, *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout == stdout
    assert done.stderr.startswith(message), done.stderr


def test_search_ranks_and_highlights(news: Path) -> None:
    found = json.loads(cli(news, "search", "grindavik", "--format", "json").stdout)
    assert {f["feed"] for f in found} == {"world", "local"}
    assert all("[" in f["snippet"].lower() and "grindavik" in f["snippet"].lower() for f in found)
    assert found[0]["rank"] <= found[-1]["rank"]  # bm25: lower is better, best first
    phrase = json.loads(cli(news, "search", '"narrow vote"', "--format", "json").stdout)
    assert [p["title"] for p in phrase] == ["Parliament passes the budget"]
    either = json.loads(cli(news, "search", "budget OR lava", "--format", "json").stdout)
    assert len(either) == 2
    # words are stemmed (porter): a prefix matches stems, "evac*" finds "evacuated"
    prefix = json.loads(cli(news, "search", "evac*", "--format", "json").stdout)
    assert len(prefix) == 2
    table = cli(news, "search", "budget")
    assert table.returncode == 0 and "Parliament passes the budget" in table.stdout


def test_sql_is_read_only(news: Path) -> None:
    rows = json.loads(
        cli(news, "sql", "SELECT name FROM feeds ORDER BY name", "--format", "json").stdout
    )
    assert rows == [{"name": "local"}, {"name": "world"}]
    for statement in (
        "DELETE FROM entries",
        "UPDATE feeds SET name = 'x'",
        "DROP TABLE entries",
        "CREATE TABLE t (x)",
        "PRAGMA query_only = 0; DELETE FROM entries",
    ):
        refused = cli(news, "sql", statement)
        assert refused.returncode == 2, statement
        assert "read-only" in refused.stderr or "SQL error" in refused.stderr, refused.stderr
    database = load_config(news).database
    assert sqlite3.connect(database).execute("SELECT count(*) FROM entries").fetchone() == (4,)
    broken = cli(news, "sql", "SELEC nothing")
    assert (
        broken.returncode == 2 and "SQL error" in broken.stderr and "Traceback" not in broken.stderr
    )


@pytest.mark.parametrize(
    "since", ["2026-11-25T11:15+02:00", "2026-11-25T09:15Z", "2026-11-25T04:15-05:00"]
)
def test_entries_since_and_until_honour_the_offset(news: Path, since: str) -> None:
    """Issue 14 #1: the offset was dropped, so one instant written two ways gave two answers.
    The entries were published at 09:00 and 09:30 UTC on 25 November."""
    after = json.loads(cli(news, "entries", "--since", since, "--format", "json").stdout)
    before = json.loads(cli(news, "entries", "--until", since, "--format", "json").stdout)
    assert [row["title"] for row in after] == [
        "Thousands evacuated as volcano erupts near Grindavik"
    ]
    assert "Volcano erupts near Grindavik, thousands evacuated" in [r["title"] for r in before]


ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def test_sql_stops_a_runaway_query_at_its_timeout(news: Path) -> None:
    """Issue 13 #7: a recursive CTE ran until SIGKILL."""
    started = time.monotonic()
    stopped = cli(news, "sql", ENDLESS, "--timeout", "1")
    assert stopped.returncode == 2 and "stopped after 1 s" in stopped.stderr, stopped.stderr
    assert time.monotonic() - started < 15


def test_sql_stops_at_ctrl_c(news: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(news), "sql", ENDLESS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2.0)  # started, and inside the query
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2 and "interrupted" in stderr, stderr


@pytest.mark.parametrize("statement", ["ATTACH '{path}' AS other", "VACUUM INTO '{path}'"])
def test_sql_refuses_to_create_files(news: Path, tmp_path: Path, statement: str) -> None:
    target = tmp_path / "created.db"
    refused = cli(news, "sql", statement.format(path=target))
    assert refused.returncode == 2 and "ATTACH" in refused.stderr, refused.stderr
    assert not target.exists()


def test_stats(news: Path) -> None:
    found = json.loads(cli(news, "stats", "--format", "json").stdout)
    assert (found["feeds"], found["entries"], found["copies"]) == (2, 4, 4)
    assert found["stories"] == 3 and found["merged_same_story"] == 1
    assert found["database_bytes"] > 0
    assert {f["feed"]: f["copies"] for f in found["per_feed"]} == {"world": 3, "local": 1}
    # Issue 14 #8: "newest" was the fetch time; it is the newest publication, labelled so.
    newest = {f["feed"]: f["newest_published"] for f in found["per_feed"]}
    assert newest == {"world": "2026-11-25T09:00:00Z", "local": "2026-11-25T09:30:00Z"}
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert all(f["last_fetched"].startswith(today) for f in found["per_feed"])
    assert found["per_day"][0] == {"day": "2026-11-25", "entries": 2}
    text = cli(news, "stats").stdout
    assert "2 feeds, 4 entries in 3 stories" in text and "1 by story" in text
    assert "newest_published" in text and "last_fetched" in text
    assert "2026-11-25T09:30:00Z" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("entries", "--feed", "nope"), "no feed named 'nope' (feeds: local, world)"),
        (("entries", "--since", "last tuesday"), "neither a date"),
        (("entries", "--since", "45"), "neither a date"),  # 45 what? (issue 14 #6)
        (("search", '"unterminated'), "cannot search for"),
        (("search", "AND"), "cannot search for"),
        (("entries", "--format", "xml"), "Invalid value for '--format'"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_2(
    news: Path, args: tuple[str, ...], message: str
) -> None:
    done = cli(news, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_no_database_yet(tmp_path: Path) -> None:
    path = write_config(tmp_path, "  - url: https://a.example/rss\n")
    done = cli(path, "entries")
    assert (
        done.returncode == 1 and "no database" in done.stderr and "aggregator update" in done.stderr
    )


@pytest.mark.parametrize("name", ["aggregator", "test"])
def test_datasette_opens_it_with_search_and_canned_queries(news: Path, name: str) -> None:
    """`aggregator` is the name the template is keyed to (plain `datasette db/aggregator.db -m
    aggregator/datasette.yaml`); `test` is the fixture's own name, keyed at run time."""
    datasette_app = pytest.importorskip("datasette.app")
    yaml = pytest.importorskip("yaml")
    from aggregator.browse import TEMPLATE, metadata_for

    database = load_config(news).database
    named = database.with_name(f"{name}.db")
    if named != database:
        database.rename(named)
    template = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    metadata = template if name == "aggregator" else metadata_for(named)

    async def browse() -> None:
        ds = datasette_app.Datasette([str(named)], metadata=metadata)
        found = await ds.client.get(f"/{name}/entries.json?_search=grindavik&_shape=array")
        assert found.status_code == 200 and len(found.json()) == 2
        canned = await ds.client.get(f"/{name}/search.json?query=budget&_shape=array")
        assert [r["title"] for r in canned.json()] == ["Parliament passes the budget"]
        # The description's own example form: NOT between words.
        excluding = await ds.client.get(
            f"/{name}/search.json?query=grindavik+NOT+lava&_shape=array"
        )
        assert [r["feed"] for r in excluding.json()] == ["local"]
        # The link on the database page opens it with no query: an empty answer, not a 400.
        for blank in ("", "?query=", "?query=+++"):
            empty = await ds.client.get(f"/{name}/search.json{blank}")
            assert empty.status_code == 200 and empty.json()["rows"] == [], empty.text
        page = await ds.client.get(f"/{name}/search")
        assert page.status_code == 200 and "flood NOT tide" in page.text
        top = await ds.client.get(f"/{name}/top_stories.json?_shape=array")
        assert top.json()[0]["outlets"] == 2
        for query in ("latest_per_feed", "failing_feeds"):
            assert (await ds.client.get(f"/{name}/{query}.json")).status_code == 200, query
        view = await ds.client.get(f"/{name}/entries_view.json?_shape=array&feed=local")
        assert [r["title"] for r in view.json()] == [
            "Thousands evacuated as volcano erupts near Grindavik"
        ]
        # Raw FTS5 syntax (a prefix) on the view, which has no full-text index of its own.
        prefixed = await ds.client.get(f"/{name}/entries_view.json?_search=grindav*&_shape=array")
        assert prefixed.status_code == 200 and len(prefixed.json()) == 2, prefixed.text

    asyncio.run(browse())


def _lines_from(stream: IO[str]) -> queue.Queue[str]:
    """Each line a process writes, as it comes, for waiting on one with a timeout."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_datasette_command_serves_the_offline_example(tmp_path: Path) -> None:
    """The README's lines for the offline example, run as written (plus a free port): its
    `offline.db` answers the canned queries and search; nothing is left behind at the stop."""
    pytest.importorskip("datasette")
    shutil.copytree(ROOT / "examples" / "offline", tmp_path / "examples" / "offline")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    update_line = "aggregator --config examples/offline/feeds.yaml update"
    assert f"`{update_line}`" in readme
    datasette_line = next(
        line
        for line in readme.splitlines()
        if line.startswith("aggregator --config examples/offline/feeds.yaml datasette")
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "TMPDIR": str(scratch)}
    run = [sys.executable, "-m"]
    updated = subprocess.run(
        run + shlex.split(update_line),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert updated.returncode == 0, updated.stderr
    process = subprocess.Popen(
        [*run, *shlex.split(datasette_line, comments=True), "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines_out = _lines_from(process.stderr)
        said = ""
        while (started := re.search(r"running on (http://127\.0\.0\.1:\d+)", said)) is None:
            said += lines_out.get(timeout=60)
        base = started.group(1) + "/offline"
        assert len(list(scratch.iterdir())) == 1  # the metadata made for `offline`

        found = requests.get(f"{base}/search.json?query=ferry&_shape=array", timeout=10)
        assert found.status_code == 200, found.text
        assert "Storm closes the ferry crossing for a second day" in [
            r["title"] for r in found.json()
        ]
        empty = requests.get(f"{base}/search.json", timeout=10)
        assert empty.status_code == 200 and empty.json()["rows"] == [], empty.text
        for query in ("top_stories", "latest_per_feed", "failing_feeds"):
            answer = requests.get(f"{base}/{query}.json", timeout=10)
            assert answer.status_code == 200, (query, answer.text)
        searched = requests.get(f"{base}/entries.json?_search=ferr*&_shape=array", timeout=10)
        assert searched.status_code == 200 and searched.json(), searched.text
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    # Stopped by its own shutdown (uvicorn may re-raise the SIGINT it caught), not killed.
    assert code in (0, 128 + signal.SIGINT), said
    assert list(scratch.iterdir()) == []
    with pytest.raises(requests.ConnectionError):  # Datasette stopped with it
        requests.get(base, timeout=5)


def test_datasette_command_says_what_is_missing(news: Path, tmp_path: Path) -> None:
    (tmp_path / "fresh").mkdir()
    fresh = write_config(tmp_path / "fresh", "  - url: https://a.example/rss\n")
    no_database = cli(fresh, "datasette")
    assert no_database.returncode == 2, no_database.stderr
    assert "no database" in no_database.stderr and "aggregator update" in no_database.stderr
    assert "Traceback" not in no_database.stderr
    # Without datasette importable (its module entry blocked, as when it is not installed).
    no_datasette = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['datasette'] = None\n"
            "from aggregator.console import main; main()",
            "--config",
            str(news),
            "datasette",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_datasette.returncode == 2, no_datasette.stderr
    assert "pip install -e '.[datasette]'" in no_datasette.stderr


def test_update_shows_a_progress_bar_only_on_a_terminal(news: Path) -> None:
    piped = cli(news, "update")
    assert "polling" not in piped.stderr and "world: 200 0 new" in piped.stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(news), "update"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    text = output.decode(errors="replace")
    assert "polling" in text and "2/2" in text


@pytest.mark.parametrize(
    ("snippet", "plain"),
    [
        ('kept the ferry in port. <a href="https://x.example/a', "kept the ferry in port. "),
        ('example/a">the ferry</a> sailed', "the ferry sailed"),
        ("<p>the <b>ferry</b></p>", "the ferry"),
        (None, ""),
    ],
)
def test_search_snippets_lose_tags_cut_at_either_end(snippet: str | None, plain: str) -> None:
    from aggregator.queries import plain_snippet

    assert plain_snippet(snippet) == plain
