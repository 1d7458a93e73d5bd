"""Local commands over the store: ``cycle``, ``status``, ``versions``, ``rollback``, ``simulate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from memabrad.cli.errors import CliError, UsageError
from memabrad.config import Config, ConfigError, default_config_path, load_config
from memabrad.store.errors import (
    CorruptFileError,
    StoreBusyError,
    StoreError,
    StoreWriteError,
    UnknownVersionError,
)
from memabrad.store.versions import RouterVersionStore


def load_cli_config(args: argparse.Namespace) -> Config:
    """Config from ``-c`` (or ./config.yaml), environment, then ``--base-dir``."""
    try:
        cfg = load_config(args.config if args.config else default_config_path())
    except ConfigError as err:
        raise UsageError(str(err)) from None
    if getattr(args, "base_dir", None):
        cfg.store.base_dir = args.base_dir
    return cfg


def open_store(args: argparse.Namespace, cfg: Config) -> RouterVersionStore:
    try:
        return RouterVersionStore(cfg.store.base_dir, args.router)
    except ValueError as err:
        raise UsageError(f"--router {args.router!r}: {err}") from None


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text)


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
        doc = read_checkpoint_doc(gens[-1])
        learner = (doc or {}).get("learners", {}).get(store.router_id)
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
        lines.append(f"learned:          {c['learned']} (trained {c['trained']}, benchmarked {c['benchmarked']}), "
                     f"since evaluation {c['since_evaluation']}")
    emit(args, data, "\n".join(lines))
    return 0


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


def cmd_simulate(args: argparse.Namespace) -> int:
    from memabrad.sim import Simulator, write_jsonl

    if args.n <= 0:
        raise UsageError("--n must be > 0")
    if not 0.0 <= args.epsilon <= 1.0:
        raise UsageError("--epsilon must be within [0, 1]")
    sim = Simulator(seed=args.seed, router_id=args.router, epsilon=args.epsilon)
    rows = sim.generate_suite(args.n) if args.suite else sim.generate(args.n)
    if args.out == "-":
        for row in rows:
            sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(out, rows)
        print(f"wrote {len(rows)} {'suite tasks' if args.suite else 'trajectories'} to {out}", file=sys.stderr)
    return 0
