"""memabrad benchmark suite: one command, seeded, prints a table and writes JSON.

    .venv/bin/python bench/run.py                 # full run (several minutes)
    .venv/bin/python bench/run.py --quick         # small sizes, for CI smoke runs

Sections (each can be skipped with --skip NAME; --skip a,b,c skips several):
  ingest    per workload (--workload sim|helpdesk|both|prompts; a fresh broker and daemon each): N (--ingest)
            trajectories pre-produced to the embedded broker; a real `memabrad run` consumes,
            validates, learns and checkpoints them: events/s, CPU s per 1k events, peak RSS;
            meanwhile a probe thread GETs /healthz and /metrics alternately every 50 ms (5 s
            timeout each, a timeout counts as 5,000 ms): p50/p99/max per endpoint; daemon CPU
            per trajectory around 10k / 100k / 1M learned (over whole evaluation periods near
            each mark); then produce-to-learned latency p50/p99 at a fixed offered rate (from
            the daemon's memabrad_record_age_seconds histogram); the daemon's checkpoint duration
            histogram; finally SIGTERM while a further backlog is being consumed: seconds to exit
            and the exit code
  kernel    featurize + choose + learn events/s, memabrad's router vs Vowpal Wabbit
            (--cb_explore_adf, driven as its documentation shows), and the simulator's true
            reward of each learned policy after 1k/10k/100k events beside logging and oracle
  evaluate  one benchmark evaluation at 1k/10k/100k tasks, at growing total history, and one of the
            daemon's looks on the help desk (snapshot, fingerprint, evaluation against an active version)
  memory    RSS of the learner after 1M and 5M events (flat is the target)
  seedway   retrain-from-everything every 1,000 events (the seed's way) vs incremental: total CPU
  dedupe    the duplicate memory at the daemon's default capacity: the longest single add (what the
            event loop waits for) and how many adds took over 3 / 10 / 30 ms, over 2.3 million ids
            (nine generation seals), with the daemon's 5 ms interpreter switch interval
  portfolio CPU per trajectory of the record step (parse, dedupe, score, learn) without a challenger
            portfolio and with members sharing the main model or learning their own (router.portfolio)
  budget    where 10,000/s's 100 us per trajectory goes, per workload: CPU per record of consuming from
            the embedded broker alone (aiokafka getmany, the daemon's fetch settings), of consuming and
            parsing, of featurising a task, and of the record step in process with the default config
            (parse, dedupe, featurise, score, learn; after a warm-up and the baseline a promotion installs)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
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


async def _produce(bs: str, items: Iterable[tuple[bytes, bytes]], rate: float | None,
                   topic: str = "memabra.trajectories") -> int:
    """Send ``(key, value)`` pairs (an iterable, so a 1M backlog is never held in memory); the count sent."""
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=5, enable_idempotence=False, max_batch_size=1 << 20)
    await p.start()
    sent = 0
    try:
        start = time.monotonic()
        futs = []
        for i, (key, row) in enumerate(items):
            futs.append(await p.send(topic, row, key=key))
            sent += 1
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
    return sent


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


WORKLOADS = ("sim", "helpdesk", "prompts")  # prompts: the hard workload's ~360-word few-shot prompts
PROBE_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 5.0
PROBE_PATHS = ("/healthz", "/metrics")
CPU_MARKS = (10_000, 100_000, 1_000_000)
# CPU per trajectory over a whole number of evaluation periods near each mark, so every window holds the
# same periodic work (checkpoints are by time): [max(P, m), max(P, m) + P], the last one ending at the
# backlog's end. P: the smallest multiple of the ingest section's evaluation threshold (the default
# config's, or BENCH_MIN_NEW_TRAJECTORIES) that is at least 20,000, so a window spans several seconds.
EVAL_THRESHOLD = int(os.environ.get("BENCH_MIN_NEW_TRAJECTORIES") or Config().evaluation.min_new_trajectories)
EVAL_PERIOD = -(-20_000 // EVAL_THRESHOLD) * EVAL_THRESHOLD


def _workload_rows(name: str) -> Iterator[tuple[bytes, bytes]]:
    """(Kafka key = router_id, JSON value) of one seeded workload, endless."""
    from memabrad.sim.hard import HardWorkload
    from memabrad.sim.helpdesk import HelpdeskWorkload

    gen: Any = (HelpdeskWorkload(seed=12) if name == "helpdesk" else HardWorkload(seed=13) if name == "prompts"
                else Simulator(seed=11))
    while True:
        for r in gen.iter_generate(10_000):
            yield r["router_id"].encode(), json.dumps(r, separators=(",", ":")).encode()


def _take(it: Iterator[tuple[bytes, bytes]], n: int) -> Iterator[tuple[bytes, bytes]]:
    for _ in range(n):
        yield next(it)


def _pctl(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); nan for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


class _Prober(threading.Thread):
    """GETs /healthz and /metrics alternately every 50 ms on loopback, each with a 5 s timeout.

    Bounded by ``max_seconds`` and ``max_probes`` besides ``stop()``; a timed-out probe counts as 5,000 ms.
    """

    def __init__(self, port: int, max_seconds: float, max_probes: int = 200_000) -> None:
        super().__init__(name="probe", daemon=True)
        self.port = port
        self.max_seconds = max_seconds
        self.max_probes = max_probes
        self._stopped = threading.Event()
        self.latencies_ms: dict[str, list[float]] = {p: [] for p in PROBE_PATHS}
        self.outcomes: dict[str, dict[str, int]] = {p: {} for p in PROBE_PATHS}

    def stop(self) -> None:
        self._stopped.set()
        self.join(PROBE_TIMEOUT_S * 2)

    def _probe(self, path: str) -> tuple[float, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PROBE_TIMEOUT_S)
        t0 = time.perf_counter()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            return (time.perf_counter() - t0) * 1000, str(resp.status)
        except TimeoutError:
            return PROBE_TIMEOUT_S * 1000, "timeout"
        except OSError as err:
            return (time.perf_counter() - t0) * 1000, type(err).__name__
        finally:
            conn.close()

    def run(self) -> None:
        end = time.monotonic() + self.max_seconds
        next_at = time.monotonic()
        for k in range(self.max_probes):
            if self._stopped.is_set() or time.monotonic() >= end:
                return
            path = PROBE_PATHS[k % 2]
            ms, outcome = self._probe(path)
            if outcome != "ConnectionRefusedError":  # answered, timed out or failed: all count
                self.latencies_ms[path].append(ms)
            self.outcomes[path][outcome] = self.outcomes[path].get(outcome, 0) + 1
            next_at += PROBE_INTERVAL_S
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()  # behind after a slow probe: carry on, no burst
            else:
                self._stopped.wait(delay)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, lat in self.latencies_ms.items():
            out[path] = {"probes": len(lat), "p50_ms": _pctl(lat, 0.5), "p99_ms": _pctl(lat, 0.99),
                         "max_ms": max(lat, default=float("nan")), "outcomes": self.outcomes[path]}
        return out


def _cpu_by_history(samples: list[tuple[int, float]], n: int) -> dict[str, Any]:
    """CPU µs per trajectory over ``EVAL_PERIOD`` learned at each mark m: learned counts
    [max(P, m), max(P, m) + P], moved back to end at the backlog's end when it would pass it."""
    out: dict[str, Any] = {}
    period = min(EVAL_PERIOD, n // 2)
    for mark in CPU_MARKS:
        if mark > n:
            continue
        lo = max(period, mark)
        hi = lo + period
        if hi > n:
            lo, hi = n - period, n
        if hi <= lo:
            continue
        before = [s for s in samples if s[0] <= lo]
        after = [s for s in samples if s[0] >= hi]
        if not before or not after:
            continue
        (l0, c0), (l1, c1) = before[-1], after[0]
        if l1 > l0:
            out[str(mark)] = {"cpu_us_per_trajectory": (c1 - c0) / (l1 - l0) * 1e6, "from_learned": l0,
                              "to_learned": l1}
    return out


def _cpu_curve(samples: list[tuple[int, float]], n: int, parts: int = 10) -> list[dict[str, float]]:
    """CPU µs per trajectory over each tenth of the backlog: where the cost moves with history, and how
    much one window differs from its neighbours (the noise a single mark cannot show)."""
    out: list[dict[str, float]] = []
    for k in range(parts):
        lo, hi = n * k // parts, n * (k + 1) // parts
        before = [s for s in samples if s[0] <= lo]
        after = [s for s in samples if s[0] >= hi]
        if not before or not after or after[0][0] <= before[-1][0]:
            continue
        (l0, c0), (l1, c1) = before[-1], after[0]
        out.append({"from_learned": l0, "to_learned": l1, "cpu_us_per_trajectory": (c1 - c0) / (l1 - l0) * 1e6})
    return out


def _histogram(text: str, name: str) -> dict[str, Any]:
    buckets = sorted((float(lbl["le"]), v) for lbl, v in _metric(text, f"{name}_bucket"))
    count = sum(v for _, v in _metric(text, f"{name}_count"))
    total = sum(v for _, v in _metric(text, f"{name}_sum"))
    max_le = next((le for le, c in buckets if count and c >= count), None)
    return {"count": count, "sum_s": total, "mean_s": total / count if count else float("nan"),
            "max_le_s": max_le}


def _learned_total(status: dict[str, Any]) -> int:
    return sum(r["trajectories_learned"] for r in status["routers"].values())


def _accounted(status: dict[str, Any]) -> int:
    return sum(r["trajectories_learned"] + r["duplicates"] + r["invalid"] for r in status["routers"].values())


def _status(port: int) -> dict[str, Any] | None:
    try:
        return json.loads(_get(f"http://127.0.0.1:{port}/status"))
    except OSError:
        return None


def bench_ingest(workload: str, n: int, rate: int, latency_n: int, sigterm_n: int) -> dict[str, Any]:
    """One workload: backlog of ``n`` with probes and CPU sampling, latency at ``rate``, SIGTERM under load."""
    from memabrad.kafka.embedded import EmbeddedBroker, free_port
    from memabrad.kafka.topics import ensure_topics

    print(f"    ingest/{workload}: {n:,} backlog, {latency_n:,} at {rate:,}/s, {sigterm_n:,} before SIGTERM",
          file=sys.stderr, flush=True)
    rows = _workload_rows(workload)
    out: dict[str, Any] = {"n": n, "workload": workload}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as d:
        cfg = Config()
        cfg.kafka.bootstrap_servers = broker.bootstrap_servers
        asyncio.run(ensure_topics(cfg))
        t = time.monotonic()
        asyncio.run(_produce(broker.bootstrap_servers, _take(rows, n), None))
        out["produce_backlog_s"] = time.monotonic() - t
        port = free_port()
        env = {**os.environ, "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
               "MEMABRAD_STORE__BASE_DIR": d, "MEMABRAD_HTTP__HOST": "127.0.0.1", "MEMABRAD_HTTP__PORT": str(port),
               "MEMABRAD_LOGGING__LEVEL": "WARNING"}
        # looks as often as the default config takes them; BENCH_MIN_NEW_TRAJECTORIES changes it (e.g. to isolate them)
        if os.environ.get("BENCH_MIN_NEW_TRAJECTORIES"):
            env["MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES"] = os.environ["BENCH_MIN_NEW_TRAJECTORIES"]
        with open(Path(d) / "daemon.log", "wb") as daemon_log:
            proc = subprocess.Popen([sys.executable, "-m", "memabrad", "run"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=daemon_log)
        prober: _Prober | None = None
        try:
            # -- the backlog: throughput, probes, CPU by history ------------------------------------
            start = None
            cpu0 = 0.0
            samples: list[tuple[int, float]] = []  # (learned, daemon CPU s)
            budget = 600 + n / 1000
            deadline = time.monotonic() + budget
            learned = 0
            while time.monotonic() < deadline and proc.poll() is None:
                status = _status(port)
                if status is None:
                    time.sleep(0.05)
                    continue
                if prober is None:
                    prober = _Prober(port, max_seconds=budget)
                    prober.start()
                learned = _learned_total(status)
                cpu = _daemon_proc_stats(proc.pid)[0]
                samples.append((learned, cpu))
                if start is None and status.get("ready"):
                    start, cpu0 = time.monotonic(), cpu
                if learned >= n:
                    break
                time.sleep(0.05)
            if prober is not None:
                prober.stop()
            if learned < n:
                out.update(error=f"daemon learned {learned:,} of {n:,} (exit code {proc.poll()})",
                           daemon_log_tail=(Path(d) / "daemon.log").read_text(errors="replace")[-4000:])
                return out
            elapsed = time.monotonic() - (start or time.monotonic())
            cpu1, peak = _daemon_proc_stats(proc.pid)
            out.update(events_per_s=n / elapsed if elapsed else float("nan"),
                       cpu_s_per_1k=(cpu1 - cpu0) / n * 1000, peak_rss_mb=peak, seconds=elapsed,
                       probes=prober.summary() if prober else {},
                       evaluation_every=EVAL_THRESHOLD,
                       cpu_by_history={"window": f"{EVAL_PERIOD:,} learned ({EVAL_PERIOD // EVAL_THRESHOLD} "
                                                 "evaluation periods) from max(window, mark), the last ending "
                                                 "at the backlog's end",
                                       "marks": _cpu_by_history(samples, n),
                                       "tenths": _cpu_curve(samples, n)})
            produced = n

            # -- produce-to-learned latency at a fixed offered rate ----------------------------------
            if latency_n:
                def buckets_now() -> dict[float, float]:
                    text = _get(f"http://127.0.0.1:{port}/metrics")
                    return {float(lbl["le"]): v for lbl, v in _metric(text, "memabrad_record_age_seconds_bucket")}

                before = buckets_now()  # the pre-produced backlog's ages are not latency at a rate
                produced += asyncio.run(_produce(broker.bootstrap_servers, _take(rows, latency_n), rate))
                deadline = time.monotonic() + 120 + latency_n / 1000
                while time.monotonic() < deadline:
                    status = _status(port)
                    if status is not None and _learned_total(status) >= produced:
                        break
                    time.sleep(0.1)
                after = buckets_now()
                buckets = sorted((le, v - before.get(le, 0.0)) for le, v in after.items())
                out.update(offered_rate=rate, latency_n=latency_n, latency_p50_ms=_quantile(buckets, 0.5) * 1000,
                           latency_p99_ms=_quantile(buckets, 0.99) * 1000)

            # -- checkpoint pauses so far (the daemon's own histogram) ----------------------------------
            out["checkpoint"] = _histogram(_get(f"http://127.0.0.1:{port}/metrics"),
                                           "memabrad_checkpoint_duration_seconds")
            status = _status(port)
            out["accounted"] = _accounted(status) if status else None
            out["produced_before_sigterm_phase"] = produced

            # -- SIGTERM while a further backlog is being consumed ----------------------------------
            if sigterm_n:
                learned_before = _learned_total(_status(port) or {"routers": {}})
                produced += asyncio.run(_produce(broker.bootstrap_servers, _take(rows, sigterm_n), None))
                learned_at = None
                deadline = time.monotonic() + 30  # until the daemon is into the new backlog (busy)
                while time.monotonic() < deadline:
                    status = _status(port)
                    learned_at = _learned_total(status) if status else learned_at
                    if learned_at is not None and learned_at > learned_before:
                        break
                    time.sleep(0.02)
                t = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    rc: int | None = proc.wait(120)
                except subprocess.TimeoutExpired:
                    rc = None
                out["sigterm"] = {"backlog": sigterm_n, "unlearned_at_sigterm": produced - learned_at
                                  if learned_at is not None else None,
                                  "exit_s": time.monotonic() - t if rc is not None else None,
                                  "exit_code": rc}
                if rc != 0:
                    out["sigterm"]["daemon_log_tail"] = (Path(d) / "daemon.log").read_text(errors="replace")[-3000:]
        finally:
            if prober is not None and prober.is_alive():
                prober.stop()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
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
    out["daemon_look"] = _daemon_look(history=3_000 if histories[-1] < 10_000 else 30_000)
    return out


def _daemon_look(history: int, looks: int = 7) -> dict[str, Any]:
    """The evaluator's work at one of the daemon's looks, default config, help desk: the look's
    snapshot (frozen challenger, window copy), its fingerprint (the report id) and the evaluation
    against an active version (the challenger frozen at half the history; the window's arrays kept
    from look to look as the daemon keeps them), median of ``looks``
    successive looks, each after ``min_new_trajectories`` more trajectories."""
    from memabrad.evaluation.window_arrays import WindowArrays
    from memabrad.learning.frozen import FrozenScorer
    from memabrad.promotion.evaluation import evaluate
    from memabrad.promotion.policy import PolicySettings

    cfg = Config()
    settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    arrays = WindowArrays()  # kept across looks, as the daemon keeps it
    rows = _workload_rows("helpdesk")
    learner = RouterLearner.new("bench", cfg)
    baseline = None
    times: dict[str, list[float]] = {"snapshot": [], "fingerprint": [], "evaluate": []}
    for i in range(history + looks * cfg.evaluation.min_new_trajectories):
        learner.observe(parse_trajectory(next(rows)[1]))
        if learner.counters.since_evaluation < cfg.evaluation.min_new_trajectories:
            continue
        t0 = time.perf_counter()
        snap = learner.snapshot()
        t1 = time.perf_counter()
        if i >= history:
            _ = snap.report_id
            t2 = time.perf_counter()
            evaluate(snap, baseline, settings, arrays=arrays)
            t3 = time.perf_counter()
            times["snapshot"].append(t1 - t0)
            times["fingerprint"].append(t2 - t1)
            times["evaluate"].append(t3 - t2)
        elif baseline is None and i >= history // 2:
            baseline = snap.challenger
            baseline.version_id = "bench-baseline"
            learner.set_baseline(baseline, FrozenScorer(baseline), from_look=snap.sequence)
        learner.drop_shadow(snap.sequence)
    return {"workload": "helpdesk", "history": history, "window": len(learner.window),
            **{f"{k}_s": statistics.median(v) for k, v in times.items()}}


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


def bench_dedupe(n: int) -> dict[str, Any]:
    import random

    from memabrad.daemon.dedupe import DedupeMemory

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # the daemon's (memabrad/daemon/app.py)
    try:
        m = DedupeMemory(Config().checkpoint.dedupe_capacity)
        rng = random.Random(5)
        over = {3: 0, 10: 0, 30: 0}
        worst = 0.0
        t0 = time.perf_counter()
        for _ in range(n):
            h = rng.getrandbits(64)
            t = time.perf_counter()
            m.add_hash(h)
            m.contains_hash(h ^ 1)
            d = (time.perf_counter() - t) * 1000.0
            worst = max(worst, d)
            for k in over:
                over[k] += d > k
        return {"n": n, "worst_ms": worst, "adds_over_ms": over, "seconds": time.perf_counter() - t0,
                "seals": n // m.generation_size}
    finally:
        sys.setswitchinterval(before)


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


# -- portfolio ---------------------------------------------------------------------------------

DEFAULT_PORTFOLIO = [m.model_dump() for m in Config().router.portfolio]  # config.yaml's, read from its source
PORTFOLIOS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "+1 shared (pessimism 2)": [{"name": "careful", "pessimism": 2.0}],
    "+1 own model (learning rate 0.1)": [{"name": "slow", "learning_rate": 0.1}],
    "+3 (slow, bold, careful)": [{"name": "slow", "learning_rate": 0.1}, {"name": "bold", "pessimism": 0.0},
                                 {"name": "careful", "pessimism": 2.0}],
    "default": DEFAULT_PORTFOLIO,
    "default + own model (learning rate 1.0; bench/configs/bold-member.yaml)": [
        *DEFAULT_PORTFOLIO, {"name": "bold", "learning_rate": 1.0}],
}


def bench_portfolio(warm: int, n: int, repeats: int) -> dict[str, Any]:
    """CPU per trajectory of the daemon's record step (parse, dedupe, learn, score) by portfolio, after
    ``warm`` trajectories and a promotion (so a baseline is scored too): ``repeats`` rounds, each running
    every portfolio once (so that drift of a shared machine hits them all alike); the median per portfolio."""
    from memabrad.config import config_from_dict

    rows = [(r["router_id"].encode(), json.dumps(r, separators=(",", ":")).encode())
            for r in Simulator(seed=11).generate(warm + n)]
    cfgs = {name: config_from_dict({"router": {"portfolio": members}}) for name, members in PORTFOLIOS.items()}
    times: dict[str, list[float]] = {name: [] for name in cfgs}
    for _ in range(repeats):
        for name, cfg in cfgs.items():
            times[name].append(_record_step_us(rows, cfg, warm))
    out: dict[str, Any] = {"warm": warm, "n": n, "repeats": repeats,
                           "us_per_trajectory": {k: round(statistics.median(v), 1) for k, v in times.items()},
                           "runs_us": {k: [round(t, 1) for t in v] for k, v in times.items()}}
    base = out["us_per_trajectory"]["none"]
    out["extra_us"] = {k: round(v - base, 1) for k, v in out["us_per_trajectory"].items() if k != "none"}
    return out


def _consume_cpu(bs: str, n: int, parse_each: bool) -> float:
    """CPU us per record to consume ``n`` records from the trajectories topic (and parse each)."""
    from aiokafka import AIOKafkaConsumer

    from memabrad.daemon.records import parse

    cfg = Config()

    async def go() -> float:
        c = AIOKafkaConsumer(cfg.kafka.topics.trajectories, bootstrap_servers=bs, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             fetch_max_wait_ms=cfg.kafka.fetch_max_wait_ms)
        await c.start()
        got, t = 0, cpu_s()
        try:
            while got < n:
                for recs in (await c.getmany(timeout_ms=1_000, max_records=cfg.kafka.fetch_max_records)).values():
                    for r in recs:
                        if parse_each:
                            parse(r.value, cfg.kafka.max_message_bytes)
                        got += 1
        finally:
            await c.stop()
        return (cpu_s() - t) / got * 1e6

    return asyncio.run(go())


def _record_step_us(rows: list[tuple[bytes, bytes]], cfg: Config, warm: int) -> float:
    """CPU us per trajectory of the daemon's record step in process (parse, dedupe, featurise, score, learn) over
    ``rows`` (Kafka key = router id, value) after the first ``warm``; every look's challenger is installed as
    the baseline, as a promotion would, so a baseline is scored too."""
    from memabrad.daemon.partition import PartitionState
    from memabrad.daemon.records import RecordStep, parse
    from memabrad.learning.frozen import FrozenScorer

    state, step = PartitionState.empty("bench", 0, cfg), RecordStep(cfg)

    def feed(part: list[tuple[bytes, bytes]]) -> None:
        for key, value in part:
            rec = parse(value, cfg.kafka.max_message_bytes)
            state.learner(key.decode(), cfg)
            out = step.apply(state, rec, key)
            if out.evaluate and out.learner is not None:
                snap = out.learner.snapshot()
                out.learner.set_baseline(snap.challenger, FrozenScorer(snap.challenger), from_look=snap.sequence)
    feed(rows[:warm])
    t = cpu_s()
    feed(rows[warm:])
    return (cpu_s() - t) / (len(rows) - warm) * 1e6


def _featurize_cpu(rows: list[tuple[bytes, bytes]]) -> float:
    """CPU us per trajectory to featurise the parsed tasks of ``rows`` (their text hashes and features, no hint),
    as the record step does once per trajectory."""
    from memabrad.daemon.records import parse
    from memabrad.learning.features import TaskView, text_hashes
    from memabrad.learning.router import Router
    from memabrad.wire.trajectory import Trajectory

    cfg = Config()
    tasks = [rec.task for _, v in rows
             if isinstance(rec := parse(v, cfg.kafka.max_message_bytes), Trajectory)]
    featurizer = Router.from_config(cfg.router).featurizer
    t = cpu_s()
    for task in tasks:
        view = TaskView.of(task)
        featurizer.featurize(view, None, text_hashes(view.input, featurizer.version))
    return (cpu_s() - t) / len(tasks) * 1e6


def bench_budget(workloads: Iterable[str], n: int, warm: int) -> dict[str, Any]:
    """Per workload: consuming alone, consuming and parsing, featurising, and the record step, CPU us per record."""
    from memabrad.kafka.embedded import EmbeddedBroker
    from memabrad.kafka.topics import ensure_topics

    out: dict[str, Any] = {"n": n, "warm": warm, "budget_us": 100.0}
    for w in workloads:
        rows = list(_take(_workload_rows(w), warm + n))  # the first n produced and featurised; all of them stepped
        with EmbeddedBroker() as broker:
            cfg = Config()
            cfg.kafka.bootstrap_servers = broker.bootstrap_servers
            asyncio.run(ensure_topics(cfg))
            asyncio.run(_produce(broker.bootstrap_servers, rows[:n], None))
            consume = _consume_cpu(broker.bootstrap_servers, n, False)
            parsed = _consume_cpu(broker.bootstrap_servers, n, True)
        out[w] = {"consume_us": round(consume, 1), "consume_parse_us": round(parsed, 1),
                  "featurize_us": round(_featurize_cpu(rows[:n]), 1),
                  "record_step_us": round(_record_step_us(rows, Config(), warm), 1)}
    return out


# -- main ------------------------------------------------------------------------------------


def _run(name: str, skip: set[str], results: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> None:
    if name in skip:
        return
    print(f"... {name}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    results[name] = fn()
    results[name]["bench_seconds"] = round(time.perf_counter() - t, 1)


def _ingest_rows(sec: str, r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    if "error" in r:
        return [(sec, "FAILED (daemon log tail in the JSON)", r["error"], "")]
    rows = [(sec, f"events/s end to end ({r['n']:,} events)", f"{r['events_per_s']:,.0f}", ">= 10,000"),
            (sec, "CPU s per 1,000 events", f"{r['cpu_s_per_1k']:.3f}", ""),
            (sec, "peak RSS (MB)", f"{r['peak_rss_mb']:.0f}", "")]
    for path, p in r.get("probes", {}).items():
        bad = {k: v for k, v in p["outcomes"].items() if k != "200"}
        rows.append((sec, f"GET {path} during backlog: p50 / p99 / max ms ({p['probes']} probes"
                          f"{', not 200: ' + str(bad) if bad else ''})",
                     f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f} / {p['max_ms']:.1f}",
                     "p99 < 100" if path == "/healthz" else ""))
    for mark, c in r.get("cpu_by_history", {}).get("marks", {}).items():
        rows.append((sec, f"daemon CPU us/trajectory around {int(mark):,} learned "
                          f"(learned {c['from_learned']:,} -> {c['to_learned']:,})",
                     f"{c['cpu_us_per_trajectory']:.0f}", "flat"))
    tenths = r.get("cpu_by_history", {}).get("tenths", [])
    if tenths:
        rows.append((sec, "daemon CPU us/trajectory over each tenth of the backlog",
                     " ".join(f"{c['cpu_us_per_trajectory']:.0f}" for c in tenths), "flat"))
    if "latency_p99_ms" in r:
        rows += [(sec, f"produce-to-learned p50 ms @ {r['offered_rate']:,}/s", f"{r['latency_p50_ms']:.1f}", ""),
                 (sec, f"produce-to-learned p99 ms @ {r['offered_rate']:,}/s", f"{r['latency_p99_ms']:.1f}",
                  "< 250")]
    if "checkpoint" in r:
        c = r["checkpoint"]
        worst = r.get("probes", {}).get("/healthz", {}).get("max_ms", float("nan"))
        rows.append((sec, "checkpoints during the run: count / mean s / max bucket s",
                     f"{c['count']:.0f} / {c['mean_s']:.3f} / <= {c['max_le_s']:g}" if c["count"] else "0", ""))
        rows.append((sec, "worst /healthz latency during backlog (the pause that matters), ms", f"{worst:.1f}",
                     "< 100"))
    if "sigterm" in r:
        t = r["sigterm"]
        took = f"{t['exit_s']:.2f}" if t["exit_s"] is not None else "no exit in 120 s"
        left = t["unlearned_at_sigterm"]
        rows.append((sec, f"SIGTERM with {left if left is None else format(left, ',')} of a {t['backlog']:,} "
                          "backlog unlearned: "
                          "s to exit / exit code", f"{took} / {t['exit_code']}", "< 10 / 0"))
    return rows


def table(results: dict[str, Any]) -> str:
    rows = [("section", "measure", "value", "target")]
    for workload, r in results.get("ingest", {}).items():
        if isinstance(r, dict):
            rows += _ingest_rows(f"ingest/{workload}", r)
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
        look = r.get("daemon_look")
        if look:
            rows.append(("evaluate", f"a daemon look, help desk after {look['history']:,}, {look['window']:,}-task "
                         "window: snapshot / fingerprint / evaluation (ms)",
                         f"{1e3 * look['snapshot_s']:.1f} / {1e3 * look['fingerprint_s']:.1f} / "
                         f"{1e3 * look['evaluate_s']:.1f}", ""))
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
    if "dedupe" in results:
        r = results["dedupe"]
        rows.append(("dedupe", f"longest add, {r['n']:,} ids ({r['seals']} seals) (ms)", f"{r['worst_ms']:.1f}",
                     "a few ms"))
        rows.append(("dedupe", "adds over 3 / 10 / 30 ms",
                     " / ".join(str(r["adds_over_ms"][k]) for k in (3, 10, 30)), ""))
    if "portfolio" in results:
        r = results["portfolio"]
        for k, v in r["us_per_trajectory"].items():
            extra = r.get("extra_us", {}).get(k)
            rows.append(("portfolio", f"record step CPU us/trajectory, portfolio {k}",
                         f"{v:.0f}" + (f" ({extra:+.0f})" if extra is not None else ""), ""))
    if "budget" in results:
        r = results["budget"]
        for w, b in r.items():
            if isinstance(b, dict):
                rows += [("budget", f"{w}: consume only, CPU us/record", f"{b['consume_us']:.1f}", ""),
                         ("budget", f"{w}: consume + parse, CPU us/record", f"{b['consume_parse_us']:.1f}", ""),
                         ("budget", f"{w}: featurise a task (part of the record step), CPU us",
                          f"{b.get('featurize_us', float('nan')):.1f}", ""),
                         ("budget", f"{w}: record step in process (default config), CPU us/trajectory",
                          f"{b['record_step_us']:.0f}", "<= 100 in all")]
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--skip", action="append", default=[], help="skip a section (repeatable)")
    ap.add_argument("--out", default="bench/results.json", help="JSON output path")
    ap.add_argument("--ingest", type=int, help="backlog size of the ingest section, per workload "
                                               "(default 200000; quick 20000; the issue's target run: 1000000)")
    ap.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both",
                    help="ingest workload(s): the simulator, the repetitive help desk, or both (default); "
                         "prompts: long few-shot prompts (memabrad/sim/hard.py)")
    ap.add_argument("--rate", type=int, help="offered rate for the latency measurement (default 5000; quick 2000)")
    ap.add_argument("--sigterm-backlog", type=int,
                    help="trajectories pre-produced before the SIGTERM of the ingest section (default 50000; "
                         "quick 5000; 0 = plain stop)")
    ap.add_argument("--memory", help="comma-separated event counts for the memory section (default 1000000,5000000)")
    args = ap.parse_args()
    q = args.quick
    skip = {name.strip() for arg in args.skip for name in arg.split(",") if name.strip()}
    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                                           "cpus": os.cpu_count()}, "quick": q}
    n_ingest = args.ingest or (20_000 if q else 200_000)
    rate = args.rate or (2_000 if q else 5_000)
    sigterm_n = args.sigterm_backlog if args.sigterm_backlog is not None else (5_000 if q else 50_000)
    workloads = ("sim", "helpdesk") if args.workload == "both" else (args.workload,)
    _run("ingest", skip, results, lambda: {
        w: bench_ingest(w, n_ingest, rate, 2_000 if q else rate * 10, sigterm_n) for w in workloads})
    _run("kernel", skip, results, lambda: bench_kernel([500, 2_000] if q else [1_000, 10_000, 100_000]))
    _run("evaluate", skip, results, lambda: bench_evaluate([500, 2_000] if q else [1_000, 10_000, 100_000],
                                                           [2_000, 4_000] if q else [10_000, 50_000, 200_000]))
    memory = [int(v) for v in args.memory.split(",")] if args.memory else (
        [5_000, 20_000] if q else [1_000_000, 5_000_000])
    _run("memory", skip, results, lambda: bench_memory(memory))
    _run("seedway", skip, results, lambda: bench_seedway(3_000 if q else 20_000, 1_000))
    _run("dedupe", skip, results, lambda: bench_dedupe(300_000 if q else 2_300_000))
    _run("portfolio", skip, results, lambda: bench_portfolio(2_000 if q else 10_000, 2_000 if q else 10_000,
                                                             1 if q else 5))
    _run("budget", skip, results, lambda: bench_budget(workloads, 5_000 if q else 50_000, 2_000 if q else 20_000))
    print(table(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
