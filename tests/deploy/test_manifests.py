"""Kubernetes manifests under deploy/k8s: rendered, schema-validated, and checked for
the properties the deployment relies on.

Rendering uses `kubectl kustomize` when kubectl is on PATH; otherwise a small loader
(``load_kustomization``) that implements exactly the kustomization fields these
manifests use - resources, namespace, images, replicas and JSON6902 patches - and
refuses any other field instead of silently ignoring it. When kubectl is present,
a test checks that the loader renders the same objects as kubectl does.

Every rendered object is validated with kubernetes-validate against the Kubernetes
1.30 schemas in strict mode (unknown fields are errors).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"

K8S_VERSION = "1.30"
SECRET_NAME = "secrets-suite"
SECRET_KEYS = {"database-url", "vault-master-keys", "sm-client-secret"}
SECRET_ENV = {"DATABASE_URL", "VAULT_MASTER_KEYS", "SM_CLIENT_SECRET"}
INGRESS_NAMESPACE = "ingress-nginx"
RUN_AS_USER = 10001  # the uid of the user in deploy/docker/Dockerfile

# Deployment -> (container port, readiness path). The worker serves only its metrics.
SERVING = {
    "vault": (8081, "/vault/api/v1/status"),
    "secrets-manager": (8082, "/secrets-manager/api/v1/status"),
}
WORKER = "secrets-manager-worker"
PRODUCTION_REPLICAS = {"vault": 3, "secrets-manager": 3, WORKER: 1}
PRODUCTION_NAMESPACE = "secrets-suite"

EXPECTED_OBJECTS = {
    ("ConfigMap", "secrets-suite"),
    ("Deployment", "vault"),
    ("Deployment", "secrets-manager"),
    ("Deployment", WORKER),
    ("Service", "vault"),
    ("Service", "secrets-manager"),
    ("PodDisruptionBudget", "vault"),
    ("PodDisruptionBudget", "secrets-manager"),
    ("HorizontalPodAutoscaler", "vault"),
    ("HorizontalPodAutoscaler", "secrets-manager"),
    ("Job", "secrets-suite-migrate"),
    ("NetworkPolicy", "vault"),
    ("NetworkPolicy", "secrets-manager"),
    ("NetworkPolicy", "secrets-suite-no-ingress"),
}


# --------------------------------------------------------------------------- rendering

LOADER_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# Kinds the loader may put a namespace on (everything the manifests use is namespaced).
NAMESPACED_KINDS = {kind for kind, _ in EXPECTED_OBJECTS}


def _pod_templates(doc: dict):
    if doc["kind"] in ("Deployment", "Job"):
        yield doc["spec"]["template"]


def _containers(doc: dict):
    for template in _pod_templates(doc):
        yield from template["spec"].get("initContainers", [])
        yield from template["spec"]["containers"]


def _split_image(image: str) -> tuple[str, str | None]:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag, or the colon belonged to a registry port
        return image, None
    return name, tag


def _json_patch(doc: dict, operations: list[dict]) -> None:
    for op in operations:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key = int(last) if isinstance(target, list) and last != "-" else last
        if op["op"] == "replace":
            if isinstance(target, dict) and key not in target:
                raise KeyError(f"replace of missing {op['path']}")
            target[key] = op["value"]
        elif op["op"] == "add":
            if isinstance(target, list):
                target.insert(len(target) if key == "-" else key, op["value"])
            else:
                target[key] = op["value"]
        elif op["op"] == "remove":
            del target[key]
        else:
            raise NotImplementedError(f"JSON patch op {op['op']!r}")


def load_kustomization(directory: Path) -> list[dict]:
    """Render a kustomization with the few fields this repository uses, or refuse."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - LOADER_FIELDS
    if unsupported:
        raise NotImplementedError(f"{directory}: fallback loader does not implement {sorted(unsupported)}")

    docs: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            docs.extend(load_kustomization(path))
        else:
            # JSON round trip: plain, unshared objects even where the YAML used anchors.
            docs.extend(json.loads(json.dumps(d)) for d in yaml.safe_load_all(path.read_text()) if d)

    for patch in kustomization.get("patches", []):
        if set(patch) != {"target", "patch"} or set(patch["target"]) - {"kind", "name"}:
            raise NotImplementedError(f"patch form {patch!r}")
        targets = [d for d in docs
                   if d["kind"] == patch["target"].get("kind", d["kind"])
                   and d["metadata"]["name"] == patch["target"].get("name", d["metadata"]["name"])]
        if not targets:
            raise LookupError(f"patch target {patch['target']} matches nothing")
        for doc in targets:
            _json_patch(doc, yaml.safe_load(patch["patch"]))

    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] not in NAMESPACED_KINDS:
                raise NotImplementedError(f"namespace for kind {doc['kind']}")
            doc["metadata"]["namespace"] = kustomization["namespace"]

    for rule in kustomization.get("images", []):
        if set(rule) - {"name", "newName", "newTag"}:
            raise NotImplementedError(f"image rule {rule!r}")
        for doc in docs:
            for container in _containers(doc):
                name, tag = _split_image(container["image"])
                if name == rule["name"]:
                    name = rule.get("newName", name)
                    tag = str(rule["newTag"]) if "newTag" in rule else tag
                    container["image"] = f"{name}:{tag}" if tag else name

    for rule in kustomization.get("replicas", []):
        matched = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == rule["name"]]
        if not matched:
            raise LookupError(f"replicas for unknown Deployment {rule['name']}")
        for doc in matched:
            doc["spec"]["replicas"] = rule["count"]
    return docs


def kubectl_kustomize(directory: Path) -> list[dict]:
    result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


HAVE_KUBECTL = shutil.which("kubectl") is not None


def render(directory: Path) -> list[dict]:
    return kubectl_kustomize(directory) if HAVE_KUBECTL else load_kustomization(directory)


@pytest.fixture(scope="module")
def base_docs():
    return render(BASE)


@pytest.fixture(scope="module")
def production_docs():
    return render(PRODUCTION)


@pytest.fixture(scope="module", params=["base", "production"])
def docs(request):
    return request.getfixturevalue(f"{request.param}_docs")


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def walk(node, key: str):
    """Every value stored under `key` anywhere in a nested document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)


def selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label-selector semantics (matchLabels + matchExpressions)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# --------------------------------------------------------------------------- tests


def test_every_document_is_valid_kubernetes(docs):
    assert docs
    problems = []
    for doc in docs:
        ident = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{ident} is not valid Kubernetes {K8S_VERSION}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{ident}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_exactly_the_expected_objects_and_no_secret(docs):
    found = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(found) == len(set(found)), "duplicate objects"
    assert set(found) == EXPECTED_OBJECTS
    assert not [d for d in docs if d["kind"] == "Secret"], "the Secret must not be in the manifests"


def test_workloads_run_unprivileged_on_a_read_only_root(docs):
    workloads = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(workloads) == 4
    for doc in workloads:
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == RUN_AS_USER, name
        assert pod.get("automountServiceAccountToken") is False, name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in _containers(doc):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts and "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be an emptyDir"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{where}: {kind}"


def test_serving_deployments_have_probes_and_a_metrics_dir(docs):
    deployments = by_kind(docs, "Deployment")
    for name, (port, status_path) in SERVING.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert list(ports.values()) == [port], name

        readiness = container["readinessProbe"]["httpGet"]
        assert readiness["path"] == status_path, name
        assert ports.get(readiness["port"], readiness["port"]) == port, name

        # Liveness must survive a database outage: not the status endpoint.
        liveness = container["livenessProbe"]
        assert "tcpSocket" in liveness or liveness.get("httpGet", {}).get("path") != status_path, name
        probe_port = (liveness.get("tcpSocket") or liveness.get("httpGet"))["port"]
        assert ports.get(probe_port, probe_port) == port, name

        # Room for gunicorn's 30 s graceful timeout.
        assert pod["terminationGracePeriodSeconds"] > 30, name

        volumes = {v["name"]: v for v in pod["volumes"]}
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env.get("WEB_CONCURRENCY", "").isdigit(), f"{name}: set WEB_CONCURRENCY to budget DB connections"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        # The image sets PROMETHEUS_MULTIPROC_DIR to this path (deploy/docker/Dockerfile).
        assert "emptyDir" in volumes[mounts["/tmp/prometheus-multiproc"]], name


def test_the_worker_is_probed_on_its_metrics_port_only(docs):
    """The worker's only port is its own /metrics: liveness asks it; nothing routes traffic
    to the worker, so it has no readiness probe. Every other Deployment is probed as a server."""
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == set(SERVING) | {WORKER}
    (worker,) = deployments[WORKER]["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in worker["ports"]] == [9102]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["SM_WORKER_METRICS_PORT"] == "9102"
    assert worker["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert "readinessProbe" not in worker
    assert deployments[WORKER]["spec"]["strategy"]["type"] == "Recreate"


def test_secrets_come_only_from_the_secrets_suite_secret(docs):
    refs = list(walk(docs, "secretKeyRef"))
    assert refs
    for ref in refs:
        assert ref["name"] == SECRET_NAME, ref
        assert ref["key"] in SECRET_KEYS, ref
    assert {ref["key"] for ref in refs} == SECRET_KEYS
    # No secret value inline: secret env vars are only ever valueFrom.secretKeyRef ...
    for doc in docs:
        for container in _containers(doc):
            for env in container.get("env", []):
                if env["name"] in SECRET_ENV:
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{doc['metadata']['name']}: {env['name']}"
    # ... and never in the ConfigMap.
    (configmap,) = by_kind(docs, "ConfigMap").values()
    assert not SECRET_ENV & set(configmap["data"])
    # The master keys are Vault's alone.
    for doc in docs:
        keys = {ref["key"] for ref in walk(doc, "secretKeyRef")}
        if "vault-master-keys" in keys:
            assert (doc["kind"], doc["metadata"]["name"]) == ("Deployment", "vault")


def test_config_map_is_referenced_and_points_at_the_vault_service(docs):
    configmaps = by_kind(docs, "ConfigMap")
    for doc in docs:
        for container in _containers(doc):
            refs = [e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e]
            assert refs and set(refs) <= set(configmaps), f"{doc['metadata']['name']}/{container['name']}"
    data = configmaps["secrets-suite"]["data"]
    for key in ("AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL", "VAULT_ACTIVE_MASTER_KEY",
                "VAULT_URL", "SM_TOKEN_URL", "SM_CLIENT_ID", "LOG_LEVEL", "DATA_DIR"):
        assert data.get(key), key
    assert data["DATA_DIR"].startswith("/tmp/"), "the root filesystem is read-only"
    vault_url = urlsplit(data["VAULT_URL"])
    service = by_kind(docs, "Service")[vault_url.hostname]
    assert vault_url.port in [p["port"] for p in service["spec"]["ports"]]


def test_services_budgets_and_autoscalers_target_their_deployments(docs):
    deployments = by_kind(docs, "Deployment")
    for name in SERVING:
        deployment = deployments[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"], labels)

        service = by_kind(docs, "Service")[name]
        assert service["spec"]["type"] == "ClusterIP"
        selected = [d for d, dep in deployments.items()
                    if selects({"matchLabels": service["spec"]["selector"]}, dep["spec"]["template"]["metadata"]["labels"])]
        assert selected == [name], f"Service {name} selects {selected}"
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        port_names = {p["name"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names

        pdb = by_kind(docs, "PodDisruptionBudget")[name]
        assert selects(pdb["spec"]["selector"], labels)
        assert not selects(pdb["spec"]["selector"], deployments[WORKER]["spec"]["template"]["metadata"]["labels"])

        hpa = by_kind(docs, "HorizontalPodAutoscaler")[name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_migration_job_runs_both_migrations(docs):
    (job,) = by_kind(docs, "Job").values()
    pod = job["spec"]["template"]["spec"]
    commands = [c["command"] for c in pod.get("initContainers", []) + pod["containers"]]
    assert commands == [["vault-admin", "migrate"], ["secrets-manager-worker", "migrate"]]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    assert "ttlSecondsAfterFinished" in job["spec"]


def _ingress_peers(docs, pod_labels: dict) -> list[list[dict]] | None:
    """The `from` lists of every ingress rule that applies to pods with these labels,
    or None when no NetworkPolicy isolates them for ingress."""
    policies = [p for p in by_kind(docs, "NetworkPolicy").values()
                if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod_labels)]
    if not policies:
        return None
    return [rule.get("from") for p in policies for rule in p["spec"].get("ingress") or []]


def test_network_policies(docs):
    deployments = by_kind(docs, "Deployment")
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    (job,) = by_kind(docs, "Job").values()
    labels["migrate"] = job["spec"]["template"]["metadata"]["labels"]
    ingress_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_NAMESPACE}}}

    # Vault: the ingress namespace, and pods of the Secrets Manager (API and worker).
    (vault_from,) = _ingress_peers(docs, labels["vault"])
    assert ingress_ns in vault_from
    pod_peers = [peer for peer in vault_from if peer != ingress_ns]
    assert len(pod_peers) == 1 and set(pod_peers[0]) == {"podSelector"}, "same-namespace pods only"
    allowed = {name for name, lbl in labels.items() if selects(pod_peers[0]["podSelector"], lbl)}
    assert allowed == {"secrets-manager", WORKER}

    # Secrets Manager API: the ingress namespace only.
    assert _ingress_peers(docs, labels["secrets-manager"]) == [[ingress_ns]]

    # Worker and migration pods: isolated, no rule lets anything in.
    assert _ingress_peers(docs, labels[WORKER]) == []
    assert _ingress_peers(docs, labels["migrate"]) == []


def test_base_is_namespace_agnostic(base_docs):
    assert not [d["metadata"]["name"] for d in base_docs if "namespace" in d["metadata"]]


def test_production_overlay_sets_namespace_images_and_replicas(production_docs):
    for doc in production_docs:
        assert doc["metadata"].get("namespace") == PRODUCTION_NAMESPACE, doc["metadata"]["name"]
    images = {c["image"] for d in production_docs for c in _containers(d)}
    assert images == {f"registry.example.com/secrets-suite/{n}:0.1.0" for n in ("vault", "secrets-manager", "worker")}
    deployments = by_kind(production_docs, "Deployment")
    assert {name: d["spec"]["replicas"] for name, d in deployments.items()} == PRODUCTION_REPLICAS
    # The autoscaler must not undercut the production replica count.
    for name, hpa in by_kind(production_docs, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["minReplicas"] == PRODUCTION_REPLICAS[name]


@pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl not installed: nothing to compare the fallback loader with")
@pytest.mark.parametrize("directory", [BASE, PRODUCTION], ids=["base", "production"])
def test_fallback_loader_renders_what_kubectl_renders(directory):
    def keyed(docs):
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    assert keyed(load_kustomization(directory)) == keyed(kubectl_kustomize(directory))


def test_fallback_loader_refuses_fields_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(NotImplementedError, match="commonLabels"):
        load_kustomization(tmp_path)
