"""Soak: the daemon under steady load with evaluations, promotions, admin rollbacks and a broker restart.

    .venv/bin/python bench/soak.py --minutes 30 --rate 5000      # the full soak
    .venv/bin/python bench/soak.py --minutes 0.5 --rate 500      # the short version CI runs

Checks at the end (exit 1 if any fails): every trajectory accounted for
(accepted + duplicate + invalid = sent, from /status, which survives restarts), RSS flat
(last quarter's median within 25% of the second quarter's; judged only for runs of 5 minutes
or more, shorter ones are inside the warm-up), no ERROR/CRITICAL log lines
besides the expected ones (broker outage, the deliberately invalid records), the daemon
alive. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaProducer  # noqa: E402

from memabrad.config import Config  # noqa: E402
from memabrad.kafka.embedded import EmbeddedBroker, free_port  # noqa: E402
from memabrad.kafka.topics import ensure_topics  # noqa: E402
from memabrad.sim import Simulator  # noqa: E402
from memabrad.store.versions import RouterVersionStore  # noqa: E402

EXPECTED_ERRORS = ("aiokafka", "broker unreachable", "checkpoint failed", "sends failed", "offset commit",
                   "does not hold the checkpoint", "could not be saved or published")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
        return json.loads(r.read())


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _run(args: argparse.Namespace, broker: EmbeddedBroker, port: int, base: Path,
               proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    cfg = Config()
    topic = cfg.kafka.topics.trajectories
    sim = Simulator(seed=args.seed)
    rng = random.Random(args.seed)
    sent = invalid = resent = rollbacks = 0
    recent: list[bytes] = []
    rss: list[float] = []
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5, enable_idempotence=False)
    await producer.start()
    duration = args.minutes * 60
    start = time.monotonic()
    restarted = False
    next_sample = next_rollback = start
    try:
        while (now := time.monotonic()) - start < duration:
            # offered load, in 50 ms slices
            target = int((now - start) * args.rate)
            batch = []
            while sent + invalid + resent < target:
                roll = rng.random()
                if roll < 0.002:
                    batch.append(b"{not json")
                    invalid += 1
                elif roll < 0.01 and recent:
                    batch.append(rng.choice(recent))
                    resent += 1
                else:
                    row = json.dumps(next(iter(sim.iter_generate(1))), separators=(",", ":")).encode()
                    batch.append(row)
                    recent = (recent + [row])[-1000:]
                    sent += 1
            for value in batch:
                try:
                    await producer.send(topic, value, key=b"default")
                except Exception:  # noqa: BLE001 - the broker restart: count it as not sent
                    if value.startswith(b"{not"):
                        invalid -= 1
                    else:
                        sent -= 1
            if not restarted and now - start > duration / 2:
                # The embedded broker keeps its log in memory: let the daemon drain it first, so the
                # restart tests the daemon's recovery, not the broker's data loss.
                await producer.flush()
                await _wait_accounted(port, sent + invalid + resent, 120)
                broker.stop()
                broker.start()
                await ensure_topics(cfg_with(broker))
                restarted = True
            if now >= next_rollback and now - start > duration / 4:
                rollbacks += await _admin_rollback(producer, base)
                next_rollback = now + max(10.0, duration / 6)
            if now >= next_sample:
                rss.append(_rss_mb(proc.pid))
                next_sample = now + max(1.0, duration / 60)
            await asyncio.sleep(0.05)
        await producer.flush()
    finally:
        await producer.stop()
    total = sent + invalid + resent
    accounted, r = await _wait_accounted(port, total, 180)
    return {"sent_total": total, "sent_valid_new": sent, "sent_invalid": invalid, "sent_duplicates": resent,
            "accounted": accounted, "status": r, "admin_rollbacks_sent": rollbacks, "broker_restarted": restarted,
            "rss_mb": rss}


async def _wait_accounted(port: int, total: int, timeout: float) -> tuple[int, dict[str, Any]]:
    """Poll /status until learned + duplicates + invalid reaches ``total`` (or the timeout)."""
    deadline = time.monotonic() + timeout
    accounted, r = 0, {}
    while time.monotonic() < deadline:
        try:
            r = _get(f"http://127.0.0.1:{port}/status")["routers"].get("default", {})
        except OSError:
            r = {}
        accounted = r.get("trajectories_learned", 0) + r.get("duplicates", 0) + r.get("invalid", 0)
        if accounted >= total:
            break
        await asyncio.sleep(0.5)
    return accounted, r


def cfg_with(broker: EmbeddedBroker) -> Config:
    cfg = Config()
    cfg.kafka.bootstrap_servers = broker.bootstrap_servers
    return cfg


async def _admin_rollback(producer: AIOKafkaProducer, base: Path) -> int:
    """Roll back to the previous saved version (if two exist), as an operator would."""
    store = RouterVersionStore(base, "default")
    versions = [v.version_id for v in store.list_versions() if v.corrupt is None]
    current = store.active_version_id()
    if len(versions) < 2 or current is None:
        return 0
    target = next(v for v in versions if v != current)
    cmd = {"schema_version": 1, "command": "rollback", "request_id": f"soak-{time.time_ns()}",
           "router_id": "default", "version_id": target, "requested_by": "soak", "reason": "soak test",
           "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    await producer.send_and_wait(Config().kafka.topics.admin, json.dumps(cmd).encode(), key=b"default")
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=int, default=5000, help="trajectories per second offered")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="bench/soak-results.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="memabrad-soak-") as d:
        base = Path(d)
        broker = EmbeddedBroker(log_path=base / "broker.log").start()
        port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MEMABRAD_")},
               "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers, "MEMABRAD_STORE__BASE_DIR": str(base),
               "MEMABRAD_HTTP__PORT": str(port), "MEMABRAD_HTTP__HOST": "127.0.0.1",
               "MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(max(1000, int(args.rate * 10)))}
        log_path = base / "daemon.log"
        try:
            asyncio.run(ensure_topics(cfg_with(broker)))
            with open(log_path, "wb") as daemon_log:
                proc = subprocess.Popen([sys.executable, "-m", "memabrad", "run"], env=env, stdout=daemon_log,
                                        stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if _get(f"http://127.0.0.1:{port}/status")["ready"]:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            result = asyncio.run(_run(args, broker, port, base, proc))
            alive = proc.poll() is None
            proc.terminate()
            proc.wait(30)
        finally:
            broker.stop()
        lines = log_path.read_text(errors="replace").splitlines()
        errors = [ln for ln in lines if ('"level": "ERROR"' in ln or '"level": "CRITICAL"' in ln)
                  and not any(e in ln for e in EXPECTED_ERRORS)]
    rss = result["rss_mb"]
    q = max(1, len(rss) // 4)
    early, late = statistics.median(rss[q:2 * q] or rss), statistics.median(rss[-q:])
    checks = {
        "every trajectory accounted for": result["accounted"] == result["sent_total"],
        # Only meaningful past warm-up (benchmark window, case index and duplicate memory filling up).
        "RSS flat (late median within 25% of early)": late <= early * 1.25 if args.minutes >= 5 else True,
        "no unexpected errors in the log": not errors,
        "daemon alive until stopped": alive,
    }
    result.update(rss_early_mb=early, rss_late_mb=late, unexpected_errors=errors[:20], checks=checks,
                  minutes=args.minutes, rate=args.rate)
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"sent {result['sent_total']} (new {result['sent_valid_new']}, duplicates {result['sent_duplicates']}, "
          f"invalid {result['sent_invalid']}); accounted {result['accounted']}; RSS {early:.0f} -> {late:.0f} MB; "
          f"admin rollbacks sent {result['admin_rollbacks_sent']}; broker restarted {result['broker_restarted']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
