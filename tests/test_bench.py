"""The story benchmarks keep running: tiny inputs, the output contract, no timing asserted."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    "id",
    "title",
    "publisher",
    "url",
    "hostname",
    "category",
    "story_id",
    "timestamp_ms",
    "published_utc",
]
STORIES = {
    "volcano": [
        "Iceland volcano eruption grounds flights across northern Europe",
        "Volcano eruption in Iceland grounds flights across Europe",
        'Iceland\'s volcano: "eruption" grounds northern Europe flights',
        "Ash cloud from Iceland volcano keeps Europe flights grounded",
    ],
    "merger": [
        "Acme Corp agrees to buy Globex in $5 billion merger deal",
        "Acme to buy Globex for $5 billion",
        "Globex shareholders approve Acme merger deal",
        "Acme Globex merger deal worth $5 billion",
    ],
    "final": [
        "Rovers beat United 2-1 in cup final thriller",
        "Cup final: Rovers beat United 2-1",
        "Rovers win cup final against United",
        "United lose cup final to Rovers",
    ],
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def write_tsv(path: Path) -> None:
    base_ms = 1_394_470_370_000
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        row_id = 0
        for k in range(4):
            for story, titles in STORIES.items():
                row_id += 1
                ms = base_ms + row_id * 600_000
                seconds, millis = divmod(ms, 1000)
                host = f"www.outlet{row_id % 5}.example"
                writer.writerow(
                    [
                        row_id,
                        titles[k],
                        f"Outlet {row_id % 5}",
                        f"https://{host}/{story}/{row_id}",
                        host,
                        "b",
                        story,
                        ms,
                        f"2014-03-10T{(seconds // 3600) % 24:02d}:{seconds // 60 % 60:02d}:"
                        f"{seconds % 60:02d}.{millis:03d}Z",
                    ]
                )


def test_stories_eval_runs_on_a_tiny_labeled_set(tmp_path: Path) -> None:
    tsv = tmp_path / "tiny.tsv"
    write_tsv(tsv)
    result = run("bench/stories_eval.py", str(tsv))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "12 headlines, 3 stories" in lines[0]
    assert re.match(
        r"^aggregator: pairwise precision \d\.\d+ recall \d\.\d+ f1 \d\.\d+$", lines[-1]
    ), lines[-1]
    for method in ("exact title", "trigram", "word overlap", "aggregator"):
        assert any(line.startswith(method) for line in lines), method


def test_bench_scripts_say_in_one_line_when_the_test_material_is_missing(tmp_path: Path) -> None:
    """Without ../shared (a checkout on its own) the scripts exit 2 with one line, no traceback."""
    missing = tmp_path / "shared" / "corpus"
    for args in (
        ("bench/stories_eval.py", str(missing / "stories-dev.tsv")),
        ("bench/corpus_shape.py", "--corpus", str(missing)),
        ("bench/corpus_tally.py", "--corpus", str(missing)),
    ):
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "not found" in lines[0] and "../shared" in lines[0], lines[0]


def test_parse_tuning_bench_runs_both_ways_on_a_tiny_corpus() -> None:
    result = run(
        "bench/parse_tuning_bench.py",
        "--feeds",
        "4",
        "--entries",
        "3",
        "--rounds",
        "1",
        "--no-real",
    )
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"^synthetic \(4 documents\): fast paths [\d.]+ s, feedparser's own code [\d.]+ s",
        result.stdout,
        re.M,
    ), result.stdout


def test_stories_cost_runs_on_tiny_databases() -> None:
    result = run("bench/stories_cost.py", "--sizes", "200", "400", "--samples", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.match(r"^cost ratio 400/200: \d+\.\d\d \(median\)$", lines[-1]), lines[-1]
