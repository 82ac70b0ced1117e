"""The `aggregator` command's entry point: it imports the CLI only when called.

An installed console script is its process's main module, and every spawned parse worker
imports the main module again (multiprocessing's "spawn"). A script that imported
`aggregator.cli` at the top would load the store, requests and the renderers into each worker;
importing this module loads nothing (see `aggregator.parse_worker`).
"""

from __future__ import annotations


def main() -> None:
    """Run the CLI (`aggregator.cli.main`)."""
    from aggregator.cli import main as cli_main

    cli_main()
