"""``memabrad produce`` and ``memabrad admin`` against a real (embedded) Kafka-protocol broker.

Each test gets its own topic names, so tests share one broker without seeing each
other's messages. Nothing waits with ``time.sleep``: consumers poll until a condition
holds or a deadline passes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError
from aiokafka.structs import ConsumerRecord
from cli_helpers import clean_environ, clear_memabrad_env

from memabrad.cli.main import main
from memabrad.config import Config, load_config
from memabrad.kafka.client import partition_for_key
from memabrad.kafka.embedded import EmbeddedBroker, free_port
from memabrad.kafka.topics import ensure_topics, topic_partitions
from memabrad.sim import Simulator
from memabrad.wire import (
    AdminApplied,
    AdminRejected,
    event_to_bytes,
    make_event_id,
    parse_admin_command,
    verify_signature,
)

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
DEADLINE_S = 20.0


@dataclass
class Env:
    """The environment one test's CLI runs see: the broker plus topic names of its own."""

    bootstrap: str
    trajectories: str
    router_events: str
    admin: str
    vars: dict[str, str]

    def config(self) -> Config:
        return load_config(None, self.vars)


@pytest.fixture
def env(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    """Fresh topic names via ``MEMABRAD_*`` variables; cwd is a temp dir so no config.yaml interferes."""
    clear_memabrad_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    tag = uuid.uuid4().hex[:10]
    e = Env(broker.bootstrap_servers, f"traj-{tag}", f"events-{tag}", f"admin-{tag}", {})
    e.vars = {
        "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": e.bootstrap,
        "MEMABRAD_KAFKA__TOPICS__TRAJECTORIES": e.trajectories,
        "MEMABRAD_KAFKA__TOPICS__ROUTER_EVENTS": e.router_events,
        "MEMABRAD_KAFKA__TOPICS__ADMIN": e.admin,
        "MEMABRAD_KAFKA__TOPICS__DEAD_LETTER": f"dlq-{tag}",
    }
    for k, v in e.vars.items():
        monkeypatch.setenv(k, v)
    return e


# -- helpers ----------------------------------------------------------------------------


async def _list_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _consume(bootstrap: str, topic: str, expected: int, deadline_s: float = DEADLINE_S) -> list[ConsumerRecord]:
    """Every message of ``topic`` from the beginning, polling until ``expected`` arrived (or the deadline)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client._wait_on_metadata(topic)  # noqa: SLF001 - test helper
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord] = []
        deadline = time.monotonic() + deadline_s
        while len(out) < expected and time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(msgs)
        if out:  # the broker's high-water marks must agree: nothing beyond what we read
            assert sum(consumer.highwater(tp) or 0 for tp in tps) == len(out)
        return sorted(out, key=lambda m: (m.partition, m.offset))
    finally:
        await consumer.stop()


def consume(bootstrap: str, topic: str, expected: int) -> list[ConsumerRecord]:
    return asyncio.run(_consume(bootstrap, topic, expected))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> list[bytes]:
    """Lines with spaces after separators, so a re-encoding producer would be caught."""
    lines = [json.dumps(r).encode("utf-8") for r in rows]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


def two_router_rows(n: int) -> list[dict[str, Any]]:
    rows = Simulator(seed=1).generate(n)
    for i, row in enumerate(rows):
        if i % 2:
            row["router_id"] = "router-b"
    return rows


def run_cli(args: list[str], env_vars: dict[str, str], stdin: bytes | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PYTHON, "-m", "memabrad", *args], input=stdin, capture_output=True, timeout=120,
                          env=clean_environ(**env_vars),
                          cwd=cwd)


# -- topics -----------------------------------------------------------------------------


def test_ensure_topics_creates_missing_idempotently_and_concurrently(env: Env) -> None:
    cfg = env.config()

    async def scenario() -> tuple[int, int, set[str]]:
        await asyncio.gather(*(ensure_topics(cfg, partitions={"trajectories": 3}) for _ in range(3)))
        await ensure_topics(cfg, partitions={"trajectories": 5})  # existing topics are left alone
        with pytest.raises(UnknownTopicOrPartitionError):
            await topic_partitions(cfg, f"missing-{uuid.uuid4().hex}")
        return (await topic_partitions(cfg, env.trajectories), await topic_partitions(cfg, env.admin),
                await _list_topics(env.bootstrap))

    traj, admin, topics = asyncio.run(scenario())
    assert (traj, admin) == (3, 1)
    assert {env.trajectories, env.router_events, env.admin, cfg.kafka.topics.dead_letter} <= topics
    assert not any(t.startswith("missing-") for t in topics)  # the lookup did not auto-create it


# -- produce ----------------------------------------------------------------------------


def test_produce_jsonl_sends_original_bytes_keyed_by_router(env: Env, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    rows = two_router_rows(200)
    lines = write_jsonl(tmp_path / "t.jsonl", rows)

    assert main(["produce", str(tmp_path / "t.jsonl")]) == 0
    assert capsys.readouterr().out.strip() == f"sent 200 trajectories to {env.trajectories}"

    msgs = consume(env.bootstrap, env.trajectories, 200)
    assert len(msgs) == 200
    assert [m.value for m in msgs] == lines  # byte-identical, in file order (one partition)
    assert [m.key for m in msgs] == [r["router_id"].encode("utf-8") for r in rows]


def test_produce_partitions_by_router_key(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(ensure_topics(env.config(), partitions={"trajectories": 4}))
    rows = Simulator(seed=2).generate(120)
    for i, row in enumerate(rows):
        row["router_id"] = f"router-{i % 6}"
    write_jsonl(tmp_path / "t.jsonl", rows)

    assert main(["produce", str(tmp_path / "t.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"sent": 120, "topic": env.trajectories}

    msgs = consume(env.bootstrap, env.trajectories, 120)
    assert len(msgs) == 120
    for m in msgs:
        assert m.partition == partition_for_key(m.key.decode(), 4)
    for router in {r["router_id"] for r in rows}:  # per-router order is kept
        ids = [json.loads(m.value)["trajectory_id"] for m in msgs if m.key == router.encode()]
        assert ids == [r["trajectory_id"] for r in rows if r["router_id"] == router]


def test_produce_invalid_line_sends_nothing(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = Simulator(seed=3).generate(6)
    del rows[2]["trajectory_id"]
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines[4] = "{not json"
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")  # blank line 4 is skipped

    assert main(["produce", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: trajectory_id: required field is missing" in err
    assert f"{path}:6: invalid json" in err.lower()
    assert "2 invalid trajectories" in err and "nothing sent" in err
    topics = asyncio.run(_list_topics(env.bootstrap))
    if env.trajectories in topics:  # never created is the expected case; if it exists it must be empty
        assert consume(env.bootstrap, env.trajectories, 1) == []


def test_produce_json_array_reports_element_lines(env: Env, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rows = Simulator(seed=4).generate(3)
    path = tmp_path / "arr.json"
    path.write_text(json.dumps(rows, indent=2))
    assert main(["produce", str(path)]) == 0
    msgs = consume(env.bootstrap, env.trajectories, 3)
    assert [m.value for m in msgs] == [json.dumps(r, separators=(",", ":")).encode() for r in rows]

    rows[1]["decision"]["route"] = "not-a-candidate"
    path.write_text(json.dumps(rows, indent=2))
    expected_line = json.dumps(rows, indent=2).splitlines().index("  {", 2) + 1
    capsys.readouterr()
    assert main(["produce", str(path)]) == 2
    assert f"{path}:{expected_line}: decision" in capsys.readouterr().err


def test_produce_from_stdin(env: Env, tmp_path: Path) -> None:
    rows = Simulator(seed=5).generate(50)
    data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\r\n" for r in rows)
    proc = run_cli(["produce", "-"], env.vars, stdin=data, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == f"sent 50 trajectories to {env.trajectories}"
    msgs = consume(env.bootstrap, env.trajectories, 50)
    assert [m.value for m in msgs] == [json.dumps(r, separators=(",", ":")).encode() for r in rows]


def test_produce_unreachable_broker_fails_fast(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_jsonl(tmp_path / "t.jsonl", Simulator(seed=6).generate(3))
    dead = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    assert main(["produce", str(tmp_path / "t.jsonl"), "--bootstrap-servers", dead]) == 1
    assert time.monotonic() - started < 20
    assert f"cannot reach Kafka at {dead}" in capsys.readouterr().err


def test_produce_missing_file_is_usage_error(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["produce", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


# -- admin ------------------------------------------------------------------------------


def test_admin_rollback_publishes_signed_command(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MEMABRAD_ADMIN__HMAC_KEY_ENV", "MY_KEY")
    monkeypatch.setenv("MY_KEY", "secret")
    assert main(["admin", "rollback", "20261125-170000", "--router", "r1", "--reason", "reward dropped",
                 "--requested-by", "oncall@example.com", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)

    msgs = consume(env.bootstrap, env.admin, 1)
    assert len(msgs) == 1
    assert msgs[0].key == b"r1"
    sent = json.loads(msgs[0].value)
    assert sent == out["command"] and sent["request_id"] == out["request_id"]
    assert verify_signature(sent, "secret") and not verify_signature(sent, "other")
    cmd = parse_admin_command(msgs[0].value)
    assert (cmd.command, cmd.router_id, cmd.version_id, cmd.reason, cmd.requested_by) == (
        "rollback", "r1", "20261125-170000", "reward dropped", "oncall@example.com")
    uuid.UUID(cmd.request_id)  # a fresh uuid4 by default
    assert cmd.issued_at.tzinfo is not None and sent["issued_at"].endswith("Z")


def test_admin_unsigned_without_key_and_text_output(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "unpin-baseline", "--request-id", "req-7"]) == 0
    out = capsys.readouterr().out
    assert "req-7" in out
    sent = json.loads(consume(env.bootstrap, env.admin, 1)[0].value)
    assert sent["command"] == "unpin_baseline" and sent["router_id"] == "default" and "signature" not in sent


def test_admin_missing_key_variable_is_usage_error(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MEMABRAD_ADMIN__HMAC_KEY_ENV", "MEMABRAD_TEST_ABSENT_KEY")
    monkeypatch.delenv("MEMABRAD_TEST_ABSENT_KEY", raising=False)
    assert main(["admin", "pause"]) == 2
    assert "MEMABRAD_TEST_ABSENT_KEY" in capsys.readouterr().err
    assert env.admin not in asyncio.run(_list_topics(env.bootstrap))  # nothing was published


def test_admin_bad_arguments_are_usage_errors(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "pause", "--router", "bad router!"]) == 2
    assert "router_id" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["admin", "rollback"])  # VERSION is required
    assert exc.value.code == 2


async def _fake_daemon(cfg: Config, stop: asyncio.Event) -> None:
    """Answers each admin command: ``rollback`` is rejected, anything else applied.

    An unrelated answer (another request_id) goes first, so the CLI must match on request_id.
    """
    kw: dict[str, Any] = {"bootstrap_servers": cfg.kafka.bootstrap_servers}
    consumer = AIOKafkaConsumer(cfg.kafka.topics.admin, **kw, group_id=None, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(**kw, enable_idempotence=False, acks="all")
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                for msg in msgs:
                    cmd = parse_admin_command(msg.value)
                    common = {"router_id": cmd.router_id, "occurred_at": "2026-11-25T17:05:01Z",
                              "command": cmd.command}
                    noise = AdminApplied(event_id=make_event_id(cmd.router_id, "admin.applied", "other"),
                                         request_id="someone-else", **common)
                    if cmd.command == "rollback":
                        answer: AdminApplied | AdminRejected = AdminRejected(
                            event_id=make_event_id(cmd.router_id, "admin.rejected", cmd.request_id),
                            request_id=cmd.request_id, reason="unknown version", **common)
                    else:
                        answer = AdminApplied(event_id=make_event_id(cmd.router_id, "admin.applied", cmd.request_id),
                                              request_id=cmd.request_id, **common)
                    for ev in (noise, answer):
                        await producer.send_and_wait(cfg.kafka.topics.router_events, event_to_bytes(ev),
                                                     key=cmd.router_id.encode())
    finally:
        await consumer.stop()
        await producer.stop()


def _with_fake_daemon(env: Env, argv: list[str]) -> int:
    cfg = env.config()

    async def scenario() -> int:
        await ensure_topics(cfg)
        stop = asyncio.Event()
        daemon = asyncio.create_task(_fake_daemon(cfg, stop))
        try:
            return await asyncio.to_thread(main, argv)
        finally:
            stop.set()
            await daemon

    return asyncio.run(scenario())


def test_admin_wait_gets_applied_answer(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _with_fake_daemon(env, ["admin", "pause", "--router", "r1", "--request-id", "req-applied", "--wait",
                                 "--timeout", "20"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    answer = json.loads(out.out)
    assert answer["type"] == "admin.applied" and answer["request_id"] == "req-applied"
    assert answer["command"] == "pause_promotions" and answer["router_id"] == "r1"


def test_admin_wait_rejected_exits_1(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _with_fake_daemon(env, ["admin", "rollback", "v-unknown", "--request-id", "req-rejected", "--wait",
                                 "--timeout", "20"])
    out = capsys.readouterr()
    assert rc == 1
    assert json.loads(out.out)["type"] == "admin.rejected"
    assert "unknown version" in out.err


def test_admin_wait_without_answer_times_out(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["admin", "evaluate-now", "--wait", "--timeout", "2"]) == 1
    assert 2 <= time.monotonic() - started < 20
    assert "no answer within 2 s" in capsys.readouterr().err
