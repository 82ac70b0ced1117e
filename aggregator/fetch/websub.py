"""WebSub: telling a hub that our output feeds changed (a publish ping)."""

from __future__ import annotations

import requests

from aggregator.errors import FetchError
from aggregator.fetch.http import Session
from aggregator.fetch.reasons import short_reason


def publish_to_hub(session: Session, hub: str, topics: list[str], timeout: float = 10.0) -> None:
    """Tell a WebSub hub that these feed URLs changed (W3C WebSub section 6, publish ping)."""
    try:
        response = session.post(
            hub,
            data=[("hub.mode", "publish")] + [("hub.url", topic) for topic in topics],
            timeout=(timeout, timeout),
            allow_redirects=False,
        )
    except requests.RequestException as e:
        raise FetchError(f"WebSub hub {hub} unreachable: {short_reason(e, hub)}") from e
    if not 200 <= response.status_code < 300:
        raise FetchError(
            f"WebSub hub {hub} refused the ping: HTTP {response.status_code}",
            status=response.status_code,
        )
