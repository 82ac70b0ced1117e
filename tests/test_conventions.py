"""The project keeps its own rules: layering, documented commands, keys and columns."""

from __future__ import annotations

import ast
import sqlite3
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from aggregator.cli import cli
from aggregator.config import (
    _DEFAULTS_KEYS,
    _EXTRA_OUTPUT_KEYS,
    _FEED_KEYS,
    _OUTPUT_KEYS,
    _TOP_KEYS,
)
from aggregator.store import open_store

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aggregator"

# Each outside library is imported by exactly one module (STYLE.md section 1); feedparser's
# parser subclasses live in the parse package, in a module of their own.
OWNERS = {
    "requests": {"fetch/*"},
    "feedparser": {"parse/xml.py", "parse/feedparser_patches.py"},
    "sqlite_utils": {"store/*"},
    "yaml": {"config.py"},
    "nh3": {"sanitize.py"},
    "click": {"cli.py"},
    "regex": {"rules.py"},
}
# Pure stages never touch I/O layers or each other's callers.
PURE = {
    "dedupe.py",
    "plan.py",
    "politeness.py",
    "rules.py",
    "urls.py",
    "types.py",
    "errors.py",
    "parse/__init__.py",
    "parse/sniff.py",
    "parse/xml.py",
    "parse/jsonfeed.py",
    "parse/hints.py",
    "parse/normalize.py",
    "parse/feedparser_patches.py",
    "sanitize.py",
    "prepare.py",
    "formats.py",
    "stories/__init__.py",
    "stories/words.py",
    "stories/index.py",
    "stories/decision.py",
}
IO_MODULES = {"aggregator.fetch", "aggregator.store", "aggregator.pipeline", "aggregator.cli"}
# The store applies what the stages decided: it reads and writes rows and imports no stage.
STAGES = ("fetch", "parse", "plan", "dedupe", "render", "schedule", "politeness", "pipeline")
# Except the story engine's in-memory window, which the store keeps as a cache of its
# entry_words table, and the headline vectors it subtracts from story centroids when
# retention deletes entries (and the migration that first summed them).
STORE_MAY_USE = {"aggregator.stories.index", "aggregator.stories.words"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layering(path: Path) -> None:
    imported = imports_of(path)
    for library, owners in OWNERS.items():
        if any(name == library or name.startswith(library + ".") for name in imported):
            where = path.relative_to(PACKAGE).as_posix()
            assert any(fnmatch(where, owner) for owner in owners), f"{where} imports {library}"
    if path.relative_to(PACKAGE).as_posix() in PURE or path.parent.name == "render":
        assert not imported & IO_MODULES, f"pure module {path.name} imports {imported & IO_MODULES}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "store").glob("*.py")), ids=lambda p: p.name)
def test_the_store_imports_no_stage(path: Path) -> None:
    imported = {name for name in imports_of(path) if name.startswith("aggregator.")}
    stages = {
        name for name in imported - STORE_MAY_USE if name.split(".")[1] in (*STAGES, "stories")
    }
    assert not stages, f"store/{path.name} imports {sorted(stages)}"


def test_every_command_and_config_key_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in cli.commands:
        assert f"aggregator {command}" in readme, command
    for key in _TOP_KEYS | _OUTPUT_KEYS | _DEFAULTS_KEYS | _FEED_KEYS | _EXTRA_OUTPUT_KEYS:
        assert f"{key}:" in readme, key


def test_every_table_and_column_is_documented(tmp_path: Path) -> None:
    schema_doc = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    with open_store(tmp_path / "a.db"):
        pass
    conn = sqlite3.connect(tmp_path / "a.db")
    for table in ("feeds", "entries", "sources"):
        assert f"`{table}`" in schema_doc
        for (column,) in conn.execute(f"SELECT name FROM pragma_table_info('{table}')"):
            assert f"`{column}`" in schema_doc, f"{table}.{column}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "python -m pip install -e '.[test]' && python -m pytest"
    assert command in readme and command in ci


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "aggregator", "tests", "bench"],
        ["ruff", "format", "--check", "aggregator"],
        ["mypy"],
    ],
    ids=["lint", "format", "types"],
)
def test_lint_format_and_types_are_clean(command: list[str]) -> None:
    """Run as modules of this interpreter (they come with the test extra): never skipped."""
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
