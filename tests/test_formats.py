"""Fitting tables to the terminal: a pure function of rows and width (issue 14, item 7)."""

from __future__ import annotations

import pytest

from aggregator.formats import (
    BOLD,
    NOT_BOLD,
    counted,
    display_width,
    embolden,
    fit_cells,
    fit_table,
    render_rows,
)

FEED_HEADERS = [
    "feed",
    "status",
    "http",
    "last fetch (UTC)",
    "next due (UTC)",
    "interval",
    "entries",
    "last error",
]
FEED_KEEP = ("feed", "http", "last fetch (UTC)", "next due (UTC)", "entries")
ERROR = (
    "HTTPSConnectionPool(host='valley-courier.example', port=443): Max retries exceeded with "
    "url: /news/feed.atom (Caused by NameResolutionError: Failed to resolve)"
)
FEEDS = [
    [
        "harbour-gazette",
        "ok",
        "200",
        "2026-12-03 10:34:14",
        "2026-12-03 16:14:52",
        "5.12h (auto)",
        "3",
        "",
    ],
    [
        "valley-courier",
        "failing since 2026-12-03 10:34:14 (4x)",
        "",
        "2026-12-03 10:34:14",
        "2026-12-03 18:34:14",
        "8h (backoff after 4 errors)",
        "1204",
        ERROR,
    ],
    ["wire-service", "never polled", "", "", "", "", "0", ""],
]
ENTRY_HEADERS = ["published", "feed", "title", "link", "story"]
ENTRIES = [
    [
        "2026-11-25T08:20:00Z",
        "valley-courier",
        "Ferry crossing closed for a second day as storm batters the coast",
        "https://valley-courier.example/news/ferry-storm?utm_source=rss&utm_medium=feed",
        "1",
    ],
    [
        "2026-11-24T11:00:00Z",
        "harbour-gazette",
        "Council approves the new sea wall",
        "https://regional-wire.example/stories/sea-wall-approved",
        "31337",
    ],
]


def whole(lines: list[str]) -> str:
    """A wrapped value put back together (wrapping drops the spaces it breaks at)."""
    return "".join(lines).replace(" ", "")


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_feeds_table_fits_and_keeps_times_and_names_whole(width: int) -> None:
    """Issue 14 #7: at 80 and 100 columns `feeds` was 131-153 characters wide."""
    lines = fit_table(FEED_HEADERS, FEEDS, width, keep=FEED_KEEP, max_lines=4)
    assert max(map(display_width, lines)) <= width
    assert max(map(display_width, lines)) >= width - 10  # and uses the room it has
    widths, head, body = fit_cells(FEED_HEADERS, FEEDS, width, keep=FEED_KEEP, max_lines=4)
    assert sum(widths) + 2 * (len(widths) - 1) <= width
    for row, cells in zip(FEEDS, body, strict=True):
        for i, (header, value, value_lines) in enumerate(
            zip(FEED_HEADERS, row, cells, strict=True)
        ):
            assert all(display_width(line) <= widths[i] for line in value_lines)
            if header in FEED_KEEP:
                assert whole(value_lines) == value.replace(" ", ""), (header, value_lines)
            else:
                assert len(value_lines) <= 4
    assert [whole(h) for h in head] == [h.replace(" ", "") for h in FEED_HEADERS]


def test_the_error_wraps_whole_when_there_is_room_and_is_elided_when_not() -> None:
    wide = fit_cells(FEED_HEADERS, FEEDS, 200, keep=FEED_KEEP, max_lines=4)[2]
    assert whole(wide[1][-1]) == ERROR.replace(" ", "")
    narrow = fit_cells(FEED_HEADERS, FEEDS, 80, keep=FEED_KEEP, max_lines=4)[2]
    assert len(narrow[1][-1]) == 4 and narrow[1][-1][-1].endswith("…")


@pytest.mark.parametrize("width", [80, 100, 200])
def test_entries_keep_their_time_and_story_and_lose_only_title_and_link(width: int) -> None:
    """Issue 14 #7: `entries` at 80 columns cut the publication time."""
    lines = fit_table(ENTRY_HEADERS, ENTRIES, width, keep=("feed",))
    assert max(map(display_width, lines)) <= width
    assert len(lines) == 2 + len(ENTRIES)  # one line a row: the titles elided, not wrapped
    for line, (published, feed, *_, story) in zip(lines[2:], ENTRIES, strict=True):
        assert line.startswith(f"{published}  {feed}")
        assert line.endswith(f"  {story}")
    if width < 200:
        assert "…" in lines[2]
    else:
        assert ENTRIES[0][2] in lines[2] and ENTRIES[0][3] in lines[2]


def test_without_a_width_every_value_prints_whole_on_one_line() -> None:
    """In a pipe: the error column was cut to 20 characters even there (issue 14 #7)."""
    lines = fit_table(FEED_HEADERS, FEEDS, None, keep=FEED_KEEP, max_lines=4)
    assert len(lines) == 2 + len(FEEDS)
    assert lines[2 + 1].endswith(ERROR) and "…" not in "".join(lines)
    text = render_rows([dict(zip(ENTRY_HEADERS, e, strict=True)) for e in ENTRIES], "table")
    assert ENTRIES[0][3] in text and "…" not in text


@pytest.mark.parametrize("width", [1, 5, 20, 30, 45])
def test_even_an_absurdly_narrow_terminal_is_never_exceeded(width: int) -> None:
    lines = fit_table(FEED_HEADERS, FEEDS, width, keep=FEED_KEEP, max_lines=4)
    assert all(display_width(line) <= width for line in lines)


def test_wide_characters_count_twice_and_markers_not_at_all() -> None:
    headers = ["published", "title"]
    rows = [["2026-11-25T08:20:00Z", "東京で大雨、交通機関に乱れ 東京で大雨、交通機関に乱れ"]]
    lines = fit_table(headers, rows, 40)
    assert all(display_width(line) <= 40 for line in lines)
    assert max(map(display_width, lines)) >= 38
    assert display_width("東京") == 4 and display_width("a\x02b\x03") == 2


def test_a_wrapped_time_gives_its_unused_width_to_the_text() -> None:
    """A time wrapped at its space needs only its date's width; the rest goes to the text."""
    widths, _, body = fit_cells(FEED_HEADERS, FEEDS, 100, keep=FEED_KEEP, max_lines=4)
    fetched = FEED_HEADERS.index("last fetch (UTC)")
    assert body[0][fetched] == ["2026-12-03", "10:34:14"]
    assert widths[fetched] == len("last fetch (UTC)")  # its header's width, not 18 or 19


def test_embolden_closes_a_highlight_an_elision_left_open() -> None:
    text = "a \x02volcano\x03 b\nstarts \x02lava…\n"
    assert embolden(text, "\x02", "\x03") == (
        f"a {BOLD}volcano{NOT_BOLD} b\nstarts {BOLD}lava…{NOT_BOLD}\n"
    )


def test_counted_agrees_with_its_count() -> None:
    assert [counted(n, "feed") for n in (0, 1, 2)] == ["0 feeds", "1 feed", "2 feeds"]
    assert [counted(n, "entry") for n in (1, 3)] == ["1 entry", "3 entries"]
    assert counted(2, "copy") == "2 copies" and counted(2, "day") == "2 days"
    assert counted(2, "in-flight fetch") == "2 in-flight fetches"
    assert counted(2, "person", "people") == "2 people"


STATS_HEADERS = ["feed", "copies", "entries_shown", "newest_published", "last_fetched", "last_poll"]
STATS = [
    ["harbour-gazette", "3", "2", "2026-11-25T07:30:00Z", "2026-12-03T10:54:57Z", "updated"],
    ["wire-service", "1204", "1187", "2026-11-25T05:20:00Z", "2026-12-03T10:54:57Z", "error"],
]


@pytest.mark.parametrize(("width", "poll_width"), [(60, 6), (80, 9)])
def test_iso_times_wrap_after_their_t_and_headers_at_underscores(
    width: int, poll_width: int
) -> None:
    """`stats` at 80 columns cut its ISO times anywhere ("2026-11-25T07:30" / ":00Z") and
    elided the last column to "upd…"; a time wraps after its T, a key after its underscore."""
    lines = fit_table(STATS_HEADERS, STATS, width, keep=("feed",))
    assert all(display_width(line) <= width for line in lines)
    widths, head, body = fit_cells(STATS_HEADERS, STATS, width, keep=("feed",))
    for cells, row in zip(body, STATS, strict=True):
        for i in (3, 4):
            assert cells[i] in ([row[i]], [row[i][:11], row[i][11:]]), cells[i]
    assert widths[5] == poll_width  # what the kept columns leave the text
    assert body[0][5] == (["updated"] if poll_width >= 7 else ["updat…"])
    assert ["newest_", "published"] in head or ["newest_published"] in head


def test_a_poll_line_without_an_http_status_says_error_alone() -> None:
    from aggregator.formats import poll_line
    from aggregator.types import PollResult, PollStatus

    failed = PollResult("feed", PollStatus.ERROR, None, error="cannot resolve a.example")
    assert poll_line(failed) == "feed: error: cannot resolve a.example (0.0s)"
    served = PollResult("feed", PollStatus.ERROR, 503, error="HTTP 503")
    assert poll_line(served) == "feed: error 503: HTTP 503 (0.0s)"
