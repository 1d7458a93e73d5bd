"""The ``memabrad`` command line: argument parsing and exit codes.

Exit codes: 0 success, 2 usage or bad input (stderr names the problem), 1 other failure.
Each sub-command lives in its own module under ``memabrad.cli`` and registers its parser;
this one only wires them, in the order ``memabrad --help`` lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from memabrad.cli import admin, cycle, demo, produce, report, rollback, run, simulate, status, versions
from memabrad.cli.errors import CliError, UsageError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

COMMANDS = (cycle, status, versions, rollback, simulate, run, demo, produce, admin, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memabrad", description="Keeps an agent's router learning safely.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except UsageError as err:
        print(f"memabrad {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as err:
        print(f"memabrad {args.command}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
