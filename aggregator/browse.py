"""Browse the database in Datasette, with the metadata template keyed to the database's name.

Datasette names a database after its file (``offline.db`` is ``offline``) and looks its
metadata up by that name: titles, the full-text table of each table and view, the canned
queries. The template (``datasette.yaml`` beside this module) is keyed to ``aggregator``, so
for any other file the canned queries answered 404 and search on the views was ignored.
`metadata_for` re-keys it to the configured file when Datasette starts.

`serve` runs ``datasette serve`` in its normal mode: read-only connections to a file it
expects to change. Not ``-i`` (immutable): the service may be writing the database, and an
immutable one would be read without locks and counted once, its changes unseen or misread.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from aggregator.config import read_yaml

TEMPLATE = Path(__file__).with_name("datasette.yaml")
TEMPLATE_DATABASE = "aggregator"  # the name the template's `databases:` entry is keyed to
_STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def installed() -> bool:
    """Whether ``python -m datasette`` can run here (the `datasette` extra is installed)."""
    return find_spec("datasette") is not None


def database_name(database: Path) -> str:
    """The name Datasette gives the database file: its stem."""
    return database.stem


def metadata_for(database: Path, template: Path = TEMPLATE) -> dict[str, Any]:
    """The template's metadata with its database entry keyed to ``database``'s name."""
    metadata = read_yaml(template)
    entry = metadata["databases"][TEMPLATE_DATABASE]
    return {**metadata, "databases": {database_name(database): entry}}


def serve(database: Path, args: Sequence[str] = ()) -> int:
    """Run ``datasette serve`` on the database until it stops; its exit status.

    ``args`` go to Datasette as given (--port, --host, --open...). The metadata is written to
    a temporary file, removed once Datasette has stopped. Datasette runs in a session of its
    own and each stopping signal sent to us (Ctrl-C, SIGTERM, SIGHUP) is passed on to it once,
    so it shuts down cleanly before we return.
    """
    with tempfile.TemporaryDirectory(prefix="aggregator-datasette-") as folder:
        metadata = Path(folder) / "metadata.json"
        metadata.write_text(json.dumps(metadata_for(database), indent=2), encoding="utf-8")
        command = [sys.executable, "-m", "datasette", "serve", str(database)]
        process = subprocess.Popen(
            [*command, "--metadata", str(metadata), *args], start_new_session=True
        )
        previous = {
            signum: signal.signal(signum, lambda received, _: process.send_signal(received))
            for signum in _STOPPING
        }
        try:
            code = process.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if process.poll() is None:  # we are failing, not Datasette: it stops too
                process.kill()
                process.wait()
    return code if code >= 0 else 128 - code
