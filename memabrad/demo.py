"""``memabrad demo``: the whole loop on one machine, until the first promotion.

Starts the embedded Kafka-protocol broker on a free port, the real daemon
(``memabrad run`` in a subprocess) on a temporary base directory, and a simulated
agent producing trajectories; prints progress each second and a summary when the
first ``router.promoted`` event arrives. Everything it started is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from memabrad.config import Config
from memabrad.kafka.embedded import EmbeddedBroker, free_port
from memabrad.kafka.topics import ensure_topics
from memabrad.sim import Simulator


def _get(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
        body = resp.read()
    return json.loads(body) if url.endswith("/status") else body.decode()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited early with code {proc.returncode}")
        try:
            _get(f"http://127.0.0.1:{port}/readyz", timeout=1.0)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the daemon did not become ready in time")


async def _produce(cfg: Config, sim: Simulator, rate: int, limit: int, sent: list[int], stop: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka.bootstrap_servers, linger_ms=5, enable_idempotence=False)
    await producer.start()
    try:
        stream = sim.iter_generate(limit)
        start = time.monotonic()
        tick = max(1, rate // 20)
        for row in stream:
            if stop.is_set():
                break
            await producer.send(cfg.kafka.topics.trajectories, json.dumps(row, separators=(",", ":")).encode(),
                                key=row["router_id"].encode())
            sent[0] += 1
            if sent[0] % tick == 0:
                ahead = sent[0] / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()


async def _watch_events(cfg: Config, events: list[dict[str, Any]], stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.kafka.bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(cfg.kafka.topics.router_events, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                for m in msgs:
                    ev = json.loads(m.value)
                    events.append(ev)
                    if ev.get("type") == "router.promoted":
                        stop.set()
    finally:
        await consumer.stop()


async def _progress(port: int, sent: list[int], events: list[dict[str, Any]], stop: asyncio.Event,
                    timeout: float) -> None:
    started = last_t = time.monotonic()
    last_learned = 0
    while not stop.is_set():
        await asyncio.sleep(1.0)
        now = time.monotonic()
        try:
            status = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/status")
        except OSError:
            continue
        r = status.get("routers", {}).get("default", {})
        learned = r.get("trajectories_learned", 0)
        rate = (learned - last_learned) / max(1e-6, now - last_t)
        last_learned, last_t = learned, now
        kinds: dict[str, int] = {}
        for e in events:
            kinds[e["type"]] = kinds.get(e["type"], 0) + 1
        decisions = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in sorted(kinds.items())) or "none yet"
        print(f"[{now - started:5.1f}s] sent {sent[0]:>7}  learned {learned:>7}  {rate:7.0f} traj/s  "
              f"since evaluation {r.get('since_evaluation', 0):>5}  decisions: {decisions}", flush=True)
        if now - started > timeout:
            stop.set()


def _summary(promoted: dict[str, Any], port: int, base: Path) -> None:
    b = promoted["benchmark"]
    print("\nPROMOTED router version", promoted["version_id"], "(report", promoted["report_id"] + ")")
    print(f"  benchmark: {b['task_count']} tasks, estimator {b['estimator']}")
    for role in ("baseline", "challenger"):
        p = b[role]
        ci = f"[{p.get('reward_ci_low', 0):.3f}, {p.get('reward_ci_high', 0):.3f}]"
        print(f"  {role:<10} reward {p['reward']:.3f} {ci}"
              f"  error rate {p['error_rate']:.3f}  latency {p['latency_ms']:.0f} ms")
    print("  gates:")
    for name, g in promoted["gates"].items():
        print(f"    {'PASS' if g['passed'] else 'FAIL'}  {g.get('reason', name)}")
    print(f"\nmetrics were served at http://127.0.0.1:{port}/metrics (status at /status) while the demo ran")
    print(f"store: {base}/default/ (router-versions/, training-reports/)")


async def _demo(cfg: Config, args: argparse.Namespace, port: int, base: Path) -> dict[str, Any] | None:
    sent = [0]
    events: list[dict[str, Any]] = []
    stop = asyncio.Event()
    sim = Simulator(seed=args.seed)
    tasks = [
        asyncio.create_task(_watch_events(cfg, events, stop)),
        asyncio.create_task(_progress(port, sent, events, stop, args.timeout)),
        asyncio.create_task(_produce(cfg, sim, args.rate, args.max_trajectories, sent, stop)),
    ]
    await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return next((e for e in events if e["type"] == "router.promoted"), None)


def run_demo(args: argparse.Namespace) -> int:
    base = Path(tempfile.mkdtemp(prefix="memabrad-demo-"))
    print(f"memabrad demo: base dir {base}", flush=True)
    broker = EmbeddedBroker(log_path=base / "broker.log")
    proc: subprocess.Popen[bytes] | None = None
    code = 1
    try:
        broker.start()
        cfg = Config()
        cfg.kafka.bootstrap_servers = broker.bootstrap_servers
        cfg.store.base_dir = str(base)
        print(f"embedded broker on {broker.bootstrap_servers}", flush=True)
        asyncio.run(ensure_topics(cfg))
        port = free_port()
        env = {**os.environ, "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
               "MEMABRAD_STORE__BASE_DIR": str(base), "MEMABRAD_HTTP__PORT": str(port),
               "MEMABRAD_HTTP__HOST": "127.0.0.1", "MEMABRAD_LOGGING__FORMAT": "json"}
        with open(base / "daemon.log", "wb") as daemon_log:
            proc = subprocess.Popen([sys.executable, "-m", "memabrad", "run"], env=env, stdout=daemon_log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait_ready(port, proc, 60)
        print(f"daemon ready: http://127.0.0.1:{port}/metrics ; offering {args.rate} trajectories/s", flush=True)
        promoted = asyncio.run(_demo(cfg, args, port, base))
        if promoted is None:
            print("no promotion within the limits; see", base / "daemon.log", file=sys.stderr)
        else:
            _summary(promoted, port, base)
            code = 0
    except KeyboardInterrupt:
        code = 130
    except Exception as err:  # noqa: BLE001 - the demo reports and cleans up whatever failed
        print(f"memabrad demo: {err}", file=sys.stderr)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        broker.stop()
        if args.keep or code != 0:
            print(f"kept {base}", flush=True)
        else:
            shutil.rmtree(base, ignore_errors=True)
    return code
