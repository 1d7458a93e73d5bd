"""While the daemon ingests a repetitive help-desk backlog, /healthz answers every probe, and quickly.

The help-desk workload (short near-duplicate texts from 24 templates) is the worst case for work
that grows with similar history; before the fix a probe of this kind waited up to 19 s behind it.
The backlog is produced before the daemon starts, so the daemon is busy from its first poll; the
probes run until /status accounts for every produced trajectory (polled with the deadline-bounded
helper), each probe with its own timeout.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka_harness import DaemonFactory, DaemonProcess, KafkaIO, Producer, Topics
from polling import wait_until

from memabrad.sim.helpdesk import HelpdeskWorkload

pytestmark = pytest.mark.e2e

N = 30_000
PROBE_TIMEOUT_S = 5.0  # one probe; a slower answer is a failure in itself (see MAX_S)
PROBE_PAUSE_S = 0.02  # between probes: the polling interval of the wait, not a synchronisation
STATUS_EVERY_S = 0.25  # /status (the end condition) is read at most this often
INGEST_TIMEOUT_S = 240.0
P99_S = 0.5  # the target is 100 ms; CI machines are noisy. Before the fix: max 19 s.
MAX_S = 1.0
MIN_PROBES = 20


def _accounted(status: dict[str, Any]) -> int:
    return sum(r["trajectories_learned"] + r["duplicates"] + r["invalid"] for r in status["routers"].values())


def _pctl(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]


class HealthProbe:
    """One /healthz GET per call, then (at most every STATUS_EVERY_S) /status: done once all are accounted."""

    def __init__(self, daemon: DaemonProcess, expected: int) -> None:
        self.daemon = daemon
        self.expected = expected
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.accounted_seen: list[int] = []
        self._status_at = 0.0

    def summary(self) -> str:
        lat = self.latencies
        if not lat:
            return "no probes"
        return (f"{len(lat)} probes, p50 {_pctl(lat, 0.5) * 1000:.1f} ms, p99 {_pctl(lat, 0.99) * 1000:.1f} ms, "
                f"max {max(lat) * 1000:.1f} ms, {len(self.failures)} not answered; accounted over time "
                f"{self.accounted_seen[:3]}...{self.accounted_seen[-3:]}")

    def __call__(self) -> dict[str, Any] | None:
        started = time.perf_counter()
        try:
            code, body = self.daemon.http_get("/healthz", timeout=PROBE_TIMEOUT_S)
            if code != 200:
                self.failures.append(f"HTTP {code}: {body[:80]!r}")
        except OSError as err:  # a timeout or a refused connection: not answered
            self.failures.append(repr(err))
        self.latencies.append(time.perf_counter() - started)
        if time.monotonic() - self._status_at < STATUS_EVERY_S:
            return None
        self._status_at = time.monotonic()
        try:
            status = self.daemon.status()
        except OSError:
            return None  # /status slow or refused: not yet (the /healthz probes judge responsiveness)
        self.accounted_seen.append(_accounted(status))
        return status if self.accounted_seen[-1] >= self.expected else None


def test_healthz_answers_quickly_while_ingesting_helpdesk_backlog(kafka: KafkaIO, daemons: DaemonFactory,
                                                                  producer: Producer) -> None:
    topics = Topics.unique("responsive")
    kafka.create_topics(topics)
    rows = HelpdeskWorkload(seed=7).generate(N)
    producer.send_trajectories(topics.trajectories, rows, timeout=180)

    d = daemons.new("responsive", topics).wait_ready()
    probe = HealthProbe(d, N)
    try:
        status = wait_until(probe, INGEST_TIMEOUT_S, f"/status to account for {N} trajectories",
                            interval=PROBE_PAUSE_S)
    except AssertionError as err:
        raise AssertionError(f"{err}; {probe.summary()}") from None

    lat = probe.latencies
    summary = probe.summary()
    print(summary)
    assert probe.accounted_seen[0] < N, f"the backlog was consumed before the first probe: {summary}"
    assert len(lat) >= MIN_PROBES, f"too few probes during ingest: {summary}"
    assert not probe.failures, f"{len(probe.failures)} probes not answered with 200: {probe.failures[:5]}; {summary}"
    assert _pctl(lat, 0.99) < P99_S, summary
    assert max(lat) < MAX_S, summary

    router = status["routers"]["helpdesk"]
    assert _accounted(status) == N
    assert (router["trajectories_learned"], router["duplicates"], router["invalid"]) == (N, 0, 0)
