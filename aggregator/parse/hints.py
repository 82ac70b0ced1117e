"""What a document says about polling it: RSS ttl, skipHours/skipDays, sy:updatePeriod."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from aggregator.types import FeedHints

# RSS 1.0 Syndication module: sy:updatePeriod names the period sy:updateFrequency divides.
# A month and a year have no fixed length; 30 and 365 days are close enough for a polling hint.
_SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}


_DAYS = {
    name: number
    for number, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}


_MAX_HINT_DIGITS = 9  # a ttl of a billion minutes is already 1,900 years


def _hints(feed: Mapping[str, Any], body: bytes) -> FeedHints:
    """What the document says about polling it; junk values are dropped, never raised."""
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()
    if b"<skipHours" in body or b"<skipDays" in body:
        skip_hours, skip_days = _skip_hints(body)
    ttl = _positive_int(feed.get("ttl"))
    return FeedHints(
        ttl=timedelta(minutes=ttl) if ttl is not None else None,  # RSS 2.0: minutes
        update_period=_update_period(feed),
        skip_hours=skip_hours,
        skip_days=skip_days,
    )


def _update_period(feed: Mapping[str, Any]) -> timedelta | None:
    """sy:updatePeriod (default daily) divided by sy:updateFrequency (default 1).

    feedparser 6.0.14 exposes them as ``sy_updateperiod`` and ``sy_updatefrequency``. An
    unknown period or a frequency that is not a positive integer voids the whole hint: a
    guess could only lengthen the interval for no reason.
    """
    period_text, frequency_text = feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")
    if period_text is None and frequency_text is None:
        return None
    period = _SY_PERIODS.get(str(period_text or "daily").strip().lower())
    frequency = 1 if frequency_text is None else _positive_int(frequency_text)
    if period is None or frequency is None:
        return None
    result = period / frequency
    return result if result > timedelta(0) else None


def _skip_hints(body: bytes) -> tuple[frozenset[int], frozenset[int]]:
    """RSS 2.0 <skipHours><hour> and <skipDays><day> of the channel, read from the raw XML.

    feedparser keeps only the last <hour> and <day>, so lxml reads them, with entities and
    the network off and the recovering parser so a broken document still yields its hints
    (RSS 2.0 skipHours/skipDays). Hours are 0-23 GMT; 24 is read as 0 (some publishers count 1-24).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(body, parser)
    except (etree.Error, ValueError):
        return frozenset(), frozenset()
    hours: set[int] = set()
    days: set[int] = set()
    if root is None:
        return frozenset(), frozenset()
    for element in root.iter("{*}skipHours", "{*}skipDays"):
        parent = element.getparent()
        if parent is None or etree.QName(parent).localname != "channel":
            continue
        is_hours = etree.QName(element).localname == "skipHours"
        for child in element.iterchildren("{*}hour" if is_hours else "{*}day"):
            text = (child.text or "").strip()
            if is_hours:
                hour = _positive_int(text, allow_zero=True)
                if hour is not None and hour <= 24:
                    hours.add(hour % 24)
            elif (day := _DAYS.get(text.lower())) is not None:
                days.add(day)
    return frozenset(hours), frozenset(days)


def _positive_int(value: object, *, allow_zero: bool = False) -> int | None:
    """A plain decimal integer > 0 (or >= 0) from a string, else None."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_HINT_DIGITS:
        return None
    number = int(text)
    return number if number > 0 or (allow_zero and number == 0) else None
