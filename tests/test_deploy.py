"""What the deployment files promise, checked against each other and the real app.

Schemas (.ci/manifests) say each object is well formed; these say the parts fit: selectors
select the pods, probes and the Prometheus target name ports and paths the service answers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from attnserve.service.settings import Settings
from tests.conftest import REPO_ROOT

KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    """The kustomize base rendered by `kubectl kustomize` (the dev extra's kubectl), by kind."""
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(REPO_ROOT / "deploy/k8s/base")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    objects = {item["kind"]: item for item in yaml.safe_load_all(done.stdout)}
    assert set(objects) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    return objects


def _probes(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    kinds = ("startupProbe", "livenessProbe", "readinessProbe")
    return {kind: container[kind]["httpGet"] for kind in kinds if kind in container}


def _answers_200(client: TestClient, path: str) -> bool:
    return client.get(path).status_code == 200


def test_selectors_and_the_autoscaler_find_the_deployments_pods(
    rendered: dict[str, dict[str, Any]],
) -> None:
    deployment = rendered["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        rendered["Service"]["spec"]["selector"],
        rendered["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ]

    for selector in selectors:
        assert selector and selector.items() <= pod_labels.items()
    target = rendered["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_deployments_probes_and_ports_are_the_services(
    rendered: dict[str, dict[str, Any]], client: TestClient
) -> None:
    pod = rendered["Deployment"]["spec"]["template"]
    [container] = pod["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert ports == {"http": int(env["ATTNSERVE_PORT"]), "grpc": int(env["ATTNSERVE_GRPC_PORT"])}
    assert _settings(env).grpc_port == ports["grpc"]
    service_ports = rendered["Service"]["spec"]["ports"]
    assert {port["name"]: port["targetPort"] for port in service_ports} == {
        "http": "http",
        "grpc": "grpc",
    }
    probes = _probes(container)
    assert set(probes) == {"startupProbe", "livenessProbe", "readinessProbe"}
    assert {probe["port"] for probe in probes.values()} == {"http"}
    assert probes["readinessProbe"]["path"] == "/readyz"
    annotations = pod["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    for path in [probe["path"] for probe in probes.values()] + [annotations["prometheus.io/path"]]:
        assert _answers_200(client, path), path
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_inference_services_container_fits_the_image(client: TestClient) -> None:
    service = yaml.safe_load((REPO_ROOT / "deploy/kserve/inferenceservice.yaml").read_text())
    [container] = service["spec"]["predictor"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}

    assert [port["containerPort"] for port in container["ports"]] == [int(env["ATTNSERVE_PORT"])]
    for probe in _probes(container).values():
        assert probe["port"] == int(env["ATTNSERVE_PORT"])
        assert _answers_200(client, probe["path"]), probe["path"]


def test_the_grpc_inference_service_serves_grpc_on_its_one_port() -> None:
    path = REPO_ROOT / "deploy/kserve/inferenceservice-grpc.yaml"
    [container] = yaml.safe_load(path.read_text())["spec"]["predictor"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    [port] = container["ports"]

    # Knative takes HTTP/2 (gRPC) on a port named h2c.
    assert (port["name"], port["containerPort"]) == ("h2c", _settings(env).grpc_port)
    for kind in ("readinessProbe", "livenessProbe"):
        assert container[kind]["tcpSocket"]["port"] == port["containerPort"]


def test_compose_publishes_the_grpc_port_it_sets() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())

    for name in ("attnserve", "attnserve-gpu"):
        service = compose["services"][name]
        grpc_port = _settings(service["environment"]).grpc_port
        published = [mapping.rsplit(":", 1)[1] for mapping in service["ports"]]
        assert published == [service["environment"]["ATTNSERVE_PORT"], str(grpc_port)], name


def _settings(env: dict[str, str]) -> Settings:
    """The settings the service would read from these ATTNSERVE_* variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()


def test_compose_monitoring_scrapes_the_services_metrics(client: TestClient) -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    [config_mount] = [v for v in prometheus["volumes"] if v.endswith("prometheus.yml:ro")]
    config = yaml.safe_load((REPO_ROOT / config_mount.split(":")[0]).read_text())
    [job] = config["scrape_configs"]
    [target] = [t for group in job["static_configs"] for t in group["targets"]]
    host, port = target.split(":")

    assert prometheus["profiles"] == ["monitoring"]
    assert host in compose["services"] and host in prometheus["depends_on"]
    assert port == compose["services"][host]["environment"]["ATTNSERVE_PORT"]
    assert _answers_200(client, job["metrics_path"])
