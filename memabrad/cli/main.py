"""The ``memabrad`` command line: argument parsing and exit codes.

Exit codes: 0 success, 2 usage or bad input (stderr names the problem), 1 other failure.
Each sub-command lives in its own module under ``memabrad.cli``; this one only wires them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from memabrad.cli import commands_store
from memabrad.cli.errors import CliError, UsageError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="config file (default: ./config.yaml when present, else built-in defaults)")
    p.add_argument("--base-dir", help="store base directory (store.base_dir)")
    p.add_argument("--router", default="default", help="router id (default: default)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memabrad", description="Keeps an agent's router learning safely.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("cycle", help="one offline online-learning cycle over trajectory files")
    _common(p)
    p.add_argument("--trajectories", help="directory of JSON/JSONL trajectory files (default: <base-dir>/trajectories)")
    p.add_argument("--min-new-trajectories", type=int, help="skip the cycle below this many new trajectories")
    p.add_argument("--seen-trajectory-store",
                   help="seen ids file (default: <base-dir>/<router>/seen-trajectories.json)")
    p.add_argument("--dry-run", action="store_true", help="train and evaluate, save only the report")
    p.add_argument("--baseline-version", help="evaluate against this saved version instead of the active one")
    p.add_argument("--case-index", help="case index file to load and save")
    p.add_argument("--rebuild-case-index", action="store_true", help="rebuild the case index from all trajectories")
    p.set_defaults(func=commands_store.cmd_cycle)

    p = sub.add_parser("status", help="active version, last report and counts")
    _common(p)
    p.set_defaults(func=commands_store.cmd_status)

    p = sub.add_parser("versions", help="saved versions, newest first, the active one marked")
    _common(p)
    p.set_defaults(func=commands_store.cmd_versions)

    p = sub.add_parser("rollback", help="make a saved version active again (local store)")
    _common(p)
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--reason", help="why (kept in the audit trail)")
    p.set_defaults(func=commands_store.cmd_rollback)

    p = sub.add_parser("simulate", help="write simulated trajectories as JSONL")
    _common(p)
    p.add_argument("--n", type=int, default=5000, help="number of trajectories (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--epsilon", type=float, default=0.3, help="logging policy exploration (default 0.3)")
    p.add_argument("--out", required=True, help="output JSONL file ('-' for stdout)")
    p.add_argument("--suite", action="store_true", help="write a static benchmark suite instead")
    p.set_defaults(func=commands_store.cmd_simulate)

    _add_optional(sub)
    return parser


def _add_optional(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Sub-commands of the streaming side (Kafka)."""
    from memabrad.cli import commands_daemon, commands_report, commands_stream

    commands_daemon.register(sub, _common)
    commands_stream.register(sub, _common)
    commands_report.register(sub, _common)


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
