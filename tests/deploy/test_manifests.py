"""Kubernetes manifests under deploy/k8s: rendered, schema-validated, and checked for
the properties the deployment relies on.

Rendering uses `kubectl kustomize` when kubectl is on PATH; otherwise a small loader
(``load_kustomization``) that implements exactly the kustomization fields these
manifests use - resources, namespace, images, replicas and JSON6902 patches - and
refuses any other field instead of silently ignoring it. When kubectl is present,
a test checks that the loader renders the same objects as kubectl does.

Every rendered object is validated with kubernetes-validate against the Kubernetes
1.30 schemas in strict mode (unknown fields are errors); the custom resources
(ServiceMonitor, CloudNativePG's Cluster, Database and Pooler) against the strict schemas
of tests/deploy/crd_schemas.py.

The connection budget is added up here: at the autoscalers' maximum (plus the rollout
surge), every pod's database pools fit the server's max_connections (base, direct) or
PgBouncer's client limit, with PgBouncer's server connections inside the cluster's (production).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.crd_schemas import CNPG_POOLER_PARAMETERS, SCHEMAS

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"

K8S_VERSION = "1.30"
SECRET_NAME = "secrets-suite"
SECRET_KEYS = {"vault-database-url", "secrets-manager-database-url", "vault-master-keys", "sm-client-secret"}
# Each service has its own database: which workloads read which URL.
DATABASE_URL_KEYS = {"vault-database-url": {"vault", "vault-migrate", "vault-destroy-due"},
                     "secrets-manager-database-url": {"secrets-manager", "worker", "secrets-manager-migrate"}}
SECRET_ENV = {"DATABASE_URL", "VAULT_MASTER_KEYS", "SM_CLIENT_SECRET"}
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
RUN_AS_USER = 10001  # the uid of the user in deploy/docker/Dockerfile

# Deployment -> (container port, readiness path). The worker serves only its metrics.
SERVING = {
    "vault": (8081, "/vault/api/v1/status"),
    "secrets-manager": (8082, "/secrets-manager/api/v1/status"),
}
WORKER = "secrets-manager-worker"
DESTROY_DUE = "vault-destroy-due"  # the CronJob that destroys versions whose scheduled destruction is due
PRODUCTION_AUTOSCALING = {"vault": (3, 8), "secrets-manager": (3, 8)}  # (minReplicas, maxReplicas)
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
    ("CronJob", DESTROY_DUE),
    ("NetworkPolicy", "vault"),
    ("NetworkPolicy", "secrets-manager"),
    ("NetworkPolicy", "secrets-suite-no-ingress"),
    ("NetworkPolicy", "secrets-suite-metrics"),
    ("Ingress", "secrets-suite"),
    ("Service", "secrets-manager-worker-metrics"),
    ("ServiceMonitor", "secrets-suite"),
}
PRODUCTION_OBJECTS = EXPECTED_OBJECTS | {
    ("Cluster", "secrets-suite-db"),
    ("Database", "secrets-manager"),
    ("Pooler", "secrets-suite-db-pooler"),
    ("ScheduledBackup", "secrets-suite-db-daily"),
}


# --------------------------------------------------------------------------- rendering

LOADER_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# Kinds the loader may put a namespace on (everything the manifests use is namespaced).
NAMESPACED_KINDS = {kind for kind, _ in PRODUCTION_OBJECTS}


def _pod_templates(doc: dict):
    if doc["kind"] in ("Deployment", "Job"):
        yield doc["spec"]["template"]
    elif doc["kind"] == "CronJob":
        yield doc["spec"]["jobTemplate"]["spec"]["template"]


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
            for key in ("annotations", "labels"):  # kustomize drops a map a patch emptied
                if doc["metadata"].get(key) == {}:
                    del doc["metadata"][key]

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
        custom = SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if custom is not None:
            for error in jsonschema.Draft202012Validator(custom).iter_errors(doc):
                problems.append(f"{ident}: {'.'.join(str(p) for p in error.absolute_path)}: {error.message}")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{ident} is not valid Kubernetes {K8S_VERSION}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{ident}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_exactly_the_expected_objects_and_no_secret(request, docs):
    found = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(found) == len(set(found)), "duplicate objects"
    assert set(found) == (PRODUCTION_OBJECTS if "production" in request.node.callspec.id else EXPECTED_OBJECTS)
    assert not [d for d in docs if d["kind"] == "Secret"], "the Secret must not be in the manifests"


def test_workloads_run_unprivileged_on_a_read_only_root(docs):
    workloads = [d for d in docs if d["kind"] in ("Deployment", "Job", "CronJob")]
    assert len(workloads) == 5
    for doc in workloads:
        name = doc["metadata"]["name"]
        (template,) = _pod_templates(doc)
        pod = template["spec"]
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
    assert env["SM_WORKER_METRICS_PORT"] == "9102" and env["SM_WORKER_METRICS_ADDRESS"] == "0.0.0.0"
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
    # Each service reads its own database's URL.
    for doc in docs:
        for container in _containers(doc):
            for env in container.get("env", []):
                key = env.get("valueFrom", {}).get("secretKeyRef", {}).get("key")
                if key in DATABASE_URL_KEYS:
                    assert env["name"] == "DATABASE_URL" and container["name"] in DATABASE_URL_KEYS[key], (
                        f"{container['name']} reads {key}")
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
    for key in ("AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL", "VAULT_URL", "SM_TOKEN_URL", "SM_CLIENT_ID",
                "LOG_LEVEL", "DATA_DIR", "DB_POOL_MAX_SIZE"):
        assert data.get(key), key
    # Not pinned: the first key of VAULT_MASTER_KEYS is the active one, so the README's key
    # rotation (new key in front, roll, re-wrap) works without touching the ConfigMap.
    assert "VAULT_ACTIVE_MASTER_KEY" not in data
    assert "DEV_MODE" not in data, "development fallbacks never in a cluster"
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
        # The autoscaler owns the count: a replicas field would reset it on every apply.
        assert "replicas" not in deployment["spec"], f"{name}: replicas beside its HorizontalPodAutoscaler"


def test_migration_job_runs_both_migrations(docs):
    (job,) = by_kind(docs, "Job").values()
    pod = job["spec"]["template"]["spec"]
    commands = [c["command"] for c in pod.get("initContainers", []) + pod["containers"]]
    assert commands == [["vault-admin", "migrate"], ["secrets-manager-worker", "migrate"]]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    assert "ttlSecondsAfterFinished" in job["spec"]


def test_the_destroy_due_cronjob_sweeps_the_vaults_database_one_run_at_a_time(docs):
    (cronjob,) = by_kind(docs, "CronJob").values()
    (template,) = _pod_templates(cronjob)
    (container,) = template["spec"]["containers"]
    assert container["command"] == ["vault-admin", "destroy-due"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert template["spec"]["restartPolicy"] == "Never"
    # A run must end before the next is due: activeDeadlineSeconds below the schedule's period.
    minutes = int(cronjob["spec"]["schedule"].split()[0].removeprefix("*/"))
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < minutes * 60
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "vault"


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
    (cronjob,) = by_kind(docs, "CronJob").values()
    (template,) = _pod_templates(cronjob)
    labels[DESTROY_DUE] = template["metadata"]["labels"]
    ingress_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_NAMESPACE}}}
    monitoring_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}

    # Vault: the ingress namespace and pods of the Secrets Manager (API and worker); Prometheus.
    peers = _ingress_peers(docs, labels["vault"])
    assert len(peers) == 2 and [monitoring_ns] in peers
    (vault_from,) = [p for p in peers if p != [monitoring_ns]]
    assert ingress_ns in vault_from
    pod_peers = [peer for peer in vault_from if peer != ingress_ns]
    assert len(pod_peers) == 1 and set(pod_peers[0]) == {"podSelector"}, "same-namespace pods only"
    allowed = {name for name, lbl in labels.items() if selects(pod_peers[0]["podSelector"], lbl)}
    assert allowed == {"secrets-manager", WORKER}

    # Secrets Manager API: the ingress namespace; Prometheus.
    assert sorted(_ingress_peers(docs, labels["secrets-manager"]), key=str) == [[ingress_ns], [monitoring_ns]]

    # Worker: only Prometheus, and only on its metrics port. Migration pods: nothing at all.
    assert _ingress_peers(docs, labels[WORKER]) == [[monitoring_ns]]
    (metrics_policy,) = [p for p in by_kind(docs, "NetworkPolicy").values()
                         if selects(p["spec"]["podSelector"], labels[WORKER]) and p["spec"]["ingress"]]
    assert {p["port"] for p in metrics_policy["spec"]["ingress"][0]["ports"]} == {8081, 8082, 9102}
    assert _ingress_peers(docs, labels["migrate"]) == []
    assert _ingress_peers(docs, labels[DESTROY_DUE]) == []


def test_base_is_namespace_agnostic(base_docs):
    assert not [d["metadata"]["name"] for d in base_docs if "namespace" in d["metadata"]]


def test_production_overlay_sets_namespace_images_and_autoscaling(production_docs):
    for doc in production_docs:
        assert doc["metadata"].get("namespace") == PRODUCTION_NAMESPACE, doc["metadata"]["name"]
    images = {c["image"] for d in production_docs for c in _containers(d)}
    assert images == {f"registry.example.com/secrets-suite/{n}:0.1.0" for n in ("vault", "secrets-manager", "worker")}
    deployments = by_kind(production_docs, "Deployment")
    assert {name: d["spec"].get("replicas") for name, d in deployments.items()} == {
        "vault": None, "secrets-manager": None, WORKER: 1}
    for name, hpa in by_kind(production_docs, "HorizontalPodAutoscaler").items():
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == PRODUCTION_AUTOSCALING[name]


# --------------------------------------------------------------------------- connection budget


def _pool_size(docs) -> int:
    (configmap,) = by_kind(docs, "ConfigMap").values()
    return int(configmap["data"]["DB_POOL_MAX_SIZE"])


def client_connections(docs) -> dict[str, int]:
    """The most database connections each workload can hold at once: every pod the autoscaler
    may run, plus the one a rolling update adds, times gunicorn workers times the pool size;
    the worker (Recreate: never two), the migration Job (one container at a time) and the
    destroy-due CronJob (Forbid: one run at a time, its own pool size) likewise."""
    pool = _pool_size(docs)
    deployments = by_kind(docs, "Deployment")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    budget = {}
    for name in SERVING:
        spec = deployments[name]["spec"]
        surge = int(spec["strategy"]["rollingUpdate"]["maxSurge"])
        (container,) = spec["template"]["spec"]["containers"]
        workers = int({e["name"]: e.get("value") for e in container["env"]}["WEB_CONCURRENCY"])
        budget[name] = (hpas[name]["spec"]["maxReplicas"] + surge) * workers * pool
    assert deployments[WORKER]["spec"]["strategy"]["type"] == "Recreate"
    budget[WORKER] = deployments[WORKER]["spec"]["replicas"] * pool
    (job,) = by_kind(docs, "Job").values()
    assert job["spec"].get("parallelism", 1) == 1
    budget["migrate"] = pool
    (cronjob,) = by_kind(docs, "CronJob").values()
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (template,) = _pod_templates(cronjob)
    (container,) = template["spec"]["containers"]
    budget[DESTROY_DUE] = int({e["name"]: e.get("value") for e in container["env"]}.get("DB_POOL_MAX_SIZE") or pool)
    return budget


def test_base_connections_fit_the_servers_max_connections(base_docs):
    """Straight to PostgreSQL: all pools together stay below max_connections less the superuser reserve."""
    (configmap,) = by_kind(base_docs, "ConfigMap").values()
    max_connections = int(configmap["metadata"]["annotations"]["secrets-suite/database-max-connections"])
    budget = client_connections(base_docs)
    assert sum(budget.values()) <= max_connections - 3, budget  # superuser_reserved_connections' default


def test_production_connections_fit_pgbouncer_and_pgbouncer_fits_the_cluster(production_docs):
    (pooler,) = by_kind(production_docs, "Pooler").values()
    (cluster,) = by_kind(production_docs, "Cluster").values()
    bouncer = {k: int(v) for k, v in pooler["spec"]["pgbouncer"]["parameters"].items() if v.isdigit()}
    budget = client_connections(production_docs)
    # Client side: the whole budget may land on one pooler instance.
    assert sum(budget.values()) <= bouncer["max_client_conn"], budget
    # Server side: per instance and database, the pool and its reserve, capped by max_db_connections.
    databases = 2  # vault and secrets_manager, each with its one owner
    per_database = min(bouncer["default_pool_size"] + bouncer["reserve_pool_size"], bouncer["max_db_connections"])
    server = pooler["spec"]["instances"] * databases * per_database
    pg = {k: int(v) for k, v in cluster["spec"]["postgresql"]["parameters"].items()}
    # What the cluster keeps for itself: the superuser reserve and the replicas' WAL senders.
    assert server <= pg["max_connections"] - pg["superuser_reserved_connections"] - pg["max_wal_senders"], server


def test_production_database_is_highly_available_behind_transaction_pooling(production_docs):
    (cluster,) = by_kind(production_docs, "Cluster").values()
    assert cluster["spec"]["instances"] >= 2, "a primary and at least one replica"
    assert cluster["spec"]["enableSuperuserAccess"] is False
    (pooler,) = by_kind(production_docs, "Pooler").values()
    assert pooler["spec"]["cluster"]["name"] == cluster["metadata"]["name"] != pooler["metadata"]["name"]
    assert pooler["spec"]["type"] == "rw" and pooler["spec"]["instances"] >= 2
    bouncer = pooler["spec"]["pgbouncer"]
    assert bouncer["poolMode"] == "transaction"
    assert set(bouncer["parameters"]) <= CNPG_POOLER_PARAMETERS
    # What the services need of PgBouncer in transaction mode: protocol-level prepared
    # statements, and their connect-time settings (libpq options) kept per client.
    assert int(bouncer["parameters"]["max_prepared_statements"]) > 0
    assert set(bouncer["parameters"]["track_extra_parameters"].split(",")) == {"statement_timeout", "synchronous_commit"}
    # Two databases, each with its own owner role.
    owners = {cluster["spec"]["bootstrap"]["initdb"]["database"]: cluster["spec"]["bootstrap"]["initdb"]["owner"]}
    owners.update({d["spec"]["name"]: d["spec"]["owner"] for d in by_kind(production_docs, "Database").values()})
    assert owners == {"vault": "vault", "secrets_manager": "secrets_manager"}
    assert {r["name"] for r in cluster["spec"]["managed"]["roles"]} == {"secrets_manager"}
    assert all(d["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
               for d in by_kind(production_docs, "Database").values())


def test_production_database_replicates_synchronously_and_is_backed_up_every_day(production_docs):
    """docs/operations.md: a synchronous replica (no acknowledged write lost in a failover, as
    make failover-test shows) with one more to spare; base backups and WAL in object storage,
    kept 30 days, a base backup every night."""
    (cluster,) = by_kind(production_docs, "Cluster").values()
    spec = cluster["spec"]
    assert spec["minSyncReplicas"] == spec["maxSyncReplicas"] == 1 and spec["instances"] >= 3
    store = spec["backup"]["barmanObjectStore"]
    assert spec["backup"]["retentionPolicy"] == "30d" and store["destinationPath"].startswith("s3://")
    assert {ref["name"] for ref in store["s3Credentials"].values()} == {"secrets-suite-db-backup"}
    assert store["wal"]["compression"] and store["data"]["compression"]
    (scheduled,) = by_kind(production_docs, "ScheduledBackup").values()
    assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert scheduled["spec"]["method"] == "barmanObjectStore" and scheduled["spec"]["immediate"] is True
    seconds, minutes, hours, day, month, weekday = scheduled["spec"]["schedule"].split()
    assert (day, month, weekday) == ("*", "*", "*") and hours.isdigit(), "every day"


# --------------------------------------------------------------------------- ingress and monitoring


def test_the_ingress_routes_the_api_prefixes_over_tls_and_never_metrics(docs):
    (ingress,) = by_kind(docs, "Ingress").values()
    services = by_kind(docs, "Service")
    routes = {}
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in [p["name"] for p in services[backend["name"]]["spec"]["ports"]]
            routes[path["path"]] = backend["name"]
    assert routes == {"/vault/api/v1": "vault", "/secrets-manager/api/v1": "secrets-manager",
                      "/authorizer/api/v1/secrets": "secrets-manager"}
    assert not [p for p in routes if "metrics" in p or p == "/"]
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_the_service_monitor_scrapes_every_service_with_metrics(docs):
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    selected = {name: svc for name, svc in by_kind(docs, "Service").items()
                if selects(monitor["spec"]["selector"], svc["metadata"]["labels"])}
    assert set(selected) == {"vault", "secrets-manager", "secrets-manager-worker-metrics"}
    endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])
    for name, svc in selected.items():
        assert endpoint_ports & {p["name"] for p in svc["spec"]["ports"]}, f"{name}: no port the monitor scrapes"
    worker_svc = selected["secrets-manager-worker-metrics"]
    worker_labels = by_kind(docs, "Deployment")[WORKER]["spec"]["template"]["metadata"]["labels"]
    assert selects({"matchLabels": worker_svc["spec"]["selector"]}, worker_labels)


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


# --------------------------------------------------------------------------- settings


def test_every_container_gets_the_settings_its_program_requires(docs):
    """What each container's environment would be (ConfigMap, then its own env; Secret values
    stand in) passes the program's start-up validation (common/config.py) outside development mode."""
    from common import config

    groups = {"vault": config.VAULT, "secrets-manager": config.SECRETS_MANAGER, "worker": config.SECRETS_MANAGER,
              "vault-migrate": config.DATABASE, "secrets-manager-migrate": config.DATABASE,
              "vault-destroy-due": config.DATABASE}
    secret_values = {"vault-database-url": "postgresql://vault:pw@db:5432/vault",
                     "secrets-manager-database-url": "postgresql://secrets_manager:pw@db:5432/secrets_manager",
                     "vault-master-keys": "k1:" + "A" * 43, "sm-client-secret": "client-secret"}
    (configmap,) = by_kind(docs, "ConfigMap").values()
    seen = set()
    for doc in docs:
        for container in _containers(doc):
            environ = dict(configmap["data"])
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                environ[env["name"]] = secret_values[ref["key"]] if ref else env["value"]
            settings = config.load(groups[container["name"]], environ=environ)  # ConfigError names what is wrong
            assert not settings.dev_mode, container["name"]
            seen.add(container["name"])
    assert seen == set(groups)
