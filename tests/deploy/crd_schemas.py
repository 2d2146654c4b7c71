"""Strict JSON Schemas for the custom resources in deploy/k8s, which kubernetes-validate has no
schema for: the Prometheus Operator's ServiceMonitor and CloudNativePG's Cluster, Database,
Pooler and ScheduledBackup. Each covers the fields these manifests use, with the types and values the upstream CRDs
give them (monitoring.coreos.com/v1, postgresql.cnpg.io/v1), and refuses every other field, so a
typo or an unknown field fails as kubernetes-validate's strict mode fails it for built-in kinds.
A field the manifests start to use must be added here from the upstream CRD.
"""
from __future__ import annotations

# PgBouncer settings a CloudNativePG Pooler accepts (AllowedPgbouncerGenericConfigurationParameters
# of its admission webhook); any other is refused when the Pooler is applied.
CNPG_POOLER_PARAMETERS = frozenset("""
application_name_add_host auth_type autodb_idle_timeout cancel_wait_timeout client_idle_timeout
client_login_timeout client_tls_sslmode default_pool_size disable_pqexec dns_max_ttl dns_nxdomain_ttl
idle_transaction_timeout ignore_startup_parameters listen_backlog log_connections log_disconnections
log_pooler_errors log_stats max_client_conn max_db_connections max_packet_size max_prepared_statements
max_user_connections min_pool_size pkt_buf query_timeout query_wait_timeout reserve_pool_size
reserve_pool_timeout sbuf_loopcnt server_check_delay server_check_query server_connect_timeout
server_fast_close server_idle_timeout server_lifetime server_login_retry server_reset_query
server_reset_query_always server_round_robin server_tls_ciphers server_tls_protocols server_tls_sslmode
stats_period suspend_timeout tcp_defer_accept tcp_socket_buffer tcp_keepalive tcp_keepcnt tcp_keepidle
tcp_keepintvl tcp_user_timeout track_extra_parameters verbose
""".split())

_STRING = {"type": "string"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_NAME_REF = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {"name": _STRING}}
_QUANTITY = {"type": ["string", "integer"]}
_RESOURCES = {"type": "object", "additionalProperties": False, "properties": {
    "requests": {"type": "object", "additionalProperties": _QUANTITY},
    "limits": {"type": "object", "additionalProperties": _QUANTITY},
}}
_METADATA = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
    "namespace": _STRING, "labels": _STRING_MAP, "annotations": _STRING_MAP,
}}


def _resource(api_version: str, kind: str, spec: dict) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _METADATA,
                           "spec": spec}}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": list(required)}


SERVICE_MONITOR = _resource("monitoring.coreos.com/v1", "ServiceMonitor", _object({
    "selector": _object({"matchLabels": _STRING_MAP}),
    "endpoints": {"type": "array", "minItems": 1, "items": _object({
        "port": _STRING, "path": {"type": "string", "pattern": "^/"},
        "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                                                  "(([0-9]+)s)?(([0-9]+)ms)?)$"},
        "scheme": {"enum": ["http", "https"]},
    }, ("port",))},
}, ("selector", "endpoints")))

_SECRET_KEY_REF = _object({"name": _STRING, "key": _STRING}, ("name", "key"))
_COMPRESSION = {"enum": ["gzip", "bzip2", "lz4", "snappy", "xz", "zstd"]}

CLUSTER = _resource("postgresql.cnpg.io/v1", "Cluster", _object({
    "instances": {"type": "integer", "minimum": 1},
    "minSyncReplicas": {"type": "integer", "minimum": 0},
    "maxSyncReplicas": {"type": "integer", "minimum": 0},
    "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
    "enableSuperuserAccess": {"type": "boolean"},
    "postgresql": _object({"parameters": _STRING_MAP}),
    "bootstrap": _object({"initdb": _object({"database": _STRING, "owner": _STRING, "secret": _NAME_REF})}),
    "managed": _object({"roles": {"type": "array", "items": _object({
        "name": _STRING, "ensure": {"enum": ["present", "absent"]}, "login": {"type": "boolean"},
        "passwordSecret": _NAME_REF,
    }, ("name",))}}),
    "storage": _object({"size": _STRING, "storageClass": _STRING}),
    "backup": _object({
        "retentionPolicy": {"type": "string", "pattern": "^[1-9][0-9]*[dwm]$"},
        "barmanObjectStore": _object({
            "destinationPath": {"type": "string", "minLength": 1}, "endpointURL": _STRING, "serverName": _STRING,
            "s3Credentials": _object({"accessKeyId": _SECRET_KEY_REF, "secretAccessKey": _SECRET_KEY_REF,
                                      "region": _SECRET_KEY_REF, "sessionToken": _SECRET_KEY_REF,
                                      "inheritFromIAMRole": {"type": "boolean"}}),
            "wal": _object({"compression": _COMPRESSION, "maxParallel": {"type": "integer", "minimum": 1}}),
            "data": _object({"compression": _COMPRESSION, "jobs": {"type": "integer", "minimum": 1}}),
        }, ("destinationPath",)),
    }),
    "resources": _RESOURCES,
}, ("instances",)))

SCHEDULED_BACKUP = _resource("postgresql.cnpg.io/v1", "ScheduledBackup", _object({
    # CloudNativePG's cron has six fields, seconds first.
    "schedule": {"type": "string", "pattern": r"^\S+( \S+){5}$"},
    "cluster": _NAME_REF,
    "immediate": {"type": "boolean"},
    "suspend": {"type": "boolean"},
    "backupOwnerReference": {"enum": ["none", "self", "cluster"]},
    "method": {"enum": ["barmanObjectStore", "volumeSnapshot", "plugin"]},
    "target": {"enum": ["primary", "prefer-standby"]},
}, ("schedule", "cluster")))

DATABASE = _resource("postgresql.cnpg.io/v1", "Database", _object({
    "name": _STRING, "owner": _STRING, "ensure": {"enum": ["present", "absent"]}, "cluster": _NAME_REF,
}, ("name", "owner", "cluster")))

POOLER = _resource("postgresql.cnpg.io/v1", "Pooler", _object({
    "cluster": _NAME_REF,
    "instances": {"type": "integer", "minimum": 0},
    "type": {"enum": ["rw", "ro", "r"]},
    "pgbouncer": _object({
        "poolMode": {"enum": ["session", "transaction"]},
        "parameters": {"type": "object", "additionalProperties": {"type": "string"},
                       "propertyNames": {"enum": sorted(CNPG_POOLER_PARAMETERS)}},
    }),
}, ("cluster", "pgbouncer")))

SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
           ("postgresql.cnpg.io/v1", "Cluster"): CLUSTER,
           ("postgresql.cnpg.io/v1", "Database"): DATABASE,
           ("postgresql.cnpg.io/v1", "Pooler"): POOLER,
           ("postgresql.cnpg.io/v1", "ScheduledBackup"): SCHEDULED_BACKUP}
