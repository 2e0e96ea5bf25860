"""The `didehban` command. Each feature module registers its own subcommands, so adding a
feature means adding one line to COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "backend.commands",
    "backend.supervise",
    "prompts.commands",
    "ivr.commands",
    "ivr.pbx.commands",
    "ivr.ami.commands",
    "backend.scheduler.commands",
    "backend.transcription.commands",
]


def _build() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="didehban", description="Didehban public-oversight hotline")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser, sub


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def available_commands() -> set[str]:
    return set(_build()[1].choices)


def main(argv: list[str] | None = None) -> int:
    from backend.core.security import MissingSecret
    from backend.services.profiles import UnknownService

    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (MissingSecret, UnknownService) as exc:
        # Configuration mistakes get one clear line, not a traceback.
        print(f"didehban {args.command}: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
