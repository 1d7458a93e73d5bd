"""``memabrad versions``: saved versions, newest first, the active one marked."""

from __future__ import annotations

import argparse

from memabrad.cli.common import add_common_options, emit, load_cli_config, open_store
from memabrad.cli.errors import CliError
from memabrad.store.errors import StoreError

__all__ = ["cmd_versions", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("versions", help="saved versions, newest first, the active one marked")
    add_common_options(p)
    p.set_defaults(func=cmd_versions)


def cmd_versions(args: argparse.Namespace) -> int:
    cfg = load_cli_config(args)
    store = open_store(args, cfg)
    try:
        active = store.active_version_id()
        metas = store.list_versions()
    except StoreError as err:
        raise CliError(str(err)) from None
    rows = [{**m.to_dict(), "active": m.version_id == active} for m in metas]
    lines = [f"{'*' if r['active'] else ' '} {r['version_id']:<20} {r.get('created_at') or '':<22} "
             f"report {r.get('report_id') or '-'}{'  CORRUPT: ' + r['corrupt'] if r.get('corrupt') else ''}"
             for r in rows] or ["(no versions saved)"]
    emit(args, {"router_id": store.router_id, "active_version": active, "versions": rows}, "\n".join(lines))
    return 0
