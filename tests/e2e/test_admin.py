"""Signed admin commands: rollback, refusals that change nothing, pause, evaluate now."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka_harness import ALWAYS_PROMOTE, DaemonFactory, EventReader, KafkaIO, Producer, Topics, evaluation_events

from memabrad.sim import Simulator
from memabrad.wire import sign_command

pytestmark = pytest.mark.e2e

KEY = "e2e-admin-key"
KEY_ENV = "MEMABRAD_TEST_ADMIN_KEY"
THRESHOLD = 1_000
SEED = 0
MAX_TRAJECTORIES = 10_000  # gates that pass whatever the data: one promotion per evaluation


def _issued(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def command(command: str, request_id: str, *, router_id: str = "default", version_id: str | None = None,
            key: str | None = KEY, issued_at: str | None = None) -> dict[str, Any]:
    cmd: dict[str, Any] = {"schema_version": 1, "command": command, "request_id": request_id,
                           "router_id": router_id, "issued_at": issued_at or _issued(),
                           "requested_by": "e2e@example.com", "reason": f"e2e {command}"}
    if version_id is not None:
        cmd["version_id"] = version_id
    if key is not None:
        cmd["signature"] = sign_command(cmd, key)
    return cmd


def test_admin_commands(kafka: KafkaIO, daemons: DaemonFactory, producer: Producer) -> None:
    topics = Topics.unique("admin")
    kafka.create_topics(topics)
    reader: EventReader = kafka.events(topics.router_events)
    # The test is about admin commands: it needs two versions, not a judgement (test_promotion judges).
    d = daemons.new("admin", topics, env={"MEMABRAD_ADMIN__HMAC_KEY_ENV": KEY_ENV, KEY_ENV: KEY,
                                          "MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(THRESHOLD),
                                          **ALWAYS_PROMOTE})
    d.wait_ready()
    sim = Simulator(seed=SEED)

    def send(cmd: dict[str, Any]) -> None:
        producer.send_json(topics.admin, cmd, key=cmd["router_id"])

    # Two promotions: feed THRESHOLD trajectories at a time until the second one.
    sent = 0
    promoted: list[str] = []
    while len(promoted) < 2:
        assert sent < MAX_TRAJECTORIES, f"fewer than 2 promotions after {sent} trajectories"
        producer.send_trajectories(topics.trajectories, sim.generate(THRESHOLD))
        sent += THRESHOLD
        d.wait_consumed({0: sent}, timeout=120)
        n_evals = sent // THRESHOLD
        evals = reader.wait_events(lambda es, n=n_evals: evaluation_events(es)[:n] if len(evaluation_events(es)) >= n
                                   else None, 60, f"{n_evals} evaluation events")
        promoted = [e["version_id"] for e in evals if e["type"] == "router.promoted"]
    first, active = promoted[0], promoted[-1]
    current_path = d.base_dir / "default" / "router-versions" / "current.json"
    assert json.loads(current_path.read_text())["version_id"] == active

    # Signed rollback to the first version.
    send(command("rollback", "r-rollback", version_id=first))
    ev = reader.wait_answer("r-rollback")
    assert ev["type"] == "router.rolled_back", ev
    assert (ev["version_id"], ev["previous_version_id"], ev["trigger"]) == (first, active, "admin")
    assert (ev["requested_by"], ev["reason"]) == ("e2e@example.com", "e2e rollback")
    current_bytes = current_path.read_bytes()
    current = json.loads(current_bytes)
    assert current["version_id"] == first
    assert current["rollback_from"] == active and current["rolled_back_at"]
    last = current["history"][-1]
    assert (last["action"], last["from"], last["to"], last["request_id"]) == ("rollback", active, first, "r-rollback")
    m = d.metrics()
    assert m.value("memabrad_rollbacks_total", router_id="default", trigger="admin") == 1
    assert m.find("memabrad_active_router_info", router_id="default") == [
        ({"router_id": "default", "version_id": first}, 1.0)]
    assert m.value("memabrad_admin_commands_total", command="rollback", result="applied") == 1
    assert d.router()["active_version"] == first  # type: ignore[index]

    # Refused commands: one admin.rejected each, nothing changes.
    refused = {
        "r-unsigned": (command("rollback", "r-unsigned", version_id=active, key=None), "signature"),
        "r-bad-signature": (command("rollback", "r-bad-signature", version_id=active, key="not-the-key"),
                            "signature"),
        "r-stale": (command("rollback", "r-stale", version_id=active, issued_at=_issued(-timedelta(hours=1))),
                    "stale"),
        "r-rollback": (command("rollback", "r-rollback", version_id=active), "replayed"),
        "r-unknown-version": (command("rollback", "r-unknown-version", version_id="20000101-000000"),
                              "unknown version"),
        "r-unknown-router": (command("rollback", "r-unknown-router", router_id="ghost-router", version_id=first),
                             "unknown router"),
    }
    for cmd, _ in refused.values():
        send(cmd)

    def rejections(request_id: str) -> list[dict[str, Any]]:
        return [e for e in reader.answers(request_id) if e["type"] == "admin.rejected"]

    for request_id, (_, why) in refused.items():
        rej = wait_rejection(reader, request_id)
        assert rej["command"] == "rollback" and why in rej["reason"].lower(), rej
    assert current_path.read_bytes() == current_bytes
    assert not (d.base_dir / "ghost-router").exists()
    assert d.metrics().value("memabrad_admin_commands_total", command="rollback", result="rejected") == len(refused)

    # Paused promotions: the next evaluation is a dry run.
    send(command("pause_promotions", "r-pause"))
    ev = reader.wait_answer("r-pause")
    assert (ev["type"], ev["command"]) == ("admin.applied", "pause_promotions"), ev
    seen = len(evaluation_events(reader.events()))
    producer.send_trajectories(topics.trajectories, sim.generate(THRESHOLD))
    nxt = reader.wait_events(lambda es: evaluation_events(es)[seen:], 60, "the evaluation after the pause")[0]
    assert nxt["type"] == "router.evaluated" and nxt["dry_run"] is True and nxt.get("paused") is True, nxt
    assert json.loads(current_path.read_bytes())["version_id"] == first

    # evaluate_now: applied, then an evaluation follows.
    d.wait_consumed({0: sent + THRESHOLD}, timeout=60)
    seen = len(evaluation_events(reader.events()))
    send(command("evaluate_now", "r-evaluate"))
    ev = reader.wait_answer("r-evaluate")
    assert (ev["type"], ev["command"]) == ("admin.applied", "evaluate_now"), ev
    after = reader.wait_events(lambda es: evaluation_events(es)[seen:], 60, "the evaluation evaluate_now asked for")
    assert after[0]["type"] == "router.evaluated", after[0]
    ids = [e["event_id"] for e in reader.events()]
    assert ids.index(after[0]["event_id"]) > ids.index(ev["event_id"])

    # Exactly one answer per command (the replayed request id also has its original answer).
    answers = Counter((e["request_id"], e["type"]) for e in reader.events() if e.get("request_id"))
    expected = Counter({(rid, "admin.rejected"): 1 for rid in refused})
    expected.update({("r-rollback", "router.rolled_back"): 1, ("r-pause", "admin.applied"): 1,
                     ("r-evaluate", "admin.applied"): 1})
    assert answers == expected
    for rid in refused:
        assert len(rejections(rid)) == 1
    m = d.metrics()
    assert m.value("memabrad_admin_commands_total", command="pause_promotions", result="applied") == 1
    assert m.value("memabrad_admin_commands_total", command="evaluate_now", result="applied") == 1
    assert m.value("memabrad_rollbacks_total", router_id="default", trigger="admin") == 1


def wait_rejection(reader: EventReader, request_id: str, timeout: float = 30.0) -> dict[str, Any]:
    found = reader.wait_events(
        lambda es: [e for e in es if e["type"] == "admin.rejected" and e.get("request_id") == request_id],
        timeout, f"admin.rejected for {request_id}")
    return found[0]
