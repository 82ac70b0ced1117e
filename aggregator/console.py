"""The `aggregator` command's entry point: it imports the CLI only when called.

An installed console script is its process's main module, and every spawned parse worker
imports the main module again (multiprocessing's "spawn"). A script that imported
`aggregator.cli` at the top would load the store, requests and the renderers into each worker;
importing this module loads nothing (see `aggregator.parse_worker`).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the CLI (`aggregator.cli.main`), without numpy.

    sqlite-utils imports numpy whenever it is installed, to adapt numpy values it is given;
    the CLI never gives it any, and the import cost every command ~90 ms of its start-up and
    ~12 MB (a warm `update` takes ~1.4 s in all, issue 6). Only the command's own process is
    spared it: the library API imports as usual.
    """
    sys.modules.setdefault("numpy", None)  # type: ignore[arg-type]
    from aggregator.cli import main as cli_main

    cli_main()
