"""Prometheus metrics of the daemon (docs/contract.md §5), on a registry of its own."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

GATE_NAMES = ("reward_delta", "error_rate_delta", "latency_delta_ms", "task_count", "holdout_check")


class DaemonMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.trajectories = Counter(
            "memabrad_trajectories_total", "Trajectories consumed, by router and result.",
            ["router_id", "result"], registry=r)
        self.invalid = Counter(
            "memabrad_invalid_trajectories_total", "Invalid trajectories sent to the dead-letter topic, by reason.",
            ["reason"], registry=r)
        self.since_evaluation = Gauge(
            "memabrad_trajectories_since_evaluation", "New trajectories since the router's last evaluation.",
            ["router_id"], registry=r)
        self.evaluations = Counter(
            "memabrad_evaluations_total", "Evaluations, by outcome.", ["router_id", "outcome"], registry=r)
        self.gate_value = Gauge("memabrad_gate_value", "Last evaluation's gate value.", ["router_id", "gate"],
                                registry=r)
        self.gate_threshold = Gauge("memabrad_gate_threshold", "Gate threshold.", ["router_id", "gate"], registry=r)
        self.gate_passed = Gauge("memabrad_gate_passed", "1 if the gate passed at the last evaluation.",
                                 ["router_id", "gate"], registry=r)
        self.gate_bound = Gauge("memabrad_gate_bound",
                                "The confidence bound the gate compared with its threshold (reward: lower; "
                                "error rate, latency: upper).", ["router_id", "gate"], registry=r)
        self.evidence_trajectories = Gauge(
            "memabrad_evidence_trajectories",
            "Trajectories of progressive evidence behind the last evaluation (since the baseline was activated).",
            ["router_id"], registry=r)
        self.evidence_looks = Gauge(
            "memabrad_evidence_looks", "Looks at the progressive evidence since the baseline was activated.",
            ["router_id"], registry=r)
        self.evidence_alpha = Gauge(
            "memabrad_evidence_alpha",
            "Chance of a wrong promotion the confidence sequence allows over all looks on one baseline.",
            ["router_id"], registry=r)
        self.policy_reward = Gauge("memabrad_policy_reward", "Estimated reward at the last evaluation.",
                                   ["router_id", "role"], registry=r)
        self.rollbacks = Counter("memabrad_rollbacks_total", "Rollbacks, by trigger.", ["router_id", "trigger"],
                                 registry=r)
        self.active_router = Gauge("memabrad_active_router_info", "The active router version (value 1).",
                                   ["router_id", "version_id"], registry=r)
        self.admin_commands = Counter("memabrad_admin_commands_total", "Admin commands, by result.",
                                      ["command", "result"], registry=r)
        self.evaluation_duration = Histogram(
            "memabrad_evaluation_duration_seconds", "Wall time of one evaluation.", ["router_id"], registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.event_processing = Histogram(
            "memabrad_event_processing_seconds", "Processing time per trajectory (parse, dedupe, learn).",
            registry=r, buckets=(2e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2))
        self.record_age = Histogram(
            "memabrad_record_age_seconds", "Time from a record's Kafka timestamp to the end of its processing.",
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.loop_lag = Histogram(
            "memabrad_event_loop_lag_seconds", "How late the event loop's heartbeat woke up.",
            registry=r, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.consumer_lag = Gauge("memabrad_consumer_lag", "Records behind the partition's highwater.",
                                  ["topic", "partition"], registry=r)
        self.ready = Gauge("memabrad_ready", "1 while the daemon is ready (state loaded, partitions assigned).",
                           registry=r)
        self.checkpoints = Counter("memabrad_checkpoints_total", "Checkpoint generations, by result.", ["result"],
                                   registry=r)
        self.checkpoint_duration = Histogram("memabrad_checkpoint_duration_seconds",
                                             "Time to flush, write and commit one checkpoint.", registry=r)
        self.evaluation_timeouts = Counter("memabrad_evaluation_timeouts_total",
                                           "Evaluations abandoned after the timeout.",
                                           ["router_id"], registry=r)
        self.guard_trips = Counter("memabrad_guard_trips_total",
                                   "Post-promotion guard trips, by mode (rollback or dry_run).",
                                   ["router_id", "mode"], registry=r)
        self.offset_resets = Counter("memabrad_offset_resets_total",
                                     "Out-of-range positions handled, by partition and rule.",
                                     ["partition", "rule"], registry=r)
        self.offset_gap_records = Counter("memabrad_offset_gap_records_total",
                                          "Records deleted by retention before they were consumed.", ["partition"],
                                          registry=r)
        self.evaluation_failures = Counter("memabrad_evaluation_failures_total", "Evaluations that failed, by kind.",
                                           ["router_id", "kind"], registry=r)
        self._active: dict[str, str] = {}

    def set_active(self, router_id: str, version_id: str | None) -> None:
        old = self._active.get(router_id)
        if old == version_id:
            return
        if old is not None:
            self.active_router.remove(router_id, old)
        if version_id is not None:
            self.active_router.labels(router_id, version_id).set(1)
            self._active[router_id] = version_id
        else:
            self._active.pop(router_id, None)

    def forget_router(self, router_id: str) -> None:
        """Drop per-router gauges when the router moves to another instance."""
        self.set_active(router_id, None)
        with contextlib.suppress(KeyError):
            self.since_evaluation.remove(router_id)

    def render(self) -> bytes:
        return generate_latest(self.registry)
