"""End-to-end feed benchmark: aggregator against `reader` and the bare parse and fetch floors.

    python bench/feeds_bench.py [--feeds 1000] [--entries 50] [--rounds 3] [--workers 8]
                                [--no-reader] [--profile] [--json FILE] [--keep]

1. A deterministic corpus (bench/_corpus.py): N feeds x M entries, half RSS 2.0 and half
   Atom 1.0, ~20% of stories republished by 2-4 feeds, each feed's entries spread over a span
   drawn from real feeds' (bench/corpus_shape.py); a mutated version where ~10% of the feeds
   have 5 new and 2 edited entries. Written to a temporary directory. Every tool gets the
   feeds in the same seeded random order (feeds.yaml, the URL list, the URLs' own order).
2. A loopback HTTP server in its own process (bench/_feedserver.py): strong ETag,
   Last-Modified, 304s, gzip, request counters, a switch to the mutated corpus.
3. Each round, every measured job is its own process (bench/_bench_child.py or the CLI);
   wall time, CPU (user+sys) and peak RSS come from os.wait4 on that process:
   - fetch floor: bare GETs with one requests.Session and `--workers` threads: unconditional
     (cold), conditional with the ETags just received (warm, all 304), the same against the
     mutated corpus (incremental);
   - parse floor: bare `feedparser.parse` (default options) of every corpus file, one process
     (cold), and of the mutated files only (incremental);
   - aggregator: `python -m aggregator --config feeds.yaml update -q` on an empty database
     (cold), again (warm), against the mutated corpus (incremental), then
     `aggregator build` with the output directory removed (rebuild);
   - reader (PyPI) as the peer: `update_feeds(scheduled=False, workers=N)` on a database with
     the feeds added (cold), again (warm), against the mutated corpus (incremental).
4. The package's bytecode is compiled first, as `pip install` compiles reader's.
5. Medians over `--rounds`; our time as a ratio to each baseline, and the issue's targets.
6. Peak RSS of one process running 5 consecutive warm `pipeline.update` calls.
7. `--profile` (or `--profile-only`): cold, warm and incremental `pipeline.update` under
   pyinstrument (fetch pool inlined so every stage runs on the sampled thread); reports
   written to `--profile-dir`.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _corpus import Corpus  # noqa: E402  (bench/ is on sys.path when run)

CHILD = BENCH / "_bench_child.py"
SERVER = BENCH / "_feedserver.py"
RUSAGE = BENCH / "_rusage.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PHASES = ("cold", "warm", "incremental", "rebuild")
TOOLS = ("aggregator", "reader", "fetch floor", "parse floor")


@dataclass(slots=True)
class Run:
    """One measured process."""

    wall: float
    cpu: float
    rss_mb: float
    result: dict[str, Any]
    tree_mb: float = 0.0  # sampled peak of the summed RSS of the process and its children
    connections: int = 0  # TCP connections opened to the feed server
    requests: dict[str, int] = field(default_factory=dict)
    server_cpu: float = 0.0

    @property
    def call(self) -> float:
        """The child's own timing of the measured call, else the process wall time."""
        return float(self.result.get("seconds", self.wall))


def measured(command: list[str], workdir: Path) -> Run:
    """Run one process under bench/_rusage.py: wall, CPU (user+sys) and peak RSS of it alone."""
    out, err, report = workdir / "child.out", workdir / "child.err", workdir / "rusage.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wrapped = [sys.executable, str(RUSAGE), str(report), *command]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(wrapped, stdout=stdout, stderr=stderr, cwd=ROOT, env=env)
        try:
            code = process.wait()
        except BaseException:  # stopped: the wrapper stops the measured command too
            process.terminate()
            process.wait(timeout=30)
            raise
    if code != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{err.read_text(errors='replace')[-3000:]}")
    usage = json.loads(report.read_text())
    lines = out.read_text().strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return Run(usage["wall"], usage["cpu"], usage["maxrss_mb"], result, usage["tree_peak_mb"])


class Server:
    """The feed server process and its control endpoints."""

    def __init__(self, corpus_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), str(corpus_dir)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def control(self, what: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/_control/{what}", timeout=30) as response:
            return json.loads(response.read())

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def measure(self, command: list[str], workdir: Path) -> Run:
        self.control("reset")
        before = self.cpu()
        run = measured(command, workdir)
        run.server_cpu = self.cpu() - before
        counts = self.control("reset")
        run.requests = {k: v for k, v in counts.items() if k not in ("bytes", "connections")}
        # TCP connections the command opened (this control request's own one left out).
        run.connections = counts.get("connections", 1) - 1
        return run

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# ---------------------------------------------------------------- set-up


def write_config(directory: Path, urls: list[str], workers: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "database: db/aggregator.db",
        "output:",
        "  dir: output",
        "  title: Benchmark, merged",
        "  id: tag:bench.example,2026:merged",
        "defaults:",
        f"  workers: {workers}",
        # One loopback server stands in for 1,000 publishers: as many requests to it at once as
        # there are fetch threads, as 1,000 hosts would get (reader's workers ignore hosts).
        f"  per_host: {workers}",
        "  interval: 1h",
        "  min_interval: 1s",
        "feeds:",
    ]
    for k, url in enumerate(urls):
        lines += [f"  - url: {url}", f"    name: outlet-{k:05d}"]
    config = directory / "feeds.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def aggregator_cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator", "--config", str(config), *args]


def child(*args: str) -> list[str]:
    return [sys.executable, str(CHILD), *args]


def stored_counts(database: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("sources", "entries", "stories")
        }
        counts["edited sources"] = conn.execute(
            "SELECT count(*) FROM sources WHERE last_changed != first_seen"
        ).fetchone()[0]
        return counts
    finally:
        conn.close()


# ---------------------------------------------------------------- one round


def one_round(
    args: argparse.Namespace,
    server: Server,
    work: Path,
    urls_file: Path,
    urls: list[str],
    corpus_dir: Path,
    results: dict[tuple[str, str], list[Run]],
    round_no: int,
) -> Path:
    def add(phase: str, tool: str, run: Run) -> None:
        results.setdefault((phase, tool), []).append(run)
        print(
            f"  round {round_no}: {phase:<11} {tool:<11} {run.wall:7.2f} s wall "
            f"{run.cpu:7.2f} s cpu {run.rss_mb:6.0f} MB (tree {run.tree_mb:.0f})  "
            f"{format_requests(run.requests)}",
            file=sys.stderr,
            flush=True,
        )

    # The floors.
    etags = work / "etags.json"
    server.control("corpus?name=base")
    add(
        "cold",
        "fetch floor",
        server.measure(
            child(
                "fetch-floor",
                str(urls_file),
                f"--workers={args.workers}",
                "--etags-out",
                str(etags),
            ),
            work,
        ),
    )
    add(
        "warm",
        "fetch floor",
        server.measure(
            child(
                "fetch-floor", str(urls_file), f"--workers={args.workers}", "--etags-in", str(etags)
            ),
            work,
        ),
    )
    server.control("corpus?name=mutated")
    add(
        "incremental",
        "fetch floor",
        server.measure(
            child(
                "fetch-floor", str(urls_file), f"--workers={args.workers}", "--etags-in", str(etags)
            ),
            work,
        ),
    )
    add(
        "cold",
        "parse floor",
        measured(child("parse-floor", str(corpus_dir / "base" / "feeds")), work),
    )
    add(
        "incremental",
        "parse floor",
        measured(child("parse-floor", str(corpus_dir / "mutated" / "feeds")), work),
    )

    # aggregator, a fresh database.
    agg = work / f"aggregator-{round_no}"
    shutil.rmtree(agg, ignore_errors=True)
    config = write_config(agg, urls, args.workers)
    server.control("corpus?name=base")
    add("cold", "aggregator", server.measure(aggregator_cli(config, "update", "-q"), work))
    if round_no == 1:
        print(
            f"  aggregator stored after cold: {stored_counts(agg / 'db' / 'aggregator.db')}",
            file=sys.stderr,
        )
    add("warm", "aggregator", server.measure(aggregator_cli(config, "update", "-q"), work))
    server.control("corpus?name=mutated")
    add("incremental", "aggregator", server.measure(aggregator_cli(config, "update", "-q"), work))
    if round_no == 1:
        print(
            f"  aggregator stored after incremental: {stored_counts(agg / 'db' / 'aggregator.db')}",
            file=sys.stderr,
        )
    shutil.rmtree(agg / "output", ignore_errors=True)
    add("rebuild", "aggregator", measured(aggregator_cli(config, "build"), work))

    # reader, a fresh database with the feeds added (set-up, not measured).
    if args.reader:
        db = work / f"reader-{round_no}.sqlite"
        for stale in work.glob(f"reader-{round_no}.sqlite*"):
            stale.unlink()
        measured(child("reader-add", str(db), str(urls_file)), work)
        server.control("corpus?name=base")
        for phase in ("cold", "warm"):
            add(
                phase,
                "reader",
                server.measure(child("reader", str(db), f"--workers={args.workers}"), work),
            )
        server.control("corpus?name=mutated")
        add(
            "incremental",
            "reader",
            server.measure(child("reader", str(db), f"--workers={args.workers}"), work),
        )
        if round_no == 1:
            last = results[("incremental", "reader")][-1].result
            print(f"  reader after incremental: {last}", file=sys.stderr)
    server.control("corpus?name=base")
    return config


# ---------------------------------------------------------------- reporting


def format_requests(requests: dict[str, int]) -> str:
    if not requests:
        return ""
    return f"200: {requests.get('200', 0)}, 304: {requests.get('304', 0)}" + "".join(
        f", {k}: {v}" for k, v in sorted(requests.items()) if k not in ("200", "304")
    )


def median(runs: list[Run], attribute: str) -> float:
    return statistics.median(getattr(run, attribute) for run in runs)


def phase_table(
    phase: str, results: dict[tuple[str, str], list[Run]], feeds: int, entries: int
) -> list[str]:
    headers = [
        "tool",
        "wall s",
        "cpu s",
        "cores",
        "call s",
        "feeds/s",
        "entries/s",
        "RSS MB",
        "max RSS",
        "tree MB",
        "200",
        "304",
        "conns",
        "server cpu s",
    ]
    rows = []
    for tool in TOOLS:
        runs = results.get((phase, tool))
        if not runs:
            continue
        wall, cpu, call = median(runs, "wall"), median(runs, "cpu"), median(runs, "call")
        ok = runs[-1].requests.get("200", 0)
        if tool == "parse floor":
            parsed_feeds = runs[-1].result.get("feeds", 0)
            feeds_rate = f"{parsed_feeds / call:.0f}"
            entries_rate = f"{runs[-1].result.get('entries', 0) / call:.0f}"
            ok_text = not_modified = connections = "-"
        elif phase == "rebuild":
            feeds_rate = entries_rate = ok_text = not_modified = "-"
            connections = "-"
        else:
            feeds_rate = f"{feeds / wall:.0f}"
            entries_rate = f"{ok * entries / wall:.0f}"
            ok_text, not_modified = str(ok), str(runs[-1].requests.get("304", 0))
            connections = str(runs[-1].connections)
        rows.append(
            [
                tool,
                f"{wall:.2f}",
                f"{cpu:.2f}",
                f"{cpu / wall:.2f}",
                f"{call:.2f}",
                feeds_rate,
                entries_rate,
                f"{median(runs, 'rss_mb'):.0f}",
                f"{max(r.rss_mb for r in runs):.0f}",
                f"{max(r.tree_mb for r in runs):.0f}",
                ok_text,
                not_modified,
                connections,
                f"{median(runs, 'server_cpu'):.2f}" if phase != "rebuild" else "-",
            ]
        )
    widths = [max(len(line[k]) for line in [headers, *rows]) for k in range(len(headers))]
    return [
        "  ".join(
            cell.ljust(w) if k == 0 else cell.rjust(w)
            for k, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [headers, ["-" * w for w in widths], *rows]
    ]


def ratio_line(phase: str, results: dict[tuple[str, str], list[Run]]) -> str:
    ours = results[(phase, "aggregator")]
    wall = median(ours, "wall")
    line = f"{phase}: aggregator {wall:.2f} s wall"
    if phase != "rebuild":
        line += f" ({format_requests(ours[-1].requests)})"
    parts = []
    if reader := results.get((phase, "reader")):
        other = median(reader, "wall")
        cpu = median(ours, "cpu") / median(reader, "cpu")
        parts.append(
            f"{wall / other:.2f}x reader ({other:.2f} s; speed-up {other / wall:.2f}x; "
            f"cpu {cpu:.2f}x)"
        )
    for floor in ("parse floor", "fetch floor"):
        if runs := results.get((phase, floor)):
            call = median(runs, "call")
            parts.append(f"{wall / call:.2f}x {floor} ({call:.2f} s)")
    return line + (" = " + ", ".join(parts) if parts else "")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def target_lines(
    results: dict[tuple[str, str], list[Run]], loop_runs: list[dict[str, Any]], feeds: int
) -> list[str]:
    lines = []
    ours = {p: median(results[(p, "aggregator")], "wall") for p in PHASES}
    if (reader := results.get(("cold", "reader"))) is not None:
        speedup = median(reader, "wall") / ours["cold"]
        lines.append(f"cold >= 3x faster than reader: {speedup:.2f}x  {verdict(speedup >= 3)}")
    if (reader := results.get(("incremental", "reader"))) is not None:
        speedup = median(reader, "wall") / ours["incremental"]
        lines.append(
            f"incremental >= 2x faster than reader: {speedup:.2f}x  {verdict(speedup >= 2)}"
        )
    floor = results[("warm", "fetch floor")]
    call, whole = median(floor, "call"), median(floor, "wall")
    in_process = statistics.median(run["seconds"] for run in loop_runs) if loop_runs else None
    text = (
        f"warm within 1.5x of the bare-fetch floor: CLI {ours['warm'] / call:.2f}x the floor's "
        f"fetches ({call:.2f} s), {ours['warm'] / whole:.2f}x its whole process ({whole:.2f} s)"
    )
    if in_process is not None:
        text += f"; in-process pipeline.update {in_process / call:.2f}x the fetches"
    lines.append(f"{text}  {verdict(ours['warm'] / whole <= 1.5)}")
    runs = [r for p in PHASES for r in results[(p, "aggregator")]]
    peak = max(r.rss_mb for r in runs)
    tree = max(max(r.tree_mb, r.rss_mb) for r in runs)
    lines.append(
        f"peak RSS < 200 MB at {feeds} feeds: max {peak:.0f} MB in one process, {tree:.0f} MB "
        f"with its parse workers, over all aggregator runs  {verdict(tree < 200)}"
    )
    if loop_runs:
        first, last = loop_runs[0]["VmRSS"], loop_runs[-1]["VmRSS"]
        lines.append(
            f"RSS not growing over {len(loop_runs)} warm updates in one process: VmRSS "
            f"{first:.0f} -> {last:.0f} MB, peak {loop_runs[-1]['VmHWM']:.0f} MB  "
            f"{verdict(last <= first * 1.05 + 2)}"
        )
    lines.append("rebuild at 1M <= 1.2x 10k: see bench/scale_bench.py")
    return lines


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-reader", dest="reader", action="store_false")
    parser.add_argument("--loop-rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--profile-only", action="store_true", help="only the profile: no rounds, no tables"
    )
    parser.add_argument(
        "--profile-dir", type=Path, default=Path(tempfile.gettempdir()) / "feeds-bench-profile"
    )
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.feeds < 2 or args.entries < 2 or args.rounds < 1:
        parser.error("--feeds and --entries must be >= 2, --rounds >= 1")

    # Bytecode as an installed package has it (pip compiles reader's at install): without it,
    # where PYTHONDONTWRITEBYTECODE is set, every CLI run would compile the package again.
    compileall.compile_dir(ROOT / "aggregator", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="feeds-bench-"))
    server = None
    signal.signal(signal.SIGTERM, _stop)  # clean up (server, temp files) when killed
    load_before = os.getloadavg()
    try:
        started = time.perf_counter()
        corpus = Corpus(args.feeds, args.entries)
        corpus_dir = work / "corpus"
        written = corpus.write(corpus_dir)
        print(
            f"corpus: {args.feeds} feeds x {args.entries} entries, {written['bytes'] / 1e6:.1f} MB "
            f"({written['bytes'] / args.feeds / 1e3:.0f} kB a feed), {corpus.stories} stories, "
            f"{corpus.republished} ({corpus.republished / corpus.stories:.0%}) told by 2-4 "
            f"feeds; mutated: {written['mutated']} feeds; made in "
            f"{time.perf_counter() - started:.1f} s in {work}",
            file=sys.stderr,
        )
        server = Server(corpus_dir)
        # In a seeded random order, in feeds.yaml and in the URL list the fetch floor and
        # reader get; reader polls in URL order, which the paths make the same order.
        urls = [f"{server.base}/{feed.path}" for feed in corpus.in_poll_order()]
        urls_file = work / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        if args.profile_only:
            run_profile(args, server, work, urls)
            return 0
        results: dict[tuple[str, str], list[Run]] = {}
        config = work
        for round_no in range(1, args.rounds + 1):
            config = one_round(args, server, work, urls_file, urls, corpus_dir, results, round_no)

        # One process, several warm updates: the database is at the mutated corpus.
        server.control("corpus?name=mutated")
        loop = server.measure(child("loop", str(config), f"--rounds={args.loop_rounds}"), work)
        loop_runs = loop.result["runs"]
        startup = {
            "aggregator": measured([sys.executable, "-c", "import aggregator.cli"], work),
        }
        if args.reader:
            startup["reader"] = measured([sys.executable, "-c", "import reader"], work)

        if args.profile:
            run_profile(args, server, work, urls)

        print(
            f"\nfeeds_bench: {args.feeds} feeds x {args.entries} entries, {args.workers} "
            f"workers, medians of {args.rounds} round(s), {os.cpu_count()} cores, "
            f"{time.strftime('%Y-%m-%d %H:%M')}; load average (1/5/15 min) at start "
            f"{'/'.join(f'{x:.1f}' for x in load_before)}, at end "
            f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        for phase in PHASES:
            print(f"\n[{phase}]")
            print("\n".join(phase_table(phase, results, args.feeds, args.entries)))
        print("\nratios (aggregator wall / baseline; floors: their timed call alone)")
        for phase in PHASES:
            print(ratio_line(phase, results))
        print(
            "\nper-run peak RSS MB, process/tree (aggregator): "
            + "; ".join(
                f"{p} "
                + ", ".join(f"{r.rss_mb:.0f}/{r.tree_mb:.0f}" for r in results[(p, "aggregator")])
                for p in PHASES
            )
        )
        print(
            f"one process, {len(loop_runs)} warm pipeline.update calls: "
            + ", ".join(f"{r['seconds']:.2f} s/{r['VmRSS']:.0f} MB" for r in loop_runs)
            + f"; peak {loop.rss_mb:.0f} MB ({format_requests(loop.requests)})"
        )
        print(
            "process start-up (python -c import): "
            + ", ".join(f"{name} {run.wall:.2f} s" for name, run in startup.items())
        )
        print("\ntargets (issue 6)")
        for line in target_lines(results, loop_runs, args.feeds):
            print("  " + line)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "args": {k: str(v) for k, v in vars(args).items()},
                        "results": {
                            f"{phase}/{tool}": [
                                {
                                    "wall": r.wall,
                                    "cpu": r.cpu,
                                    "rss_mb": r.rss_mb,
                                    "tree_mb": r.tree_mb,
                                    "call": r.call,
                                    "requests": r.requests,
                                    "server_cpu": r.server_cpu,
                                    "connections": r.connections,
                                }
                                for r in runs
                            ]
                            for (phase, tool), runs in results.items()
                        },
                        "loop": loop_runs,
                        "startup": {name: run.wall for name, run in startup.items()},
                    },
                    indent=1,
                )
            )
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def run_profile(args: argparse.Namespace, server: Server, work: Path, urls: list[str]) -> None:
    """Cold, warm and incremental pipeline.update under pyinstrument, on a fresh database."""
    directory = work / "profile"
    shutil.rmtree(directory, ignore_errors=True)
    config = write_config(directory, urls, args.workers)
    args.profile_dir.mkdir(parents=True, exist_ok=True)
    for phase, corpus in (("cold", "base"), ("warm", "base"), ("incremental", "mutated")):
        server.control(f"corpus?name={corpus}")
        prefix = args.profile_dir / f"profile-{phase}"
        run = server.measure(child("profile", str(config), str(prefix)), work)
        flat = prefix.with_suffix(".flat.txt").read_text().splitlines()
        print(f"\nprofile {phase} ({run.call:.2f} s under pyinstrument, pool inlined): {prefix}.*")
        print("\n".join(flat[:40]))
    server.control("corpus?name=base")


if __name__ == "__main__":
    sys.exit(main())
