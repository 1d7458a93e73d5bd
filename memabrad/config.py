"""Configuration: pydantic models, YAML file plus ``MEMABRAD_<SECTION>__<KEY>`` overrides.

Every key has a default here and is documented in the repository's ``config.yaml``.
Unknown keys and bad values raise :class:`ConfigError` naming the key, so a typo
stops start-up instead of silently running with a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "MEMABRAD_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TopicsConfig(_Section):
    trajectories: str = "memabra.trajectories"
    router_events: str = "memabra.router.events"
    admin: str = "memabra.admin"
    dead_letter: str = "memabra.trajectories.dlq"


class KafkaConfig(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "memabrad"
    client_id: str = "memabrad"
    topics: TopicsConfig = Field(default_factory=TopicsConfig)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username_env: str | None = None
    sasl_password_env: str | None = None
    max_message_bytes: int = Field(default=1_048_576, gt=0)
    fetch_max_records: int = Field(default=2000, gt=0)
    fetch_max_wait_ms: int = Field(default=50, gt=0, le=30_000)
    """How long the broker may hold a fetch that finds no new records. It bounds how late a trajectory is
    learned when traffic is light: with aiokafka's default (500 ms) the embedded broker held fetches that
    long with records arriving (produce-to-learned p50 / p99 at 1,000/s offered: 181 / 484 ms, against
    27 / 94 ms at 50 ms); an idle daemon then fetches 20 times a second."""
    session_timeout_ms: int = Field(default=10_000, gt=0)
    heartbeat_interval_ms: int = Field(default=3_000, gt=0)


class StoreConfig(_Section):
    base_dir: str = "artifacts"


class PortfolioMemberConfig(_Section):
    """A challenger learning beside the main one (``learning/portfolio.py``); unset fields take the main
    challenger's value, and a member at the main learning rate shares the main model."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$")
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    pessimism: float | None = Field(default=None, ge=0)
    guardrail_prices: bool = False  # rank with learned prices on predicted latency and errors (guardrail_prices.py)


class RouterConfig(_Section):
    hash_bits: int = Field(default=18, ge=8, le=24)
    learning_rate: float = Field(default=0.5, gt=0, le=1)
    pessimism: float = Field(default=1.0, ge=0)
    l2: float = Field(default=0.0, ge=0)
    max_importance_weight: float = Field(default=1.0, ge=1)
    shared_context: bool = True  # routes share a contextual part learned from every trajectory
    text_groups: bool = True  # tasks without a task_type are grouped by near-identical texts
    serving_epsilon: float = Field(default=0.2, ge=0, le=1)
    portfolio: list[PortfolioMemberConfig] = Field(
        default_factory=lambda: [PortfolioMemberConfig(name="careful", pessimism=2.0, guardrail_prices=True)],
        max_length=4)

    @field_validator("portfolio")
    @classmethod
    def _distinct_members(cls, v: list[PortfolioMemberConfig]) -> list[PortfolioMemberConfig]:
        names = [m.name for m in v]
        if "main" in names or len(set(names)) != len(names):
            raise ValueError("member names must be distinct and not 'main' (the main challenger)")
        return v


class CaseIndexConfig(_Section):
    enabled: bool = True
    capacity: int = Field(default=20_000, gt=0)
    similarity_threshold: float = Field(default=0.9, gt=0, le=1)


class EvaluationConfig(_Section):
    min_new_trajectories: int = Field(default=1000, gt=0)
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    window_size: int = Field(default=1000, gt=0)
    learn_held_out: bool = True
    estimator: Literal["auto", "dr", "ips", "snips"] = "auto"
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    suite_path: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    min_effective_sample_size: float = Field(default=50.0, ge=0)
    max_importance_weight: float = Field(default=50.0, ge=1)
    trajectories_per_weight: float = Field(default=100.0, ge=0)
    method: Literal["progressive", "holdout"] = "progressive"
    target_n: int = Field(default=5000, gt=0)


class SliceGateConfig(_Section):
    enabled: bool = False
    min_tasks: int = Field(default=100, gt=0)
    max_regression: float = Field(default=0.05, ge=0)


class PromotionConfig(_Section):
    min_reward_delta: float = 0.01
    max_error_rate_increase: float = 0.02
    max_latency_increase_ms: float = 250.0
    required_task_count: int = Field(default=200, ge=0)
    dry_run: bool = False
    mode: Literal["statistical", "point"] = "statistical"
    slice_gate: SliceGateConfig = Field(default_factory=SliceGateConfig)


class GuardConfig(_Section):
    enabled: bool = True
    dry_run: bool = False
    min_trajectories: int = Field(default=500, gt=0)
    reward_margin: float = Field(default=0.05, ge=0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class AdminConfig(_Section):
    hmac_key_env: str | None = None
    max_age_s: float = Field(default=300.0, gt=0)


class HttpConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(default=9464, ge=0, le=65535)


class CheckpointConfig(_Section):
    interval_s: float = Field(default=30.0, gt=0)
    every_n: int = Field(default=100_000, gt=0)
    generations: int = Field(default=3, ge=2)
    dedupe_capacity: int = Field(default=2_000_000, gt=0)


class LoggingConfig(_Section):
    format: Literal["json", "text"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(_Section):
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    case_index: CaseIndexConfig = Field(default_factory=CaseIndexConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turn ``MEMABRAD_KAFKA__TOPICS__ADMIN=x`` into ``{"kafka": {"topics": {"admin": "x"}}}``.

    Values are parsed as YAML scalars so numbers and booleans keep their type.
    """
    out: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if any(not p for p in path):
            raise ConfigError(f"environment variable {name}: empty key segment")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)):
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name}: conflicts with another override")
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown configuration key '{key}'"
    return f"bad value for configuration key '{key}': {first['msg']}"


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a plain mapping; raises ConfigError naming the first bad key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load YAML (if given) and apply environment overrides.

    >>> load_config(None, {"MEMABRAD_HTTP__PORT": "9999"}).http.port
    9999
    >>> load_config(None, {"MEMABRAD_HTTP__PORTT": "1"})
    Traceback (most recent call last):
    ...
    memabrad.config.ConfigError: unknown configuration key 'http.portt'
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read config file {p}: {err.strerror or err}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {p} is not valid YAML: {err}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping of sections")
        data = loaded
    env = dict(os.environ) if environ is None else environ
    data = _merge(data, _env_overrides(env))
    return config_from_dict(data)


def default_config_path() -> Path | None:
    """The repository's config.yaml when running from a checkout, else None (built-in defaults)."""
    candidate = Path.cwd() / "config.yaml"
    return candidate if candidate.is_file() else None
