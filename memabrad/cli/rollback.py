"""``memabrad rollback``: make a saved version active again in the local store (no daemon running)."""

from __future__ import annotations

import argparse

from memabrad.cli.common import add_common_options, emit, load_cli_config, open_store
from memabrad.cli.errors import CliError, UsageError
from memabrad.store.errors import StoreBusyError, StoreError, UnknownVersionError

__all__ = ["cmd_rollback", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rollback", help="make a saved version active again (local store)")
    add_common_options(p)
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--reason", help="why (kept in the audit trail)")
    p.set_defaults(func=cmd_rollback)


def cmd_rollback(args: argparse.Namespace) -> int:
    cfg = load_cli_config(args)
    store = open_store(args, cfg)
    try:
        current = store.rollback(args.version, trigger="cli", reason=args.reason, require_no_daemon=True)
    except UnknownVersionError as err:
        raise UsageError(str(err)) from None
    except StoreBusyError as err:
        raise CliError(f"refused: a daemon holds the store ({err}); use `memabrad admin rollback` instead") from None
    except StoreError as err:
        raise CliError(str(err)) from None
    emit(args, current, f"active version: {current['version_id']} (rolled back from {current['rollback_from']})")
    return 0
