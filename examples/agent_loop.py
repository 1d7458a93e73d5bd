#!/usr/bin/env python3
"""The whole learning loop, end to end, with the SDK: an agent that gets better while it runs.

What runs, all on this machine and stopped at the end:

- the embedded Kafka-protocol broker;
- the real daemon (``python -m memabrad run``) on a temporary store;
- an "agent": the simulator's hidden world plays the outcome of whichever route the
  ``RouterFollower`` chooses (epsilon-greedy, with honest propensities), and a
  ``TrajectoryProducer`` emits each trajectory to the daemon.

The daemon learns from those trajectories, promotes versions that beat the active one,
and the follower hot-swaps each promoted version in. The script prints the true expected
reward of the follower's greedy policy after each swap (``memabrad.sim.true_value``: the
simulator knows the truth) and the moving average of the rewards the agent observes, and
draws both in a PNG (matplotlib when installed, else a built-in PNG writer).

Run it from a checkout with the project's virtualenv::

    .venv/bin/python examples/agent_loop.py                 # ~2 minutes
    .venv/bin/python examples/agent_loop.py --duration 30   # quicker, fewer promotions
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyplot import Series, write_line_chart

from memabrad.config import Config
from memabrad.kafka.embedded import EmbeddedBroker, free_port
from memabrad.kafka.topics import ensure_topics
from memabrad.sdk import RouterFollower, Swap, TrajectoryProducer
from memabrad.sim import (
    DEFAULT_ROUTES,
    ContextStream,
    Policy,
    default_world,
    fixed_policy,
    oracle_policy,
    true_value,
)

ROUTER_ID = "default"
MOVING_WINDOW = 2000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=90.0, help="seconds the agent works (default 90)")
    p.add_argument("--rate", type=int, default=800, help="tasks per second the agent handles (default 800)")
    p.add_argument("--epsilon", type=float, default=0.2,
                   help="exploration of the follower (default 0.2; see docs/integrating.md on choosing it)")
    p.add_argument("--min-new", type=int, default=3000,
                   help="daemon: evaluate after this many new trajectories (default 3000; config default 1000)")
    p.add_argument("--seed", type=int, default=7, help="seed of the task stream, outcomes and exploration")
    p.add_argument("--value-contexts", type=int, default=3000,
                   help="contexts averaged for each true policy value (default 3000)")
    p.add_argument("--plot", type=Path, default=Path("agent_loop.png"), help="PNG to write (default agent_loop.png)")
    p.add_argument("--keep", action="store_true", help="keep the temporary store and logs")
    return p.parse_args(argv)


# -- the daemon -------------------------------------------------------------------------------------


def start_daemon(bootstrap: str, base: Path, port: int, min_new: int) -> subprocess.Popen[bytes]:
    """``memabrad run`` configured by environment, as an operator would run it; its log goes to a file.

    Everything but the evaluation cadence is the documented default (gates, guard, estimator).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMABRAD_")}
    env.update({"MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "MEMABRAD_STORE__BASE_DIR": str(base),
                "MEMABRAD_HTTP__HOST": "127.0.0.1", "MEMABRAD_HTTP__PORT": str(port),
                "MEMABRAD_LOGGING__FORMAT": "json", "MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(min_new)})
    with open(base / "daemon.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "memabrad", "run"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=base)


def http_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:  # noqa: S310 - loopback
        body = resp.read()
    return json.loads(body) if path == "/status" else body


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with code {proc.returncode}")
        try:
            http_json(port, "/readyz")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the daemon did not become ready in time")


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the agent --------------------------------------------------------------------------------------


@dataclass
class Timeline:
    """What the plot and the summary show."""

    observed: list[tuple[float, float]] = field(default_factory=list)
    greedy: list[tuple[float, float]] = field(default_factory=list)
    swaps: list[tuple[float, Swap]] = field(default_factory=list)


def greedy_value(policy: Policy, n_contexts: int) -> float:
    """True expected reward of a policy without exploration (the simulator knows the truth)."""
    return true_value(policy, n_contexts=n_contexts).reward


async def agent(args: argparse.Namespace, bootstrap: str, base: Path, port: int, timeline: Timeline) -> None:
    loop = asyncio.get_running_loop()
    world = default_world()
    tasks = ContextStream(world, DEFAULT_ROUTES, args.seed)
    outcome_rng = random.Random(args.seed)
    start = loop.time()
    valuations: list[asyncio.Task[None]] = []

    async def value_now(policy: Policy, label: str, at: float | None = None) -> None:
        value = await asyncio.to_thread(greedy_value, policy, args.value_contexts)
        t = loop.time() - start if at is None else at
        previous = max(timeline.greedy)[1] if timeline.greedy else None
        timeline.greedy.append((t, value))
        timeline.greedy.sort()
        change = f" (was {previous:.3f})" if previous is not None else ""
        print(f"[{t:5.1f}s] {label}: true expected reward without exploration {value:.3f}{change}", flush=True)

    def on_swap(swap: Swap) -> None:
        at = loop.time() - start
        latency = f", served {swap.latency_s * 1000:.0f} ms after the event" if swap.latency_s is not None else ""
        print(f"[{at:5.1f}s] {swap.cause}: now serving {swap.version_id}{latency}", flush=True)
        timeline.swaps.append((at, swap))
        router = follower.router
        valuations.append(asyncio.create_task(value_now(lambda t, c: router.choose(t, c).route, swap.version_id, at)))

    # Until the daemon's first version exists, the app's own hand-written rule routes (with exploration).
    follower = RouterFollower(base, ROUTER_ID, bootstrap_servers=bootstrap, epsilon=args.epsilon, rng=args.seed,
                              fallback=fixed_policy, on_swap=on_swap)
    async with follower, TrajectoryProducer(bootstrap, linger_ms=20) as producer:
        await value_now(fixed_policy, "the app's fixed rule (no version yet)", at=0.0)
        start = loop.time()
        window: collections.deque[float] = collections.deque(maxlen=MOVING_WINDOW)
        done = 0
        next_report = 5.0
        while (elapsed := loop.time() - start) < args.duration:
            due = min(int(elapsed * args.rate), done + 200)  # at most 200 per turn, so the follower gets the loop
            while done < due:
                task, candidates, ctx = tasks.next()
                decision = follower.choose(task, candidates)  # route + propensity + router_version
                outcome = world.sample_outcome(ctx, decision.route, outcome_rng)  # the "agent" doing the work
                await producer.send(follower.make_trajectory(task, candidates, decision, outcome))
                window.append(outcome[0])
                done += 1
            if len(window) >= 200 and (not timeline.observed or elapsed - timeline.observed[-1][0] >= 0.5):
                timeline.observed.append((elapsed, sum(window) / len(window)))
            if elapsed >= next_report:
                next_report += 5.0
                await report(port, elapsed, done, producer, follower, window)
            behind = int((loop.time() - start) * args.rate) > done
            await asyncio.sleep(0 if behind else 0.005)
        await producer.flush(timeout=30)
        await asyncio.gather(*valuations)


async def report(port: int, elapsed: float, done: int, producer: TrajectoryProducer, follower: RouterFollower,
                 window: collections.deque[float]) -> None:
    try:
        status = await asyncio.to_thread(http_json, port, "/status")
        r = status.get("routers", {}).get(ROUTER_ID, {})
        verdict = (r.get("last_evaluation") or {}).get("verdict") or "-"
        learned = r.get("trajectories_learned", 0)
    except OSError:
        verdict, learned = "?", "?"
    avg = sum(window) / len(window) if window else float("nan")
    print(f"[{elapsed:5.1f}s] tasks {done:>6}  delivered {producer.delivered:>6}  learned {learned:>6}  "
          f"observed reward (last {len(window)}) {avg:.3f}  serving {follower.version_id or '-'}  "
          f"last verdict {verdict}", flush=True)


# -- output -----------------------------------------------------------------------------------------


def plot(path: Path, timeline: Timeline, duration: float, oracle: float) -> None:
    greedy = timeline.greedy
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        write_line_chart(path, [
            Series(f"observed reward, moving average of {MOVING_WINDOW}", timeline.observed, (31, 119, 180)),
            Series("true reward of the served policy (without exploration)", greedy, (214, 39, 40), step=True),
            Series(f"oracle {oracle:.3f}", [(0.0, oracle), (duration, oracle)], (110, 110, 110), dashed=True, width=1),
        ], title="memabrad agent loop: reward over time", x_label="seconds", y_label="reward", y_range=(0.0, 1.0))
        return
    fig, ax = plt.subplots(figsize=(10, 5.5))
    if timeline.observed:
        ax.plot(*zip(*timeline.observed, strict=True), label=f"observed reward, moving average of {MOVING_WINDOW}")
    xs, ys = zip(*greedy, strict=True)
    ax.step([*xs, duration], [*ys, ys[-1]], where="post",
            label="true reward of the served policy (without exploration)")
    ax.axhline(oracle, linestyle="--", color="grey", label=f"oracle {oracle:.3f}")
    ax.set(xlabel="seconds", ylabel="reward", ylim=(0, 1), title="memabrad agent loop: reward over time")
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="memabrad-agent-loop-"))
    print(f"agent loop: store and logs in {base}", flush=True)
    broker = EmbeddedBroker(log_path=base / "broker.log")
    daemon: subprocess.Popen[bytes] | None = None
    timeline = Timeline()
    code = 1
    try:
        broker.start()
        cfg = Config()
        cfg.kafka.bootstrap_servers = broker.bootstrap_servers
        asyncio.run(ensure_topics(cfg))
        port = free_port()
        daemon = start_daemon(broker.bootstrap_servers, base, port, args.min_new)
        wait_ready(port, daemon)
        oracle = true_value(oracle_policy(), n_contexts=args.value_contexts).reward
        print(f"broker {broker.bootstrap_servers}, daemon ready (http://127.0.0.1:{port}/status); "
              f"the best possible policy (oracle) scores {oracle:.3f}", flush=True)
        asyncio.run(agent(args, broker.bootstrap_servers, base, port, timeline))
        if timeline.greedy:
            first, last = timeline.greedy[0][1], timeline.greedy[-1][1]
            print(f"\n{len(timeline.swaps)} version change(s); true reward of the served policy {first:.3f} -> "
                  f"{last:.3f} (oracle {oracle:.3f})")
        if timeline.observed:
            print(f"observed reward, moving average: {timeline.observed[0][1]:.3f} -> {timeline.observed[-1][1]:.3f} "
                  f"(below the served policy's value: a share epsilon={args.epsilon:g} of tasks explore)")
        plot(args.plot, timeline, args.duration, oracle)
        print(f"plot: {args.plot.resolve()}")
        code = 0
    except KeyboardInterrupt:
        code = 130
    finally:
        if daemon is not None:
            stop_daemon(daemon)
        broker.stop()
        if args.keep or code != 0:
            print(f"kept {base} (daemon.log, broker.log, the store)")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
