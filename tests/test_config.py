"""Tests of configuration: documented defaults, environment overrides, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_helpers import clear_memabrad_env

from memabrad.cli.main import main
from memabrad.config import Config, ConfigError, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_memabrad_env(monkeypatch)


def test_defaults_equal_the_documented_config_yaml() -> None:
    documented = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    assert documented == Config().model_dump()  # every key is documented, with the built-in default
    assert load_config(ROOT / "config.yaml", {}) == Config() == load_config(None, {})


def test_contract_keys_have_the_contract_defaults() -> None:
    cfg = Config()
    assert cfg.kafka.topics.model_dump() == {"trajectories": "memabra.trajectories",
                                             "router_events": "memabra.router.events", "admin": "memabra.admin",
                                             "dead_letter": "memabra.trajectories.dlq"}
    assert (cfg.http.port, cfg.promotion.dry_run, cfg.admin.hmac_key_env) == (9464, False, None)


def test_environment_overrides_nested_keys_with_types() -> None:
    cfg = load_config(None, {
        "MEMABRAD_KAFKA__TOPICS__ADMIN": "my.admin",
        "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": "broker:9092",
        "MEMABRAD_HTTP__PORT": "9999",
        "MEMABRAD_PROMOTION__DRY_RUN": "true",
        "MEMABRAD_PROMOTION__MIN_REWARD_DELTA": "0.05",
        "MEMABRAD_PROMOTION__SLICE_GATE__MIN_TASKS": "7",
        "OTHER_VAR": "ignored",
        "MEMABRAD_NOSECTION": "ignored (no __)",
    })
    assert cfg.kafka.topics.admin == "my.admin"
    assert cfg.kafka.topics.trajectories == "memabra.trajectories"  # siblings keep their defaults
    assert cfg.kafka.bootstrap_servers == "broker:9092"
    assert cfg.http.port == 9999
    assert cfg.promotion.dry_run is True
    assert cfg.promotion.min_reward_delta == 0.05
    assert cfg.promotion.slice_gate.min_tasks == 7


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("http:\n  port: 1234\nkafka:\n  topics:\n    admin: from.file\n")
    cfg = load_config(path, {"MEMABRAD_KAFKA__TOPICS__ADMIN": "from.env"})
    assert (cfg.http.port, cfg.kafka.topics.admin) == (1234, "from.env")


@pytest.mark.parametrize(("environ", "key"), [
    ({"MEMABRAD_KAFKA__TOPICS__ADMINN": "x"}, "kafka.topics.adminn"),
    ({"MEMABRAD_HTTPS__PORT": "1"}, "https"),
])
def test_unknown_environment_key_names_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown configuration key '{key}'"):
        load_config(None, environ)


@pytest.mark.parametrize(("data", "key"), [
    ({"http": {"port": 70000}}, "http.port"),
    ({"promotion": {"mode": "fuzzy"}}, "promotion.mode"),
    ({"evaluation": {"holdout_fraction": 1.5}}, "evaluation.holdout_fraction"),
    ({"router": {"hash_bits": "many"}}, "router.hash_bits"),
    ({"promotion": {"slice_gate": {"min_tasks": 0}}}, "promotion.slice_gate.min_tasks"),
    ({"kafka": {"fetch_max_wait_ms": 0}}, "kafka.fetch_max_wait_ms"),
])
def test_bad_value_names_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"bad value for configuration key '{key}'"):
        config_from_dict(data)


def test_bad_value_from_environment_names_the_key() -> None:
    with pytest.raises(ConfigError, match="'http.port'"):
        load_config(None, {"MEMABRAD_HTTP__PORT": "not-a-port"})


def test_unknown_key_in_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("promotion:\n  min_reward_delt: 0.1\n")
    with pytest.raises(ConfigError, match="unknown configuration key 'promotion.min_reward_delt'"):
        load_config(path, {})


@pytest.mark.parametrize(("text", "fragment"), [
    ("- a\n- b\n", "must hold a mapping"),
    ("http: [unclosed\n", "not valid YAML"),
])
def test_malformed_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path, {})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", {})


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("# nothing\n")
    assert load_config(path, {}) == Config()


def test_status_with_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("promotion:\n  max_latency_increase_ms: fast\n")
    assert main(["status", "-c", str(bad), "--base-dir", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert "promotion.max_latency_increase_ms" in err
    bad.write_text("evaluation:\n  windw_size: 5\n")
    assert main(["status", "-c", str(bad), "--base-dir", str(tmp_path / "store")]) == 2
    assert "evaluation.windw_size" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_status_with_bad_environment_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMABRAD_STORE__BASEDIR", "x")
    assert main(["status", "--base-dir", str(tmp_path)]) == 2
    assert "store.basedir" in capsys.readouterr().err
