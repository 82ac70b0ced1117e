"""Keep and block rules: the entries to judge, read one at a time, and the verdicts written.

What is filtered is decided in `aggregator.rules` (pure); the output query (`store/output.py`)
skips what `entries.filtered_by` names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime

from aggregator.store._base import StoreBase, _writing, parse_utc, utc_text
from aggregator.types import FilterPlan, RuleSubject

# RuleSubject field -> the entries column it is read from.
_COLUMNS = {
    "published": "published",
    "title": "title",
    "summary": "summary",
    "content": "content",
    "link": "link",
    "authors": "authors",
    "tags": "tags",
}
_JSON_LISTS = frozenset({"authors", "tags"})


class FilteringMixin(StoreBase):
    """Reads for the rules and writes of their verdicts."""

    def rule_state(self) -> tuple[str, datetime] | None:
        """The fingerprint of the rules last applied and when, or None: never applied."""
        row = self.db.execute("SELECT fingerprint, evaluated FROM rule_state").fetchone()
        if row is None:
            return None
        evaluated = parse_utc(row[1])
        assert evaluated is not None
        return row[0], evaluated

    def rule_subjects(
        self,
        fields: frozenset[str],
        *,
        everything: bool = False,
        windows: Sequence[tuple[datetime, datetime]] = (),
        filtered: bool = False,
    ) -> Iterator[RuleSubject]:
        """The entries to judge, with the ``fields`` some rule looks at, one at a time.

        Every entry; or only those ``filtered`` now; or those inserted or changed since the
        last judgement and those published within ``windows`` (each at most once).
        """
        feeds = dict(self.db.execute("SELECT id, name FROM feeds").fetchall())
        wanted = sorted(fields)
        columns = ", ".join(["id", "feed_id", "filtered_by", *(_COLUMNS[f] for f in wanted)])
        if everything:
            queries: list[tuple[str, list[str]]] = [(f"SELECT {columns} FROM entries", [])]
        elif filtered:
            queries = [(f"SELECT {columns} FROM entries WHERE filtered_by IS NOT NULL", [])]
        else:
            pending = "WHERE id IN (SELECT entry_id FROM rules_pending)"
            queries = [(f"SELECT {columns} FROM entries {pending}", [])]
            queries += [
                (
                    f"SELECT {columns} FROM entries WHERE published >= ? AND published < ?",
                    [utc_text(start), utc_text(end)],
                )
                for start, end in windows
            ]
        seen: set[int] = set()
        for sql, params in queries:
            for row in self.db.execute(sql, params):
                entry_id, feed_id, filtered_by, *values = row
                if entry_id in seen:
                    continue
                if len(queries) > 1:
                    seen.add(entry_id)
                read = dict(zip(wanted, values, strict=True))
                for name in _JSON_LISTS & read.keys():
                    read[name] = tuple(json.loads(read[name]))
                if "published" in read:
                    read["published"] = parse_utc(read["published"])
                yield RuleSubject(entry_id, feeds[feed_id], filtered_by, **read)

    def apply_filtering(self, plan: FilterPlan) -> None:
        """Write the changed verdicts in one batched UPDATE, forget the pending entries (all
        were judged), and remember which rules were applied when."""
        with _writing("the verdicts of the keep and block rules"), self.atomic():
            self.db.conn.executemany(
                "UPDATE entries SET filtered_by = ? WHERE id = ?",
                [(change.filtered_by, change.entry_id) for change in plan.changes],
            )
            self.db.execute("DELETE FROM rules_pending")
            self.db.execute(
                "INSERT INTO rule_state (id, fingerprint, evaluated) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "evaluated = excluded.evaluated",
                [plan.fingerprint, utc_text(plan.evaluated)],
            )
