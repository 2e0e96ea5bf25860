"""`didehban prompts ...`"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompts", help="the Persian prompt audio")
    action = p.add_subparsers(dest="prompts_action", required=True, metavar="ACTION")
    b = action.add_parser("build", help="render every catalog prompt into Asterisk-ready audio")
    b.add_argument("--engine", choices=["espeak", "gtts"], default="espeak")
    b.add_argument("--lang", default="fa", help="only fa is built for the IVR; gTTS has no fa voice")
    b.add_argument("--only", nargs="*", metavar="ID", help="just these prompt ids")
    b.set_defaults(func=_build)
    s = action.add_parser("show", help="print the catalog: id and text")
    s.set_defaults(func=_show)


def _build(args: argparse.Namespace) -> int:
    from prompts.build import build
    from prompts.render import RenderError

    if args.engine == "gtts":
        from gtts.lang import tts_langs

        if args.lang not in tts_langs():
            print(f"didehban prompts build: gTTS has no voice for {args.lang!r}; use --engine espeak")
            return 2
    try:
        report = build(engine=args.engine, only=args.only)
    except (RenderError, KeyError) as exc:
        print(f"didehban prompts build: {exc}")
        return 2
    print(report.summary())
    for prompt_id, error in sorted(report.failed.items()):
        print(f"  failed {prompt_id}: {error}")
    return 1 if report.failed else 0


def _show(_: argparse.Namespace) -> int:
    from prompts.catalog import load_catalog

    for prompt_id, text in sorted(load_catalog().items()):
        print(f"{prompt_id}\t{text}")
    return 0
