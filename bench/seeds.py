"""The learning bar over many seeds: how much of a margin in ``bench/quality.py`` is luck.

A seed of the quality benchmark changes the logged stream (and, on the real-data workloads, which
examples are held out), not the truth. One seed's value against a bar says little where the margin is
smaller than the seed-to-seed spread. This runs ``bench/quality.py`` once per seed (``--jobs`` at a time,
each in its own process), then reports, per workload and size, the main challenger's and the member put
forward's true value on every seed, their mean and spread, and on how many seeds each clears the learning
issue's bar: at least the logging policy and the best single route, and at least Vowpal Wabbit on the
same log.

    .venv/bin/python bench/seeds.py --seeds 4-13 --workloads hard,tools,pareto --out bench/seeds-results.json
    .venv/bin/python bench/seeds.py --workloads hard,tools,pareto --out bench/seeds-results.json \
        --from 'bench/quality-results.json,bench/quality-results-seed[23].json,bench/seeds-results-seed*.json'

Each seed's own JSON is kept beside ``--out`` (``<out stem>-seed<N>.json``).
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SeedValue:
    """One workload's look on one seed: true values (``vw`` None where VW did not run)."""

    seed: int
    main: float
    put_forward: float
    vw: float | None
    best_single: float
    logging: float
    verdict: str

    @property
    def over_baselines(self) -> bool:
        return self.main >= max(self.logging, self.best_single)

    @property
    def over_vw(self) -> bool | None:
        return None if self.vw is None else self.main >= self.vw


def parse_seeds(text: str) -> list[int]:
    """``"1,3,5-7"`` -> ``[1, 3, 5, 6, 7]``.

    >>> parse_seeds("4-6,9")
    [4, 5, 6, 9]
    """
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def values_of(result: dict[str, Any]) -> dict[tuple[str, int], SeedValue]:
    """Per (workload, size), one seed's values from a ``bench/quality.py`` JSON."""
    out = {}
    for w in result["workloads"]:
        for look in w["looks"]:
            main = look["members_true_value"].get("main", look["memabrad"]["value"])
            out[(w["name"], look["n"])] = SeedValue(
                int(result["seed"]), main, look["memabrad"]["value"], (look.get("vw") or {}).get("value"),
                w["best_single"]["value"], w["logging"]["value"], look["gate"]["verdict"])
    return out


def summarise(results: list[dict[str, Any]], workloads: set[str] | None = None,
              sizes: set[int] | None = None) -> list[dict[str, Any]]:
    """Per (workload, size) (only these ``workloads`` and ``sizes`` if given): every seed's values, their mean
    and spread, and how many seeds clear each bar."""
    by_key: dict[tuple[str, int], list[SeedValue]] = {}
    for r in results:
        for key, v in values_of(r).items():
            if (workloads is None or key[0] in workloads) and (sizes is None or key[1] in sizes):
                by_key.setdefault(key, []).append(v)
    rows = []
    for (name, n), vs in sorted(by_key.items()):
        vs.sort(key=lambda v: v.seed)
        mains = [v.main for v in vs]
        vws = [v.vw for v in vs if v.vw is not None]
        rows.append({
            "workload": name, "n": n, "seeds": [v.seed for v in vs],
            "main": mains, "put_forward": [v.put_forward for v in vs], "vw": [v.vw for v in vs],
            "best_single": vs[0].best_single, "logging": vs[0].logging,
            "main_mean": statistics.fmean(mains), "main_sd": statistics.stdev(mains) if len(mains) > 1 else 0.0,
            "main_min": min(mains),
            "vw_mean": statistics.fmean(vws) if vws else None,
            "over_baselines": sum(v.over_baselines for v in vs),
            "over_vw": sum(bool(v.over_vw) for v in vs), "with_vw": len(vws),
            "promoted": sum(v.verdict == "promote" for v in vs),
        })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| workload | n | seeds | main: mean ± sd (min) | VW mean | logging / best single "
            "| seeds ≥ both | seeds ≥ VW | promoted |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        vw = "–" if r["vw_mean"] is None else f"{r['vw_mean']:.4f}"
        lines.append(
            f"| {r['workload']} | {r['n']:,} | {len(r['seeds'])} | {r['main_mean']:.4f} ± {r['main_sd']:.4f} "
            f"({r['main_min']:.4f}) | {vw} | {r['logging']:.4f} / {r['best_single']:.4f} "
            f"| {r['over_baselines']} / {len(r['seeds'])} | "
            + (f"{r['over_vw']} / {r['with_vw']}" if r["with_vw"] else "–")
            + f" | {r['promoted']} / {len(r['seeds'])} |")
    return "\n".join(lines)


def run_seed(seed: int, out: Path, passthrough: list[str]) -> dict[str, Any]:
    """``bench/quality.py --seed seed`` in its own process (``passthrough``: its other arguments)."""
    path = out.with_name(f"{out.stem}-seed{seed}.json")
    cmd = [sys.executable, str(HERE / "quality.py"), "--seed", str(seed), "--out", str(path), *passthrough]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seed {seed} failed ({done.returncode}): {done.stderr[-2000:]}")
    print(f"  seed {seed}: {path}", file=sys.stderr, flush=True)
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,3,7 (default 1-5)")
    ap.add_argument("--workloads", default=None, help="bench/quality.py's --workloads (default: its own); "
                    "with --from, the ones summarised")
    ap.add_argument("--sizes", default="20000", help="bench/quality.py's --sizes (default 20000); with --from, "
                    "the ones summarised")
    ap.add_argument("--no-vw", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="seeds run at once (default 2)")
    ap.add_argument("--from", dest="from_glob", default=None,
                    help="summarise bench/quality.py JSONs matching these comma-separated globs instead of running")
    ap.add_argument("--out", default="bench/seeds-results.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.from_glob:
        paths = sorted({p for g in args.from_glob.split(",") for p in glob.glob(g.strip())})
        if not paths:
            ap.error(f"--from: nothing matches {args.from_glob!r}")
        results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    else:
        seeds = parse_seeds(args.seeds)
        passthrough = ["--sizes", args.sizes, *(["--workloads", args.workloads] if args.workloads else []),
                       *(["--no-vw"] if args.no_vw else [])]
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(lambda s: run_seed(s, out, passthrough), seeds))
    rows = summarise(results, set(args.workloads.split(",")) if args.workloads else None,
                     {int(n) for n in args.sizes.split(",")})
    command = " ".join(["seeds.py", *(argv if argv is not None else sys.argv[1:])])
    out.write_text(json.dumps({"benchmark": "memabrad learning quality over seeds", "command": command,
                               "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(table(rows))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
