"""``memabrad cycle``: one offline online-learning cycle over trajectory files."""

from __future__ import annotations

import argparse
import json

from memabrad.cli.common import add_common_options, load_cli_config, open_store
from memabrad.cli.errors import CliError, UsageError
from memabrad.store.errors import (
    CorruptFileError,
    StoreBusyError,
    StoreError,
    StoreWriteError,
    UnknownVersionError,
)

__all__ = ["cmd_cycle", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cycle", help="one offline online-learning cycle over trajectory files")
    add_common_options(p)
    p.add_argument("--trajectories", help="directory of JSON/JSONL trajectory files (default: <base-dir>/trajectories)")
    p.add_argument("--min-new-trajectories", type=int, help="skip the cycle below this many new trajectories")
    p.add_argument("--seen-trajectory-store",
                   help="seen ids file (default: <base-dir>/<router>/seen-trajectories.json)")
    p.add_argument("--dry-run", action="store_true", help="train and evaluate, save only the report")
    p.add_argument("--baseline-version", help="evaluate against this saved version instead of the active one")
    p.add_argument("--case-index", help="case index file to load and save")
    p.add_argument("--rebuild-case-index", action="store_true", help="rebuild the case index from all trajectories")
    p.set_defaults(func=cmd_cycle)


def cmd_cycle(args: argparse.Namespace) -> int:
    from memabrad.cycle import CycleInputError, run_online_learning_workflow
    from memabrad.evaluation.benchmark import SuiteFormatError

    cfg = load_cli_config(args)
    open_store(args, cfg)  # validates --router
    if args.min_new_trajectories is not None and args.min_new_trajectories < 0:
        raise UsageError("--min-new-trajectories must be >= 0")
    try:
        result = run_online_learning_workflow(
            cfg.store.base_dir,
            args.trajectories,
            router_id=args.router,
            min_new_trajectories=args.min_new_trajectories,
            seen_trajectory_store=args.seen_trajectory_store,
            dry_run=True if args.dry_run else None,
            baseline_version=args.baseline_version,
            case_index_path=args.case_index,
            rebuild_case_index=args.rebuild_case_index,
            config=cfg,
        )
    except (CycleInputError, SuiteFormatError, UnknownVersionError) as err:
        raise UsageError(str(err)) from None
    except StoreBusyError as err:
        raise CliError(str(err)) from None
    except (CorruptFileError, StoreWriteError, StoreError) as err:
        raise CliError(str(err)) from None
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0
