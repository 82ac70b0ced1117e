"""The real-world corpus through the real pipeline (issue 7, "Real-world feeds").

Every file of ../shared/corpus is served from a loopback server and polled by one
``pipeline.update``; each must end ingested with the expected number of entries or with a
clear per-feed error, the merged outputs must stay valid and the database intact. The check
itself lives in bench/corpus_tally.py (``python bench/corpus_tally.py`` prints the tally).

Marked slow, but it runs in the plain ``pytest`` suite: the whole corpus takes ~30 s.
``AGGREGATOR_CORPUS_SAMPLE=N`` runs a stratified sample instead (N files per category, and every
file of the categories that exercise the parser hardest).
"""

from __future__ import annotations

import faulthandler
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DEADLINE = 300.0  # seconds: a hang anywhere dumps every stack and ends the run
WHOLE_CATEGORIES = ("encoding", "illformed", "jsonfeed", "notafeed", "relative-links")

# Files that end as a per-feed error although they are feeds, because of a bug outside the
# parser: none (two feeds sharing RFC 4287's example ids used to clash in the store).
KNOWN_FAILURES: dict[str, str] = {}


def load_tally() -> ModuleType:
    name = "corpus_tally"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "corpus_tally.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"feed corpus missing at {CORPUS} (CI must have ../shared/corpus)")
        pytest.skip(f"feed corpus not found at {CORPUS} (it lives beside the checkout)")
    return CORPUS


@pytest.fixture(scope="module")
def report(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tally = load_tally()
    files = tally.load_manifest(corpus)
    sample = os.environ.get("AGGREGATOR_CORPUS_SAMPLE")
    if sample:
        files = tally.stratified_sample(files, int(sample), whole=WHOLE_CATEGORIES)
    faulthandler.dump_traceback_later(DEADLINE, exit=True)
    try:
        return tally.run_corpus(files, tmp_path_factory.mktemp("corpus"), corpus=corpus)
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.mark.slow
def test_no_exception_escapes_and_every_file_was_polled(report: Any) -> None:
    assert report.exception is None
    assert len(report.outcomes) > 0
    for outcome in report.outcomes:
        assert outcome.error != "never polled", outcome.file.rel
        assert outcome.fetches == 1, outcome.file.rel  # one GET each: no retry storm


@pytest.mark.slow
def test_every_file_is_ingested_with_the_expected_count_or_has_an_error(report: Any) -> None:
    describe = load_tally().describe
    wrong = []
    for outcome in report.outcomes:
        if outcome.ingested is not None:
            if outcome.ingested != outcome.expected.entries:
                wrong.append(describe(outcome))
        elif not (outcome.error or "").strip():
            wrong.append(describe(outcome) + " (no last_error)")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_errors_only_for_documents_that_are_not_feeds(report: Any) -> None:
    describe = load_tally().describe
    unexpected = [
        describe(o)
        for o in report.outcomes
        if o.ingested is None
        and o.expected.entries is not None
        and o.file.rel not in KNOWN_FAILURES
    ]
    assert not unexpected, "\n".join(unexpected)


@pytest.mark.slow
def test_errors_are_one_clear_line(report: Any) -> None:
    for outcome in report.outcomes:
        if outcome.ingested is None:
            error = outcome.error or ""
            assert error.strip() and "\n" not in error and len(error) <= 400, outcome.file.rel
            assert "Traceback" not in error, outcome.file.rel


@pytest.mark.slow
def test_outputs_stay_valid_and_the_database_intact(report: Any) -> None:
    assert report.outputs_ok, report.outputs
    assert report.integrity == "ok"
    assert report.output_entries > 0


@pytest.mark.slow
def test_categories_are_all_covered(report: Any, corpus: Path) -> None:
    tally = load_tally()
    every = {f.category for f in tally.load_manifest(corpus)}
    seen = {o.file.category for o in report.outcomes}
    assert seen == every


def test_served_headers_follow_extension_format_and_declared_header() -> None:
    tally = load_tally()
    cf = tally.CorpusFile
    assert tally.served_headers(cf("feeds/a/x.json", "jsonfeed", "jsonfeed", ()), b"{}") == {
        "Content-Type": "application/feed+json"
    }
    assert tally.served_headers(cf("feeds/a/x.xml", "atom10", "atom1.0", ()), b"<feed/>") == {
        "Content-Type": "application/atom+xml"
    }
    declared = b"<!--\nHeader:      Content-type: text/xml; charset=windows-1252\n-->\n<rss/>"
    assert tally.served_headers(cf("feeds/a/y.xml", "encoding", "rss2.0", ()), declared) == {
        "Content-Type": "text/xml; charset=windows-1252"
    }
    gz = tally.served_headers(cf("feeds/a/z.xml", "illformed", "gzip", ()), b"\x1f\x8b\x08")
    assert gz["Content-Encoding"] == "gzip"


def test_expectation_counts_repeats_and_empty_entries_once() -> None:
    tally = load_tally()
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><guid>a</guid><title>A</title></item>"
        b"<item><guid>a</guid><title>A</title></item>"  # an exact repeat
        b"<item><guid>a</guid><title>B</title></item>"  # same id, another item
        b"<item><description>&lt;span&gt;&lt;/span&gt;</description></item>"  # shows nothing
        b"</channel></rss>"
    )
    e = tally.expected_entries(body, "http://h.example/f", {"Content-Type": "application/rss+xml"})
    assert (e.entries, e.raw, e.empty, e.repeats) == (2, 4, 1, 1)
