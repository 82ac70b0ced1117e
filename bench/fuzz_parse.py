"""Bounded fuzz run over parse + normalize + render.

    python bench/fuzz_parse.py [--seconds 120] [--batch 200] [--seed N]

Hypothesis drives the document generators of tests/test_properties.py (RSS 0.9x/2.0, RSS 1.0,
Atom 1.0/0.3 built from random elements, attributes and text, escaped, in CDATA or raw, in
several encodings, sometimes truncated or with bytes overwritten; JSON shaped like JSON Feed;
random bytes) into ``parse_feed`` with random URLs, headers and fetch times. Each run must end
in a ParseError or in a ParsedFeed that keeps the pipeline's invariants (``check_parsed``), and
its entries must render to Atom, RSS and JSON Feed that parse back with the same titles
(``check_render``).

Batches of ``--batch`` examples run until ``--seconds`` have passed. Prints the examples tried
and, on the first failure, the minimized input and the error; exits 1 then, 0 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
import traceback
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import test_properties as props  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as use_seed  # noqa: E402

BODY_SHOWN = 4000  # bytes of a failing body printed
MINIMIZE_SECONDS = 60.0  # at most this long deleting bytes from a failing body


class Fuzz:
    """One fuzz session: counters, the input being tried, and the hypothesis test."""

    def __init__(self) -> None:
        self.tried = 0
        self.outcomes: Counter[str] = Counter()
        self.entries = 0
        self.current: tuple[Any, ...] = ()

    def run_one(
        self, body_and_headers: tuple[bytes, dict[str, str]], url: str, now: datetime
    ) -> None:
        body, headers = body_and_headers
        self.current = (body, headers, url, now)
        self.tried += 1
        feed = props.parse_or_parse_error(body, url, headers, now)
        if feed is None:
            self.outcomes["ParseError"] += 1
            return
        self.outcomes[feed.format] += 1
        self.entries += len(feed.entries)
        props.check_parsed(feed, now)
        props.check_render(props.output_feed(feed, now))

    def batch(self, examples: int, batch_seed: int) -> None:
        @use_seed(batch_seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(props.BODIES, props.FEED_URLS, props.NOWS)
        def fuzz(body_and_headers: tuple[bytes, dict[str, str]], url: str, now: datetime) -> None:
            self.run_one(body_and_headers, url, now)

        fuzz()


def _signature(error: BaseException) -> tuple[str, str, int]:
    """What identifies a failure: its type and the line that raised it."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return type(error).__name__, frame.filename, frame.lineno or 0


def minimize_body(fuzz: Fuzz, error: BaseException, budget: float = MINIMIZE_SECONDS) -> bytes:
    """Delete byte ranges from the body while the same failure still happens (ddmin-like)."""
    body, headers, url, now = fuzz.current
    wanted = _signature(error)

    def fails(candidate: bytes) -> bool:
        try:
            Fuzz().run_one((candidate, headers), url, now)
        except Exception as e:
            return _signature(e) == wanted
        return False

    deadline = time.monotonic() + budget
    chunk = max(len(body) // 2, 1)
    while time.monotonic() < deadline:
        start, removed = 0, False
        while start < len(body) and time.monotonic() < deadline:
            candidate = body[:start] + body[start + chunk :]
            if fails(candidate):
                body, removed = candidate, True
            else:
                start += chunk
        if chunk == 1 and not removed:
            break
        chunk = max(chunk // 2, 1) if not removed else chunk
    return body


def report_failure(fuzz: Fuzz, error: BaseException) -> None:
    """The input hypothesis minimized (it runs it last), its bytes minimized, and the error."""
    body, headers, url, now = fuzz.current
    smallest = minimize_body(fuzz, error)
    shown = body[:BODY_SHOWN]
    more = f" ... ({len(body)} bytes in all)" if len(body) > BODY_SHOWN else ""
    print("\nFAILURE (minimized input):")
    print(f"  body    = {shown!r}{more}")
    print(f"  smallest body that fails the same way = {smallest[:BODY_SHOWN]!r}")
    print(f"  headers = {headers!r}")
    print(f"  url     = {url!r}")
    print(f"  now     = {now!r}")
    print("  error:")
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    print("".join("    " + line for line in "".join(lines).splitlines(keepends=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to fuzz")
    parser.add_argument("--batch", type=int, default=200, help="examples per hypothesis run")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first batch")
    args = parser.parse_args(argv)
    logging.getLogger("aggregator").setLevel(logging.ERROR)  # render's duplicate-id notes

    first_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"fuzz_parse: {args.seconds:g}s, batches of {args.batch}, first seed {first_seed}")
    fuzz = Fuzz()
    start = time.monotonic()
    batches = 0
    while time.monotonic() - start < args.seconds:
        try:
            fuzz.batch(args.batch, first_seed + batches)
        except Exception as error:  # a failing property, minimized by hypothesis
            report_failure(fuzz, error)
            print(f"fuzz_parse: FAILED after {fuzz.tried} examples (seed {first_seed + batches})")
            return 1
        batches += 1
        elapsed = time.monotonic() - start
        print(f"  {elapsed:7.1f}s  {fuzz.tried} examples", flush=True)

    elapsed = time.monotonic() - start
    outcomes = ", ".join(f"{name} {count}" for name, count in fuzz.outcomes.most_common())
    print(f"outcomes: {outcomes}; {fuzz.entries} entries checked and rendered")
    print(f"fuzz_parse: {fuzz.tried} examples in {elapsed:.0f}s, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
