"""deploy/k8s: every manifest is valid against the Kubernetes API (strict schemas), and the
pieces agree with each other and with the app: the settings the pod ends up with load,
the port, data dir and probe paths are the worker's own, selectors select the pods."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from connectors import registry
from sync_worker import cli
from sync_worker.config import Settings, SettingsError, load_settings
from sync_worker.metrics import Metrics
from sync_worker.web.health import create_health_app
from tests.unit.deploy_support import (
    DEPLOY_DIR,
    drain_bound_s,
    health_app,
    parse_stockcast,
    route_paths,
)

K8S_DIR = DEPLOY_DIR / "k8s"
NOT_KUSTOMIZED = {
    "secret.example.yaml": "placeholders that would overwrite the real Secret",
    "servicemonitor.yaml": "needs the Prometheus Operator's CRDs",
}
CUSTOM_RESOURCES = {"servicemonitor.yaml"}  # no bundled schema: checked structurally
MANIFEST_FILES = sorted(
    path.name for path in K8S_DIR.glob("*.yaml") if path.name != "kustomization.yaml"
)
# 1.30: the oldest release with the preStop sleep action on by default.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
APP_LABEL = {"app.kubernetes.io/name": "stockcast"}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Manifests:
    by_file: dict[str, list[Manifest]]

    @classmethod
    def read(cls) -> Manifests:
        return cls(
            {
                name: [
                    doc
                    for doc in yaml.safe_load_all((K8S_DIR / name).read_text(encoding="utf-8"))
                    if doc
                ]
                for name in MANIFEST_FILES
            }
        )

    def __iter__(self) -> Iterator[Manifest]:
        return (doc for docs in self.by_file.values() for doc in docs)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [doc for doc in self if doc["kind"] == kind]

    def one(self, kind: str) -> Manifest:
        (found,) = self.of_kind(kind)
        return found


@pytest.fixture
def k8s() -> Manifests:
    return Manifests.read()


def pod_spec(k8s: Manifests) -> Manifest:
    spec: Manifest = k8s.one("StatefulSet")["spec"]["template"]["spec"]
    return spec


def worker_container(k8s: Manifests) -> Manifest:
    container: Manifest
    (container,) = pod_spec(k8s)["containers"]
    return container


def pod_env(k8s: Manifests) -> dict[str, str]:
    return {var["name"]: var["value"] for var in worker_container(k8s).get("env", ())}


def settings_toml(k8s: Manifests) -> str:
    text: str = k8s.one("Secret")["stringData"]["stockcast.toml"]
    return text


def pod_settings(k8s: Manifests) -> Settings:
    """The settings a pod ends up with: the example Secret's file, then the pod's env."""
    return load_settings(settings_toml(k8s), pod_env(k8s))


def port_named(container: Manifest, name: str) -> Manifest:
    port: Manifest
    (port,) = [port for port in container["ports"] if port["name"] == name]
    return port


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", sorted(set(MANIFEST_FILES) - CUSTOM_RESOURCES))
def test_every_manifest_is_valid_for_the_kubernetes_api(
    k8s: Manifests, name: str, version: str
) -> None:
    for doc in k8s.by_file[name]:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:  # its repr holds the schema
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{name} ({version}): {where}: {error.message}", pytrace=False)


def test_kustomization_lists_every_manifest_but_the_ones_applied_by_hand() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))

    assert sorted(kustomization["resources"]) == sorted(set(MANIFEST_FILES) - NOT_KUSTOMIZED.keys())
    assert "namespace" not in kustomization


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_builds_the_base_with_your_image() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(K8S_DIR)], capture_output=True, text=True, check=True
    )
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    (statefulset,) = [doc for doc in docs if doc["kind"] == "StatefulSet"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]

    assert sorted(doc["kind"] for doc in docs) == [
        "PodDisruptionBudget",
        "Service",
        "Service",
        "StatefulSet",
    ]
    assert container["image"] != "stockcast"  # kustomization's images: applied


def test_every_object_carries_the_app_label(k8s: Manifests) -> None:
    claims = k8s.one("StatefulSet")["spec"]["volumeClaimTemplates"]

    for doc in [*k8s, *claims]:
        assert selects(APP_LABEL, doc["metadata"]["labels"]), doc["metadata"]["name"]


def test_the_settings_the_pod_ends_up_with_load(k8s: Manifests) -> None:
    settings = pod_settings(k8s)

    assert settings.channels, "the example shows where channel secrets go"
    assert k8s.one("StatefulSet")["spec"]["replicas"] <= settings.kafka.partitions


def test_the_example_secret_holds_placeholders_only(k8s: Manifests) -> None:
    settings = pod_settings(k8s)
    secrets = [
        *(secret for channel in settings.channels for secret in channel.secrets.values()),
        *(target.url for target in settings.alerts.targets),
        *([settings.kafka.sasl_password] if settings.kafka.sasl_password else []),
    ]

    assert secrets
    assert all("<" in secret.get_secret_value() for secret in secrets)


async def test_the_example_channels_build_their_connectors(k8s: Manifests) -> None:
    for channel in pod_settings(k8s).channels:
        options = dict(channel.options)
        options.update({key: value.get_secret_value() for key, value in channel.secrets.items()})

        connector = registry.load(channel.connector).from_options(options, channel.listings)

        await connector.close()


def test_the_pod_runs_the_worker_on_the_mounted_settings(k8s: Manifests) -> None:
    container = worker_container(k8s)
    (settings_mount,) = [m for m in container["volumeMounts"] if m["name"] == "settings"]
    (volume,) = [v for v in pod_spec(k8s)["volumes"] if v["name"] == "settings"]

    command, options = parse_stockcast([*container["command"], *container.get("args", ())])

    assert command is cli.run
    assert options["config"] == Path(settings_mount["mountPath"]) / "stockcast.toml"
    assert volume["secret"]["secretName"] == k8s.one("Secret")["metadata"]["name"]
    assert "stockcast.toml" in k8s.one("Secret")["stringData"]


def test_the_container_port_is_the_web_port_the_worker_binds_beyond_loopback(
    k8s: Manifests,
) -> None:
    settings = pod_settings(k8s)

    assert port_named(worker_container(k8s), "http")["containerPort"] == settings.worker.web_port
    assert settings.worker.web_host in {"0.0.0.0", "::"}


def test_the_data_volume_is_the_data_dir_and_the_only_writable_place(k8s: Manifests) -> None:
    container = worker_container(k8s)
    (claim,) = k8s.one("StatefulSet")["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}

    assert Path(mounts[claim["metadata"]["name"]]["mountPath"]) == pod_settings(k8s).worker.data_dir
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert mounts["settings"]["readOnly"] is True


def test_service_links_are_off_because_they_would_break_the_settings(k8s: Manifests) -> None:
    # What kubelet adds for each Service with a cluster IP when service links are on.
    links = {}
    for service in k8s.of_kind("Service"):
        if service["spec"].get("clusterIP") == "None":
            continue
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        for port in service["spec"]["ports"]:
            links[f"{prefix}_SERVICE_HOST"] = "10.96.0.10"
            links[f"{prefix}_SERVICE_PORT_{port['name'].upper()}"] = str(port["port"])
            links[f"{prefix}_PORT_{port['port']}_TCP_ADDR"] = "10.96.0.10"

    with pytest.raises(SettingsError, match="not a setting"):
        load_settings(settings_toml(k8s), pod_env(k8s) | links)
    assert pod_spec(k8s)["enableServiceLinks"] is False


def test_probes_ask_routes_of_the_worker_on_its_http_port(k8s: Manifests) -> None:
    container = worker_container(k8s)
    routes = route_paths(health_app())

    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        request = container[probe]["httpGet"]
        assert request["path"] in routes, probe
        assert request["port"] == "http", probe


MakeClient = Callable[[Callable[[], dict[str, object]]], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(status: Callable[[], dict[str, object]]) -> TestClient[Any, Any]:
        client = TestClient(TestServer(create_health_app(Metrics.create().registry, status)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.mark.parametrize(
    ("report", "ready"),
    [
        ({"ok": False, "rebalancing": True, "recovered": True}, False),
        ({"ok": False, "rebalancing": False, "recovered": False}, False),
        ({"ok": True, "rebalancing": False, "recovered": True}, True),
    ],
)
async def test_a_rebalancing_worker_is_unready_but_alive(
    k8s: Manifests, make_client: MakeClient, report: dict[str, object], ready: bool
) -> None:
    container = worker_container(k8s)
    client = await make_client(lambda: report)

    readiness = await client.get(container["readinessProbe"]["httpGet"]["path"])
    liveness = await client.get(container["livenessProbe"]["httpGet"]["path"])
    startup = await client.get(container["startupProbe"]["httpGet"]["path"])

    assert (readiness.status == 200) is ready
    assert (liveness.status, startup.status) == (200, 200)


def test_the_pod_stops_after_its_http_server_has_drained(k8s: Manifests) -> None:
    spec = pod_spec(k8s)
    pre_stop_s = worker_container(k8s)["lifecycle"]["preStop"]["sleep"]["seconds"]

    assert spec["terminationGracePeriodSeconds"] > pre_stop_s + drain_bound_s()


def test_the_services_and_the_budget_select_the_worker_pods(k8s: Manifests) -> None:
    statefulset = k8s.one("StatefulSet")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    port_names = {port["name"] for port in worker_container(k8s)["ports"]}
    services = {service["metadata"]["name"]: service for service in k8s.of_kind("Service")}

    assert selects(statefulset["spec"]["selector"]["matchLabels"], pod_labels)
    assert selects(k8s.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    for service in services.values():
        assert selects(service["spec"]["selector"], pod_labels)
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    assert services[statefulset["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    for spread in pod_spec(k8s)["topologySpreadConstraints"]:
        assert selects(spread["labelSelector"]["matchLabels"], pod_labels)


def test_the_servicemonitor_scrapes_the_metrics_of_the_web_service_only(k8s: Manifests) -> None:
    monitor = k8s.one("ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]

    scraped = [s for s in k8s.of_kind("Service") if selects(wanted, s["metadata"]["labels"])]

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert len(scraped) == 1, "a second Service would scrape every worker twice"
    (service,) = scraped
    assert service["spec"].get("clusterIP") != "None"
    port_names = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
        assert endpoint["path"] in route_paths(health_app())


def test_the_pod_runs_unprivileged(k8s: Manifests) -> None:
    spec = pod_spec(k8s)
    container = worker_container(k8s)["securityContext"]

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]


def test_the_workers_are_spread_and_sized_for_two_core_nodes(k8s: Manifests) -> None:
    resources = worker_container(k8s)["resources"]

    assert set(resources) == {"requests", "limits"}
    assert cpu_cores(resources["requests"]["cpu"]) <= cpu_cores(resources["limits"]["cpu"]) < 2
    assert "memory" in resources["requests"]
    assert "memory" in resources["limits"]


def cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
