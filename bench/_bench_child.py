"""The measured child processes of bench/feeds_bench.py: one job per process, JSON on stdout.

    python bench/_bench_child.py parse-floor CORPUS_DIR/base/feeds
    python bench/_bench_child.py fetch-floor URLS_FILE --workers 8 [--etags-in F] [--etags-out F]
    python bench/_bench_child.py reader-add DB URLS_FILE
    python bench/_bench_child.py reader DB --workers 8
    python bench/_bench_child.py loop CONFIG --rounds 5
    python bench/_bench_child.py profile CONFIG OUT_PREFIX

Each prints one JSON object on its last stdout line; the parent takes wall, CPU and peak RSS of
the whole process from os.wait4, and the child's own `seconds` (the timed call alone, without
interpreter start-up and imports) from the JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def memory() -> dict[str, float]:
    """Current and peak resident set size of this process, in MB (Linux /proc)."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- floors


def parse_floor(directory: Path) -> None:
    """Bare feedparser.parse of every file, default options, one process (one core)."""
    import feedparser

    bodies = [path.read_bytes() for path in sorted(directory.glob("*.xml"))]
    started = time.perf_counter()
    entries = 0
    for body in bodies:
        entries += len(feedparser.parse(io.BytesIO(body)).entries)
    emit({"seconds": time.perf_counter() - started, "feeds": len(bodies), "entries": entries})


def fetch_floor(urls_file: Path, workers: int, etags_in: Path | None, etags_out: Path | None):
    """Bare GETs with one requests.Session and a thread pool: the fetch floor."""
    import requests

    urls = urls_file.read_text().split()
    validators: dict[str, list[str | None]] = json.loads(etags_in.read_text()) if etags_in else {}
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=workers))

    def get(url: str) -> tuple[str, int, str | None, str | None, int]:
        headers = {}
        etag, modified = validators.get(url, [None, None])
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        response = session.get(url, headers=headers, timeout=(10, 30))
        body = response.content
        return (
            url,
            response.status_code,
            response.headers.get("ETag"),
            response.headers.get("Last-Modified"),
            len(body),
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(get, urls))
    seconds = time.perf_counter() - started
    session.close()
    if etags_out:
        etags_out.write_text(json.dumps({url: [etag, lm] for url, _, etag, lm, _ in results}))
    statuses = Counter(str(status) for _, status, _, _, _ in results)
    emit({"seconds": seconds, "statuses": dict(statuses), "bytes": sum(r[4] for r in results)})


# ---------------------------------------------------------------- the peer


def reader_add(db: Path, urls_file: Path) -> None:
    """Set-up, not measured: a new `reader` database with the feeds added."""
    from reader import make_reader

    reader = make_reader(str(db))
    for url in urls_file.read_text().split():
        reader.add_feed(url, exist_ok=True)
    reader.close()
    emit({"added": len(urls_file.read_text().split())})


def run_reader(db: Path, workers: int) -> None:
    """`reader` (PyPI) as the peer: one forced full update of every feed."""
    from reader import make_reader

    reader = make_reader(str(db))
    started = time.perf_counter()
    reader.update_feeds(scheduled=False, workers=workers)
    seconds = time.perf_counter() - started
    counts = reader.get_entry_counts()
    errors = sum(1 for feed in reader.get_feeds() if feed.last_exception is not None)
    reader.close()
    emit({"seconds": seconds, "entries": counts.total, "errors": errors, **memory()})


# ---------------------------------------------------------------- aggregator in one process


def loop(config_path: Path, rounds: int) -> None:
    """Consecutive `pipeline.update` calls in one process: does memory grow across rounds?"""
    from aggregator.config import load_config
    from aggregator.pipeline import update

    config = load_config(config_path)
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        report = update(config)
        statuses = Counter(str(r.http_status) for r in report.results)
        runs.append({"seconds": time.perf_counter() - started, "statuses": statuses, **memory()})
    emit({"runs": runs})


class InlineExecutor:
    """A ThreadPoolExecutor stand-in that runs each task at once on the calling thread.

    pyinstrument samples one thread; with the fetch/parse pool inlined, every stage of the
    pipeline runs on the profiled thread, so the profile shows where all the CPU goes.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        pass

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def profile(config_path: Path, out_prefix: Path) -> None:
    """One `pipeline.update` under pyinstrument, pool inlined; writes tree and flat reports."""
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer

    import aggregator.pipeline
    from aggregator.config import load_config

    config = load_config(config_path)
    aggregator.pipeline.ThreadPoolExecutor = InlineExecutor  # type: ignore[misc, assignment]
    profiler = Profiler(interval=0.001)
    started = time.perf_counter()
    profiler.start()
    aggregator.pipeline.update(config)
    profiler.stop()
    seconds = time.perf_counter() - started
    session = profiler.last_session
    assert session is not None
    tree = ConsoleRenderer(unicode=True, time="percent_of_total", short_mode=False).render(session)
    flat = ConsoleRenderer(flat=True, time="percent_of_total", flat_time="self").render(session)
    out_prefix.with_suffix(".tree.txt").write_text(tree)
    out_prefix.with_suffix(".flat.txt").write_text(flat)
    emit({"seconds": seconds, "tree": str(out_prefix.with_suffix(".tree.txt"))})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="job", required=True)
    p = sub.add_parser("parse-floor")
    p.add_argument("directory", type=Path)
    p = sub.add_parser("fetch-floor")
    p.add_argument("urls", type=Path)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--etags-in", type=Path)
    p.add_argument("--etags-out", type=Path)
    p = sub.add_parser("reader-add")
    p.add_argument("db", type=Path)
    p.add_argument("urls", type=Path)
    p = sub.add_parser("reader")
    p.add_argument("db", type=Path)
    p.add_argument("--workers", type=int, default=8)
    p = sub.add_parser("loop")
    p.add_argument("config", type=Path)
    p.add_argument("--rounds", type=int, default=5)
    p = sub.add_parser("profile")
    p.add_argument("config", type=Path)
    p.add_argument("out_prefix", type=Path)
    args = parser.parse_args()
    if args.job == "parse-floor":
        parse_floor(args.directory)
    elif args.job == "fetch-floor":
        fetch_floor(args.urls, args.workers, args.etags_in, args.etags_out)
    elif args.job == "reader-add":
        reader_add(args.db, args.urls)
    elif args.job == "reader":
        run_reader(args.db, args.workers)
    elif args.job == "loop":
        loop(args.config, args.rounds)
    else:
        profile(args.config, args.out_prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
