"""Command line: ``python -m cxflow demo`` runs the scripted demo day."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cxflow.flows.templates import DEFAULT_TEMPLATES, default_flow


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cxflow`` and the ``cxflow`` script."""
    parser = argparse.ArgumentParser(prog="cxflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run a scripted support day and print the boards")
    commands.add_parser("templates", help="list the default flow templates")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from cxflow.demo import run_demo

        run_demo()
    else:
        for name in DEFAULT_TEMPLATES:
            flow = default_flow(name)
            statuses = " -> ".join(s.label for s in flow.statuses)
            print(f"{name}: {statuses}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
