"""`python -m backend.cli`: an alias of the `didehban` command, kept for scripts and tests.

The command itself lives above both sides (didehban_cli), which assembles the backend's and the IVR
node's subcommands; the backend does not load the IVR."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from didehban_cli import main as didehban

    return didehban(argv)


if __name__ == "__main__":
    sys.exit(main())
