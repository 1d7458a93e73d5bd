"""``memabrad report``: the evaluation history of routers as one self-contained HTML page."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from memabrad.cli.common import load_cli_config
from memabrad.cli.errors import CliError, UsageError
from memabrad.store.versions import ROUTER_ID_RE

__all__ = ["cmd_report", "register"]


def cmd_report(args: argparse.Namespace) -> int:
    from memabrad.report.history import build_histories, discover_routers
    from memabrad.report.html import render_report
    from memabrad.store.atomic import atomic_write_bytes
    from memabrad.store.errors import StoreError

    cfg = load_cli_config(args)
    base = Path(cfg.store.base_dir)
    if not base.is_dir():
        raise UsageError(f"store base directory {base} does not exist (--base-dir or store.base_dir)")
    if args.router:
        routers = list(dict.fromkeys(args.router))
        for r in routers:
            if not ROUTER_ID_RE.match(r) or r in {".", ".."}:
                raise UsageError(f"--router {r!r}: expected 1-64 chars of [A-Za-z0-9._-]")
            if not (base / r).is_dir():
                raise UsageError(f"--router {r!r}: no store at {base / r}")
    else:
        routers = discover_routers(base)
        if not routers:
            raise UsageError(f"no router stores under {base} (expected <base-dir>/<router>/router-versions or "
                             "training-reports)")
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name such as report.html")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: directory {out.parent} does not exist")
    try:
        histories = build_histories(base, routers)
        page = render_report(histories, base_dir=str(base), title=args.title)
    except StoreError as err:
        raise CliError(str(err)) from None
    try:
        atomic_write_bytes(out, page.encode("utf-8"))
    except (StoreError, OSError) as err:
        raise CliError(f"cannot write {out}: {err}") from None
    summary = {
        "out": str(out),
        "bytes": len(page.encode("utf-8")),
        "routers": {h.router_id: {"evaluations": len(h.evaluations), "promotions": len(h.promotions),
                                  "rollbacks": len(h.rollbacks), "active_version": h.active_version,
                                  "skipped": list(h.skipped)} for h in histories},
    }
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        for h in histories:
            print(f"{h.router_id}: {len(h.evaluations)} evaluations, {len(h.promotions)} promotions, "
                  f"{len(h.rollbacks)} rollbacks, active {h.active_version or '-'}")
            for s in h.skipped:
                print(f"  skipped: {s}", file=sys.stderr)
        print(f"wrote {out} ({summary['bytes']:,} bytes)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the ``memabrad`` parser.

    Not with the common options: ``--router`` here defaults to every router under the base directory.
    """
    p = sub.add_parser("report", help="the evaluation history of routers as a self-contained HTML page",
                       description="Write the evaluation history (gates against thresholds, decisions, promotions, "
                                   "rollbacks, baseline and challenger reward) of the routers under the store's "
                                   "base directory as one HTML file with inline charts.")
    p.add_argument("-c", "--config", help="config file (default: ./config.yaml when present, else built-in defaults)")
    p.add_argument("--base-dir", help="store base directory (store.base_dir)")
    p.add_argument("--router", action="append", metavar="R",
                   help="router id (repeatable; default: every router under the base directory)")
    p.add_argument("--out", required=True, metavar="FILE", help="HTML file to write, e.g. report.html")
    p.add_argument("--title", default="memabrad evaluation history", help="page title")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.set_defaults(func=cmd_report)
