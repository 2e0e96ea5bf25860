"""The `didehban` command, above both sides: it assembles the backend's subcommands and the IVR
node's. Neither side loads the other; adding a feature means adding its module to SIDES below.

`python -m backend.cli` is an alias of this command (scripts and tests use it)."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType


def _sides() -> list[ModuleType]:
    import backend.commands
    import backend.scheduler.commands
    import backend.supervise
    import backend.transcription.commands
    import ivr.ami.commands
    import ivr.commands
    import ivr.pbx.commands
    import prompts.commands

    return [
        backend.commands,
        backend.supervise,
        backend.scheduler.commands,
        backend.transcription.commands,
        prompts.commands,
        ivr.commands,
        ivr.pbx.commands,
        ivr.ami.commands,
    ]


def _build() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="didehban", description="Didehban public-oversight hotline")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _sides():
        module.register(sub)
    return parser, sub


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def available_commands() -> set[str]:
    return set(_build()[1].choices)


def _configuration_errors() -> tuple[type[BaseException], ...]:
    """Mistakes in a machine's settings: one clear line, not a traceback."""
    from domain.profiles import UnknownService
    from ivr.settings import NodeNotConfigured
    from ivr.spool import SpoolKeyError

    errors: list[type[BaseException]] = [UnknownService, NodeNotConfigured, SpoolKeyError]
    try:
        from backend.core.security import MissingSecret
    except ImportError:  # an IVR node installed without the backend's dependencies
        pass
    else:
        errors.append(MissingSecret)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except _configuration_errors() as exc:
        print(f"didehban {args.command}: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
