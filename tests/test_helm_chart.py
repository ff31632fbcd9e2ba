"""The Helm chart (scripts/helm/codex-lb) renders into manifests that run codex-lb as replicas on one
PostgreSQL: probes, a preStop drain, the database URL and the shared key from Secrets, both ports,
a ServiceMonitor when asked. Rendered with `helm template` when helm is installed, else with
tests/support/helm_render.py (which refuses template features it does not know)."""

from __future__ import annotations

import base64
import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server.runtime.secretbox import load_or_create_key
from tests.support.helm_render import Fail, Renderer

CHART = Path(__file__).resolve().parents[1] / "scripts" / "helm" / "codex-lb"
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())
DATABASE = {"database": {"url": "postgresql://codexlb:secret@db.internal:5432/codexlb"}}
MULTI = {
    "replicaCount": 4,
    "workers": 4,
    "database": {"existingSecret": "codex-lb-db", "key": "url"},
    "encryptionKey": {"existingSecret": "codex-lb-key"},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "extraEnv": {"CODEX_LB_LOG_FORMAT": "json"},
    "drainSeconds": 120,
}


def merged(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def render(extra: dict) -> list[dict]:
    values = merged(DEFAULTS, extra)
    documents = Renderer(CHART, values).documents()
    helm = shutil.which("helm")
    if helm:  # the real thing agrees on what is rendered
        args = [helm, "template", "demo", str(CHART), "-f", "-"]
        out = subprocess.run(args, input=yaml.safe_dump(values), capture_output=True, text=True, check=True)
        real = [d for d in yaml.safe_load_all(out.stdout) if d]
        assert sorted((d["kind"], d["metadata"]["name"]) for d in real) == sorted(
            (d["kind"], d["metadata"]["name"]) for d in documents
        )
    return documents


def only(documents: list[dict], kind: str) -> dict:
    [document] = [d for d in documents if d["kind"] == kind]
    return document


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_without_a_database_the_chart_says_what_to_set():
    with pytest.raises(Fail, match="database.url"):
        Renderer(CHART, DEFAULTS).render()


def test_default_values_run_two_replicas_with_probes_drain_and_secrets():
    documents = render(DATABASE)
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert {p["containerPort"] for p in container["ports"]} == {2455, 1455}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["lifecycle"]["preStop"]["exec"]["command"][-1].startswith("sleep")
    env = env_of(container)
    assert env["CODEX_LB_DATABASE_URL"]["secretKeyRef"]["name"] == "demo-codex-lb-database"
    assert env["CODEX_LB_ENCRYPTION_KEY_FILE"] == "/etc/codex-lb/key/encryption.key"
    assert int(env["CODEX_LB_SHUTDOWN_DRAIN_SECONDS"]) < pod["terminationGracePeriodSeconds"]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    secrets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Secret"}
    assert secrets["demo-codex-lb-database"]["stringData"]["database-url"] == DATABASE["database"]["url"]
    assert secrets["demo-codex-lb-key"]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    service = only(documents, "Service")
    assert {p["port"] for p in service["spec"]["ports"]} == {2455, 1455}
    assert only(documents, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert not [d for d in documents if d["kind"] == "ServiceMonitor"]


def test_the_generated_key_is_one_the_server_accepts(tmp_path):
    documents = render(DATABASE)
    [key_secret] = [d for d in documents if d["metadata"]["name"] == "demo-codex-lb-key"]
    key_file = tmp_path / "encryption.key"
    key_file.write_bytes(base64.b64decode(key_secret["data"]["encryption.key"]))
    assert len(load_or_create_key(key_file)) == 32


def test_multi_replica_values_use_existing_secrets_and_a_service_monitor():
    documents = render(MULTI)
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    assert env["CODEX_LB_DATABASE_URL"]["secretKeyRef"] == {"name": "codex-lb-db", "key": "url"}
    assert env["CODEX_LB_WORKERS"] == "4" and env["CODEX_LB_LOG_FORMAT"] == "json"
    assert pod["terminationGracePeriodSeconds"] > 120
    [volume] = [v for v in pod["volumes"] if v["name"] == "key"]
    assert volume["secret"]["secretName"] == "codex-lb-key"
    names = {d["metadata"]["name"] for d in documents if d["kind"] == "Secret"}
    assert names == {"demo-codex-lb-metrics"}  # the others come from the operator's Secrets
    monitor = only(documents, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["bearerTokenSecret"]["name"] == "demo-codex-lb-metrics"


def test_one_replica_has_no_disruption_budget():
    assert not [d for d in render({**DATABASE, "replicaCount": 1}) if d["kind"] == "PodDisruptionBudget"]
