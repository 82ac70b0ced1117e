"""Run one command and report its wall time, CPU time and peak RSS: a tiny `time -v`.

    python bench/_rusage.py REPORT.json COMMAND [ARGS...]

Also samples, every 50 ms, the summed RSS of the command and all its descendants (a process
pool's workers are separate processes, and ru_maxrss is a maximum over processes, not a sum):
`tree_peak_mb`.

Why a separate small process: on Linux a child's ru_maxrss starts from the high-water mark of
the process it was forked (or vforked) from, so a command started directly by the benchmark,
which holds the whole corpus in memory, would inherit the benchmark's peak. Started from this
process (~10 MB), the measured command's own peak is what gets reported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def tree_rss_mb(root: int) -> float:
    """Summed resident set size of ``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(stat[1]), []).append(pid)
        rss[pid] = int(stat[21]) * PAGE_MB
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def sample(root: int, done: threading.Event, peak: list[float]) -> None:
    while not done.wait(0.05):
        peak[0] = max(peak[0], tree_rss_mb(root))


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    # Stopped, pass it on: the measured command must not outlive the benchmark.
    signal.signal(signal.SIGTERM, lambda signum, frame: process.terminate())
    done, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=sample, args=(process.pid, done, peak), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    process.returncode = code = os.waitstatus_to_exitcode(status)
    with open(report, "w") as f:
        json.dump(
            {
                "wall": wall,
                "cpu": usage.ru_utime + usage.ru_stime,
                "user": usage.ru_utime,
                "sys": usage.ru_stime,
                "maxrss_mb": usage.ru_maxrss / 1024,
                "tree_peak_mb": peak[0],
                "exit": code,
            },
            f,
        )
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
