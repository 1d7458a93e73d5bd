"""TrajectoryProducer and its sync wrapper against the embedded broker: what arrives, what is refused, what fails."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from kafka_harness import read_topic

from memabrad.kafka.embedded import EmbeddedBroker
from memabrad.sdk import (
    DeliveryError,
    DeliveryFailure,
    InvalidTrajectory,
    ProducerFull,
    SyncTrajectoryProducer,
    TrajectoryProducer,
)
from memabrad.sim import Simulator
from memabrad.wire import parse_trajectory

pytestmark = pytest.mark.e2e


def _topic() -> str:
    return f"sdk.producer.{uuid.uuid4().hex[:8]}.trajectories"


def _rows(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rows = Simulator(seed=seed).generate(n)
    for i, row in enumerate(rows):
        row["router_id"] = ("r-a", "r-b")[i % 2]
        row["trajectory_id"] = f"{row['router_id']}-{seed}-{i}"
    return rows


async def test_valid_trajectories_arrive_keyed_by_router_and_invalid_ones_never_leave(
        broker: EmbeddedBroker) -> None:
    topic = _topic()
    rows = _rows(100)
    async with TrajectoryProducer(broker.bootstrap_servers, topic=topic, linger_ms=5,
                                  create_topic=True) as producer:
        ids = [await producer.send(row) for row in rows[:50]]
        with pytest.raises(InvalidTrajectory, match="decision.route"):
            await producer.send(dict(rows[0], trajectory_id="bad", decision={"route": "nowhere"}))
        ids += [await producer.send(row) for row in rows[50:]]
        await producer.flush(timeout=30)
        assert (producer.sent, producer.delivered, producer.failed, producer.in_flight) == (100, 100, 0, 0)
    assert ids == [r["trajectory_id"] for r in rows]
    records = await read_topic(broker.bootstrap_servers, topic, 100)
    got = [parse_trajectory(r.value) for r in records]
    assert [t.trajectory_id for t in got] == ids  # in order, and the invalid one (sent mid-way) is not there
    assert all(r.key == t.router_id.encode() for r, t in zip(records, got, strict=True))


async def test_delivery_failures_are_counted_called_back_and_raised_by_flush(broker: EmbeddedBroker) -> None:
    failures: list[DeliveryFailure] = []
    rows = _rows(3, seed=2)
    rows[1]["steps"] = [{"note": "x" * 4000}]  # bigger than this producer's max request size
    producer = TrajectoryProducer(broker.bootstrap_servers, topic=_topic(), on_error=failures.append,
                                  create_topic=True, producer_options={"max_request_size": 2048})
    await producer.start()
    try:
        for row in rows:
            await producer.send(row)
        with pytest.raises(DeliveryError) as err:
            await producer.flush(timeout=30)
        assert err.value.count == 1 and err.value.failures[0].trajectory_id == rows[1]["trajectory_id"]
        assert [f.trajectory_id for f in failures] == [rows[1]["trajectory_id"]]
        assert (producer.delivered, producer.failed) == (2, 1) and producer.last_error is not None
        await producer.send(_rows(1, seed=3)[0])
        await producer.flush(timeout=30)  # failures were reported once; the next flush is clean
    finally:
        await producer.stop()


async def test_in_flight_records_are_bounded(broker: EmbeddedBroker) -> None:
    rows = _rows(7, seed=4)
    async with TrajectoryProducer(broker.bootstrap_servers, topic=_topic(), max_in_flight=5,
                                  create_topic=True) as producer:
        for row in rows[:5]:
            producer.send_nowait(row)  # no await in between: nothing can have been acknowledged yet
        with pytest.raises(ProducerFull):
            producer.send_nowait(rows[5])
        await asyncio.wait_for(producer.send(rows[5]), 30)  # waits for room instead of raising
        await producer.send(rows[6])
        await producer.flush(timeout=30)
        assert producer.delivered == 7


async def test_sync_producer_sends_from_a_plain_thread(broker: EmbeddedBroker) -> None:
    topic = _topic()
    rows = _rows(200, seed=5)

    def app() -> SyncTrajectoryProducer:  # what a non-asyncio app does, on a thread without a loop
        with SyncTrajectoryProducer(broker.bootstrap_servers, topic=topic, linger_ms=5,
                                    create_topic=True) as producer:
            with pytest.raises(InvalidTrajectory):
                producer.send(dict(rows[0], occurred_at="not a time"))
            for row in rows:
                producer.send(row)
            producer.flush(timeout=30)
            assert (producer.sent, producer.delivered, producer.failed) == (200, 200, 0)
        return producer

    producer = await asyncio.to_thread(app)
    assert not producer.running
    assert "memabrad-sdk-producer" not in {t.name for t in threading.enumerate()}  # its loop thread has ended
    records = await read_topic(broker.bootstrap_servers, topic, 200)
    assert [parse_trajectory(r.value).trajectory_id for r in records] == [r["trajectory_id"] for r in rows]


async def test_sync_producer_reports_delivery_failures(broker: EmbeddedBroker) -> None:
    row = _rows(1, seed=6)[0]
    row["steps"] = [{"note": "x" * 4000}]

    def app() -> None:
        producer = SyncTrajectoryProducer(broker.bootstrap_servers, topic=_topic(), create_topic=True,
                                          producer_options={"max_request_size": 2048}).start()
        try:
            producer.send(row)
            with pytest.raises(DeliveryError):
                producer.flush(timeout=30)
            assert producer.failed == 1
        finally:
            producer.close()

    await asyncio.to_thread(app)
