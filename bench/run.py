"""memabrad benchmark suite: one command, seeded, prints a table and writes JSON.

    .venv/bin/python bench/run.py                 # full run (several minutes)
    .venv/bin/python bench/run.py --quick         # small sizes, for CI smoke runs

Sections (each can be skipped with --skip NAME):
  ingest    N trajectories pre-produced to the embedded broker; a real `memabrad run` consumes,
            validates, learns and checkpoints them: events/s, CPU s per 1k events, peak RSS;
            then produce-to-learned latency p50/p99 at a fixed offered rate (from the daemon's
            memabrad_record_age_seconds histogram)
  kernel    featurize + choose + learn events/s, memabrad's router vs Vowpal Wabbit
            (--cb_explore_adf, driven as its documentation shows), and the simulator's true
            reward of each learned policy after 1k/10k/100k events beside logging and oracle
  evaluate  one benchmark evaluation at 1k/10k/100k tasks, and at growing total history
  memory    RSS of the learner after 1M and 5M events (flat is the target)
  seedway   retrain-from-everything every 1,000 events (the seed's way) vs incremental: total CPU
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memabrad.config import Config  # noqa: E402
from memabrad.learning.learner import RouterLearner  # noqa: E402
from memabrad.sim import Simulator, oracle_policy, true_value, true_value_of_logging  # noqa: E402
from memabrad.wire.parse import parse_trajectory  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- ingest ---------------------------------------------------------------------------------


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
        return r.read().decode()


def _metric(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out.append((s.labels, s.value))
    return out


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    target = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= target:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (target - prev_c) / max(1e-12, c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


async def _produce(bs: str, rows: list[bytes], keys: list[bytes], rate: float | None) -> None:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=5, enable_idempotence=False, max_batch_size=1 << 20)
    await p.start()
    try:
        start = time.monotonic()
        futs = []
        for i, (row, key) in enumerate(zip(rows, keys, strict=True)):
            futs.append(await p.send("memabra.trajectories", row, key=key))
            if rate and i % 50 == 0:
                ahead = i / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if len(futs) > 20_000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
    finally:
        await p.stop()


def _daemon_proc_stats(pid: int) -> tuple[float, float]:
    """(cpu seconds, peak RSS MB) of a live process from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(parts[11]) + int(parts[12])) / ticks
    peak = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cpu, peak


def bench_ingest(n: int, rate: int, latency_n: int) -> dict[str, Any]:
    from memabrad.kafka.embedded import EmbeddedBroker, free_port
    from memabrad.kafka.topics import ensure_topics

    sim = Simulator(seed=11)
    rows = [json.dumps(r, separators=(",", ":")).encode() for r in sim.iter_generate(n + latency_n)]
    keys = [b"default"] * len(rows)
    out: dict[str, Any] = {"n": n}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as d:
        cfg = Config()
        cfg.kafka.bootstrap_servers = broker.bootstrap_servers
        asyncio.run(ensure_topics(cfg))
        asyncio.run(_produce(broker.bootstrap_servers, rows[:n], keys[:n], None))
        port = free_port()
        env = {**os.environ, "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
               "MEMABRAD_STORE__BASE_DIR": d, "MEMABRAD_HTTP__PORT": str(port), "MEMABRAD_LOGGING__LEVEL": "WARNING",
               "MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "20000"}
        with open(Path(d) / "daemon.log", "wb") as daemon_log:
            proc = subprocess.Popen([sys.executable, "-m", "memabrad", "run"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=daemon_log)
        try:
            start = None
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    status = json.loads(_get(f"http://127.0.0.1:{port}/status"))
                except OSError:
                    time.sleep(0.05)
                    continue
                learned = sum(r["trajectories_learned"] for r in status["routers"].values())
                if start is None and status.get("ready"):
                    start, cpu0 = time.monotonic(), _daemon_proc_stats(proc.pid)[0]
                if learned >= n:
                    break
                time.sleep(0.05)
            elapsed = time.monotonic() - (start or time.monotonic())
            cpu1, peak = _daemon_proc_stats(proc.pid)
            out.update(events_per_s=n / elapsed if elapsed else float("nan"),
                       cpu_s_per_1k=(cpu1 - cpu0) / n * 1000, peak_rss_mb=peak, seconds=elapsed)
            if latency_n:
                def buckets_now() -> dict[float, float]:
                    text = _get(f"http://127.0.0.1:{port}/metrics")
                    return {float(lbl["le"]): v for lbl, v in _metric(text, "memabrad_record_age_seconds_bucket")}

                before = buckets_now()  # the pre-produced backlog's ages are not latency at a rate
                asyncio.run(_produce(broker.bootstrap_servers, rows[n:], keys[n:], rate))
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    status = json.loads(_get(f"http://127.0.0.1:{port}/status"))
                    if sum(r["trajectories_learned"] for r in status["routers"].values()) >= n + latency_n:
                        break
                    time.sleep(0.1)
                after = buckets_now()
                buckets = sorted((le, v - before.get(le, 0.0)) for le, v in after.items())
                out.update(offered_rate=rate, latency_p50_ms=_quantile(buckets, 0.5) * 1000,
                           latency_p99_ms=_quantile(buckets, 0.99) * 1000)
        finally:
            proc.terminate()
            proc.wait(30)
    return out


# -- kernel ---------------------------------------------------------------------------------


def _vw_line(task: dict[str, Any], cands: list[str], logged: tuple[str, float, float] | None) -> list[str]:
    words = " ".join("".join(c for c in w if c.isalnum()) or "_" for w in task["input"].lower().split())
    shared = f"shared |U {words} t_{task.get('task_type', 'none')}"
    lines = [shared]
    for c in cands:
        label = ""
        if logged and logged[0] == c:
            label = f"0:{-logged[1]}:{logged[2]} "
        lines.append(f"{label}|A r_{c.replace('.', '_')}")
    return lines


def bench_kernel(sizes: list[int]) -> dict[str, Any]:
    sim = Simulator(seed=21)
    total = max(sizes)
    rows = sim.generate(total)
    parsed = [parse_trajectory(json.dumps(r)) for r in rows]
    out: dict[str, Any] = {"logging_reward": true_value_of_logging(Simulator(seed=21), n_contexts=5000).reward,
                           "oracle_reward": true_value(oracle_policy(), n_contexts=5000).reward}
    cfg = Config()
    learner = RouterLearner.new("bench", cfg)
    learner.holdout_fraction = 1e-9  # learn everything: this section measures the kernel
    rewards: dict[int, float] = {}
    t0 = time.perf_counter()
    for i, t in enumerate(parsed, 1):
        learner.challenger.choose(t.task, t.candidates)
        learner.observe(t)
        if i in sizes:
            pause = time.perf_counter()
            r = learner.challenger.clone()
            r.case_index = learner.case_index
            rewards[i] = true_value(lambda task, c, r=r: r.choose(task, c).route, n_contexts=3000).reward
            t0 += time.perf_counter() - pause
    out["memabrad_events_per_s"] = total / (time.perf_counter() - t0)
    out["memabrad_reward"] = rewards
    try:
        import vowpalwabbit
    except ImportError:
        out["vw"] = "not installed (pip install vowpalwabbit)"
        return out
    vw = vowpalwabbit.Workspace("--cb_explore_adf --epsilon 0.0 -q UA --quiet")
    vw_rewards: dict[int, float] = {}

    def vw_policy(task: dict[str, Any], cands: list[str]) -> str:
        pmf = vw.predict(_vw_line(task, cands, None))
        return cands[max(range(len(cands)), key=lambda k: (pmf[k], -k))]

    t0 = time.perf_counter()
    for i, row in enumerate(rows, 1):
        cands = row["candidates"]
        vw.predict(_vw_line(row["task"], cands, None))
        d, o = row["decision"], row["outcome"]
        vw.learn(_vw_line(row["task"], cands, (d["route"], o["reward"], d["propensity"])))
        if i in sizes:
            pause = time.perf_counter()
            vw_rewards[i] = true_value(vw_policy, n_contexts=3000).reward
            t0 += time.perf_counter() - pause
    out["vw_events_per_s"] = total / (time.perf_counter() - t0)
    out["vw_reward"] = vw_rewards
    vw.finish()
    return out


# -- evaluation ------------------------------------------------------------------------------


def bench_evaluate(sizes: list[int], histories: list[int]) -> dict[str, Any]:
    from memabrad.promotion.evaluation import evaluate
    from memabrad.promotion.policy import PolicySettings

    out: dict[str, Any] = {"by_tasks": {}, "by_history": {}}
    settings = PolicySettings()
    for size in sizes:
        cfg = Config()
        cfg.evaluation.window_size = size
        cfg.evaluation.holdout_fraction = 0.5
        learner = RouterLearner.new("bench", cfg)
        for row in Simulator(seed=31).iter_generate(size * 2):
            learner.observe(parse_trajectory(json.dumps(row)))
        snap = learner.snapshot()
        t = time.perf_counter()
        evaluate(snap, None, settings)
        out["by_tasks"][size] = time.perf_counter() - t
    cfg = Config()
    learner = RouterLearner.new("bench", cfg)
    sim = Simulator(seed=32)
    seen = 0
    for h in histories:
        for row in sim.iter_generate(h - seen):
            learner.observe(parse_trajectory(json.dumps(row)))
        seen = h
        snap = learner.snapshot()
        t = time.perf_counter()
        evaluate(snap, None, settings)
        out["by_history"][h] = time.perf_counter() - t
    return out


# -- memory ----------------------------------------------------------------------------------


def bench_memory(checkpoints: list[int]) -> dict[str, Any]:
    from memabrad.daemon.dedupe import DedupeMemory

    cfg = Config()
    learner = RouterLearner.new("bench", cfg)
    dedupe = DedupeMemory(cfg.checkpoint.dedupe_capacity)
    out: dict[str, Any] = {}
    sim = Simulator(seed=41)
    done = 0
    for target in checkpoints:
        for row in sim.iter_generate(target - done):
            t = parse_trajectory(json.dumps(row))
            learner.observe(t)
            dedupe.add(t.trajectory_id)
        done = target
        out[target] = rss_mb()
    first, last = out[checkpoints[0]], out[checkpoints[-1]]
    out["growth_pct"] = (last - first) / first * 100
    return out


# -- the seed's way --------------------------------------------------------------------------


def bench_seedway(n: int, every: int) -> dict[str, Any]:
    rows = [parse_trajectory(json.dumps(r)) for r in Simulator(seed=51).generate(n)]
    cfg = Config()
    c0 = cpu_s()
    learner = RouterLearner.new("bench", cfg)
    for t in rows:
        learner.observe(t)
    incremental = cpu_s() - c0
    c0 = cpu_s()
    for end in range(every, n + 1, every):
        fresh = RouterLearner.new("bench", cfg)
        for t in rows[:end]:
            fresh.observe(t)
    retrain = cpu_s() - c0
    return {"n": n, "every": every, "incremental_cpu_s": incremental, "retrain_cpu_s": retrain,
            "ratio": retrain / incremental}


# -- main ------------------------------------------------------------------------------------


def _run(name: str, skip: set[str], results: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> None:
    if name in skip:
        return
    print(f"... {name}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    results[name] = fn()
    results[name]["bench_seconds"] = round(time.perf_counter() - t, 1)


def table(results: dict[str, Any]) -> str:
    rows = [("section", "measure", "value", "target")]
    if "ingest" in results:
        r = results["ingest"]
        rows += [("ingest", f"events/s end to end ({r['n']} events)", f"{r['events_per_s']:,.0f}", ">= 50,000"),
                 ("ingest", "CPU s per 1,000 events", f"{r['cpu_s_per_1k']:.3f}", ""),
                 ("ingest", "peak RSS (MB)", f"{r['peak_rss_mb']:.0f}", "")]
        if "latency_p99_ms" in r:
            rows += [("ingest", f"produce-to-learned p50 ms @ {r['offered_rate']}/s", f"{r['latency_p50_ms']:.1f}", ""),
                     ("ingest", f"produce-to-learned p99 ms @ {r['offered_rate']}/s", f"{r['latency_p99_ms']:.1f}",
                      "< 250")]
    if "kernel" in results:
        r = results["kernel"]
        rows.append(("kernel", "memabrad featurize+choose+learn events/s", f"{r['memabrad_events_per_s']:,.0f}",
                     ">= 3x VW"))
        if "vw_events_per_s" in r:
            rows.append(("kernel", "Vowpal Wabbit cb_explore_adf events/s", f"{r['vw_events_per_s']:,.0f}", ""))
        for k, v in r["memabrad_reward"].items():
            vw = r.get("vw_reward", {}).get(k)
            rows.append(("kernel", f"true reward after {k:,} events (memabrad / VW)",
                         f"{v:.3f} / {vw:.3f}" if vw is not None else f"{v:.3f}", "VW - 1%"))
        rows.append(("kernel", "true reward: logging / oracle", f"{r['logging_reward']:.3f} / {r['oracle_reward']:.3f}",
                     ""))
    if "evaluate" in results:
        r = results["evaluate"]
        for k, v in r["by_tasks"].items():
            rows.append(("evaluate", f"one evaluation, {k:,} tasks (s)", f"{v:.3f}", "< 1 s at 10k"))
        for k, v in r["by_history"].items():
            rows.append(("evaluate", f"one evaluation after {k:,} events of history (s)", f"{v:.3f}", "flat"))
    if "memory" in results:
        r = results["memory"]
        for k, v in r.items():
            if k not in ("growth_pct", "bench_seconds"):
                rows.append(("memory", f"RSS after {int(k):,} events (MB)", f"{v:.0f}", ""))
        rows.append(("memory", "RSS growth first -> last (%)", f"{r['growth_pct']:.1f}", "< 10"))
    if "seedway" in results:
        r = results["seedway"]
        rows += [("seedway", f"incremental CPU s ({r['n']:,} events)", f"{r['incremental_cpu_s']:.1f}", ""),
                 ("seedway", f"retrain every {r['every']:,} CPU s", f"{r['retrain_cpu_s']:.1f}", ""),
                 ("seedway", "retrain / incremental", f"{r['ratio']:.1f}x", "")]
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--skip", action="append", default=[], help="skip a section (repeatable)")
    ap.add_argument("--out", default="bench/results.json", help="JSON output path")
    ap.add_argument("--ingest", type=int, help="events for the ingest section (default 200000; quick 5000)")
    ap.add_argument("--rate", type=int, help="offered rate for the latency measurement (default 5000)")
    ap.add_argument("--memory", help="comma-separated event counts for the memory section (default 1000000,5000000)")
    args = ap.parse_args()
    q = args.quick
    skip = set(args.skip)
    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                                           "cpus": os.cpu_count()}, "quick": q}
    n_ingest = args.ingest or (5_000 if q else 200_000)
    rate = args.rate or (2_000 if q else 5_000)
    _run("ingest", skip, results, lambda: bench_ingest(n_ingest, rate, 2_000 if q else rate * 10))
    _run("kernel", skip, results, lambda: bench_kernel([500, 2_000] if q else [1_000, 10_000, 100_000]))
    _run("evaluate", skip, results, lambda: bench_evaluate([500, 2_000] if q else [1_000, 10_000, 100_000],
                                                           [2_000, 4_000] if q else [10_000, 50_000, 200_000]))
    memory = [int(v) for v in args.memory.split(",")] if args.memory else (
        [5_000, 20_000] if q else [1_000_000, 5_000_000])
    _run("memory", skip, results, lambda: bench_memory(memory))
    _run("seedway", skip, results, lambda: bench_seedway(3_000 if q else 20_000, 1_000))
    print(table(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
