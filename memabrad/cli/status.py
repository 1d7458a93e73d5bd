"""``memabrad status``: the active version, the last report and the learner's counters."""

from __future__ import annotations

import argparse
from typing import Any

from memabrad.cli.common import add_common_options, emit, load_cli_config, open_store
from memabrad.cli.errors import CliError
from memabrad.store.errors import StoreError
from memabrad.store.versions import RouterVersionStore

__all__ = ["cmd_status", "register", "status_data"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="active version, last report and counts")
    add_common_options(p)
    p.set_defaults(func=cmd_status)


def _learner_counters(store: RouterVersionStore, group_id: str) -> dict[str, Any] | None:
    """Counters of the router: the cycle's learner state, else the daemon's newest partition checkpoint."""
    from memabrad.cycle import LEARNER_STATE_FILE
    from memabrad.daemon.checkpoint import CheckpointStore, read_checkpoint_doc
    from memabrad.store.atomic import read_json

    path = store.router_dir / LEARNER_STATE_FILE
    if path.is_file():
        return read_json(path).get("counters")
    ckpt = CheckpointStore(store.base_dir, group_id)
    if not ckpt.root.is_dir():
        return None
    for d in sorted(p for p in ckpt.root.iterdir() if p.is_dir()):
        gens = sorted(d.glob("gen-*.npz"))
        if not gens:
            continue
        doc = read_checkpoint_doc(gens[-1]) or {}
        learner = doc.get("learners", {}).get(store.router_id)
        if learner is not None:
            return {**learner["counters"], "invalid": doc["invalid_by_router"].get(store.router_id, 0),
                    "checkpoint": str(gens[-1])}
    return None


def status_data(store: RouterVersionStore, group_id: str = "memabrad") -> dict[str, Any]:
    current = store.get_current()
    last = store.last_report()
    versions = store.list_versions()
    return {
        "router_id": store.router_id,
        "store": str(store.router_dir),
        "active_version": current["version_id"] if current else None,
        "current": current,
        "pinned_baseline": store.pinned_baseline(),
        "promotions_paused": store.promotions_paused(),
        "versions": len(versions),
        "reports": len(store.list_reports()),
        "last_report": None if last is None else {
            k: last.get(k) for k in ("report_id", "created_at", "verdict", "outcome", "dry_run", "version_id",
                                     "reasons")
        },
        "counters": _learner_counters(store, group_id),
    }


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_cli_config(args)
    store = open_store(args, cfg)
    try:
        data = status_data(store, cfg.kafka.group_id)
    except StoreError as err:
        raise CliError(str(err)) from None
    last = data["last_report"]
    lines = [
        f"router:           {data['router_id']} ({data['store']})",
        f"active version:   {data['active_version'] or '(none: the logging policy is the baseline)'}",
        f"pinned baseline:  {data['pinned_baseline'] or '-'}",
        f"promotions:       {'paused' if data['promotions_paused'] else 'enabled'}",
        f"versions:         {data['versions']}   reports: {data['reports']}",
    ]
    if data["current"] and data["current"].get("rollback_from"):
        c = data["current"]
        lines.append(f"last rollback:    from {c['rollback_from']} at {c['rolled_back_at']}")
    if last:
        lines.append(f"last report:      {last['report_id']} {last['verdict']} ({last['outcome']}) at "
                     f"{last['created_at']}")
        for r in last.get("reasons") or []:
            lines.append(f"                  - {r}")
    if data["counters"]:
        c = data["counters"]
        later = c.get("learned_after_holdout", 0)  # held out first, learned once they left the window
        held = f"benchmarked {c['benchmarked']}" + (f", of them trained later {later}" if later else "")
        lines.append(f"learned:          {c['learned']} (trained {c['trained']}, {held}), "
                     f"since evaluation {c['since_evaluation']}")
    emit(args, data, "\n".join(lines))
    return 0
