"""The feed and scale benchmarks keep running: tiny inputs, their output contract, no timing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"\d+\.\d\d"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_feeds_bench_runs_every_phase_on_a_tiny_corpus() -> None:
    result = run(
        "bench/feeds_bench.py", "--feeds", "6", "--entries", "5", "--rounds", "1", "--no-reader"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    # One line per phase; the request counts say the server's conditional GETs work: a cold
    # update fetches every feed, a warm one gets 304s only, the mutated corpus changes one feed.
    assert re.search(rf"^cold: aggregator {NUMBER} s wall \(200: 6, 304: 0\)", out, re.M), out
    assert re.search(rf"^warm: aggregator {NUMBER} s wall \(200: 0, 304: 6\)", out, re.M), out
    assert re.search(rf"^incremental: aggregator {NUMBER} s wall \(200: 1, 304: 5\)", out, re.M), (
        out
    )
    assert re.search(rf"^rebuild: aggregator {NUMBER} s wall$", out, re.M), out
    for floor in ("parse floor", "fetch floor"):
        assert re.search(rf"^cold: .* {NUMBER}x {floor} \({NUMBER} s\)", out, re.M), floor
    # Every phase's table, every run in one place, and the targets the issue sets.
    for phase in ("cold", "warm", "incremental", "rebuild"):
        assert f"[{phase}]" in out
    assert re.search(r"one process, 5 warm pipeline\.update calls: .*\(200: 0, 304: 30\)", out)
    assert "targets (issue 6)" in out
    # What aggregator stored after the cold update: every item of the corpus.
    assert "aggregator stored after cold: {'sources': 30, 'entries': 30" in result.stderr


def test_scale_bench_runs_on_tiny_databases() -> None:
    result = run("bench/scale_bench.py", "--sizes", "200", "400", "--samples", "5", "--runs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert re.match(rf"^rebuild ratio 400/200: {NUMBER}$", lines[-3]), lines
    assert re.match(rf"^entry cost ratio 400/200: {NUMBER} \(store\+place, median\)$", lines[-2])
    assert re.match(rf"^placement cost ratio 400/200: {NUMBER} \(median\)$", lines[-1])


def test_writer_bench_stores_every_entry_of_a_tiny_corpus() -> None:
    result = run("bench/writer_bench.py", "--feeds", "6", "--entries", "5", "--rounds", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "parsed 6 feeds, 30 entries" in out, out
    # Each round is a fresh database holding every entry (republished copies are separate
    # entries of one story), then the timing line.
    assert len(re.findall(r"^stored 30 entries in \d+ stories$", out, re.M)) == 2, out
    assert re.search(rf"^writer: median {NUMBER} s a round .* us/entry", out, re.M), out


def test_rules_bench_runs_on_tiny_databases() -> None:
    result = run("bench/rules_bench.py", "--sizes", "200", "400", "--runs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["seconds", "(median)", "200", "400"], lines
    phases = [
        "full (title)",
        "full (all fields)",
        "incremental (none new)",
        "incremental (200 new)",
    ]
    for line, phase in zip(lines[1:], phases, strict=True):
        assert re.fullmatch(rf"{re.escape(phase)} +\d+\.\d{{3}} +\d+\.\d{{3}}", line), line
    # and what the rules on every field filtered
    assert re.search(
        r"^400 entries: \d+ filtered by the rules on every field$", result.stderr, re.M
    )
