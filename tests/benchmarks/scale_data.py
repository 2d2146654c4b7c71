"""The data sets of `make bench-scale`, built fast: COPY and INSERT ... SELECT, indexes built
once after the load, ciphertext made by the Vault's own crypto (common/crypto.py through
vault_service/secrets/sealing.py's serialisation).

A data set of size N (secrets) is an organisation N/10,000 times as big as the small one,
not the small one with more rows per person: teams, roles, users, hosts and principals
all grow with N, so what one user holds and sees stays about the same. At N secrets:

- shared secrets `team-TTTT/<app>/<env>/<item>`: N/1,000 teams of about 900 secrets each
  (10 apps x dev/staging/prod x ~30 items); each team has an `ops` role (reads and writes
  its secrets) and a `dev` role (reads them); one secret in ten is also readable by one of
  N/10,000 cross-team roles (`sre-KKK`); 1 to 3 versions each;
- personal secrets: N/10 of them, 10 for each of N/100 users;
- two fixtures, the same at every size: `fleet/agents/` with 10,000 children (for
  `keys`), and `team-0000/rotating/prod/token` with 1,000 versions (for `versions`);
- Secrets Manager: 100 managed accounts on each of N/1,000 hosts (at least 100 hosts: the
  small set has 10,000 accounts, the big one 100,000); each host gives access to one or two
  of hosts/10 roles (`ops-team-KKK`), so a user with two roles may use about 30 hosts;
- audit trail: N x 10 Vault events spread evenly over the last 30 days, by N/100
  principals on N targets (so about 33 events per principal a day at every size), plus
  300 a day on one hot target (a token a job reads every five minutes).
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import secrets
import signal
import time
import uuid
from datetime import datetime, timezone

import psycopg

from common import crypto
from vault_service.secrets import sealing

APPS = ["billing-api", "auth", "ledger", "search", "gateway", "reports", "mailer", "payments", "inventory",
        "scheduler", "analytics", "frontend", "warehouse", "notifier", "identity", "catalog", "pricing",
        "checkout", "shipping", "support-desk"]
ENVS = ["dev", "staging", "prod"]
ITEMS = ["db-password", "api-key", "tls-key", "oauth-client", "smtp", "s3-credentials", "ssh-deploy-key",
         "webhook-secret", "jwt-signing-key", "redis-password", "kafka-sasl", "admin-password",
         "service-account", "backup-key", "license", "ldap-bind", "vpn-psk", "registry-token"]
FLEET_FOLDER = "fleet/agents"
FLEET_CHILDREN = 10_000
MANY_VERSIONS_NAME = "team-0000/rotating/prod/token"
MANY_VERSIONS = 1_000
SECRETS_PER_TEAM = 900
AUDIT_EVENTS_PER_SECRET = 10
AUDIT_DAYS = 30
HOT_TARGET = f"secret:{MANY_VERSIONS_NAME}"
HOT_TARGET_PER_DAY = 300
CHUNK = 5_000
AUTHOR = "00000000-0000-4000-8000-00000000a17f"


def role_id(kind: str, number: int) -> str:
    """A stable, uuid-shaped role id per (kind, number), the same in every data set."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-scale/{kind}/{number}"))


def user_id(number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-scale/user/{number}"))


class Layout:
    """Who and what a data set of `size` secrets has; the scenarios ask it for names and roles."""

    def __init__(self, size: int):
        self.size = size
        self.personal = size // 10
        self.users = max(1, size // 100)
        self.teams = max(2, size // 1_000)
        self.sre_roles = max(1, size // 10_000)
        self.shared = size - self.personal
        self.hosts = max(100, size // 1_000)
        self.accounts_per_host = 100
        self.sm_roles = max(2, self.hosts // 10)
        self.audit_events = size * AUDIT_EVENTS_PER_SECRET
        self.principals = max(1, size // 100)

    def team_roles(self, team: int) -> tuple[str, str]:
        return role_id("team-ops", team), role_id("team-dev", team)

    def roles(self) -> list[tuple[str, str]]:
        """(id, name) of every Vault role."""
        found = [(role_id("fleet", 0), "fleet-readers")]
        for team in range(self.teams):
            ops, dev = self.team_roles(team)
            found += [(ops, f"team-{team:04d}-ops"), (dev, f"team-{team:04d}-dev")]
        found += [(role_id("sre", k), f"sre-{k:03d}") for k in range(self.sre_roles)]
        return found

    def shared_names(self, first: int, count: int):
        """(name, read_roles, write_roles, versions) of shared secrets first .. first+count-1."""
        rng = random.Random(first)
        for index in range(first, first + count):
            team, rest = divmod(index, SECRETS_PER_TEAM)
            team %= self.teams
            app_env, item = divmod(rest, len(ITEMS) * 2)
            app, env = divmod(app_env, len(ENVS))
            ops, dev = self.team_roles(team)
            read = [ops, dev]
            if rng.random() < 0.1:
                read.append(role_id("sre", rng.randrange(self.sre_roles)))
            suffix = "" if item < len(ITEMS) else "-2"
            name = (f"team-{team:04d}/{APPS[(app + team) % len(APPS)]}-{app}/{ENVS[env % 3]}/"
                    f"{ITEMS[item % len(ITEMS)]}{suffix}-{index:07d}")
            yield name, "", read, [ops], rng.choice((1, 1, 2, 3))

    def personal_names(self, first: int, count: int):
        rng = random.Random(-first - 1)
        for index in range(first, first + count):
            owner = user_id(index % self.users)
            yield f"notes/{ITEMS[index % len(ITEMS)]}-{index:07d}", owner, [], [], rng.choice((1, 2))

    def fixture_names(self):
        fleet = role_id("fleet", 0)
        for n in range(FLEET_CHILDREN):
            yield f"{FLEET_FOLDER}/agent-{n:05d}", "", [fleet], [fleet], 1
        ops, dev = self.team_roles(0)
        yield MANY_VERSIONS_NAME, "", [ops, dev], [ops], MANY_VERSIONS

    def slices(self) -> list[tuple[str, int, int]]:
        """The secrets in (kind, first, count) pieces of CHUNK, for the worker processes."""
        pieces = []
        for kind, total in (("shared", self.shared), ("personal", self.personal)):
            pieces += [(kind, first, min(CHUNK, total - first)) for first in range(0, total, CHUNK)]
        return pieces


# --------------------------------------------------------------------------------------
# Vault secrets: made in worker processes, each COPYing its own pieces

_worker_state: dict = {}


def _init_worker(database_url: str, keyring_spec: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: the pool stops us with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute("SET synchronous_commit = off")
    _worker_state.update(conn=conn, keyring=crypto.Keyring.from_spec(keyring_spec))


def _copy_piece(args) -> int:
    kind, first, count, size = args
    layout = Layout(size)
    rows = (layout.fixture_names() if kind == "fixtures" else
            layout.shared_names(first, count) if kind == "shared" else layout.personal_names(first, count))
    return _copy_secrets(_worker_state["conn"], _worker_state["keyring"], rows)


def _copy_secrets(conn, keyring: crypto.Keyring, rows) -> int:
    now = datetime.now(timezone.utc)
    secret_rows, version_rows = [], []
    for name, owner, read, write, versions in rows:
        secret_id = str(uuid.uuid4())
        data_key, wrapped = keyring.new_data_key(secret_id)
        secret_rows.append((secret_id, owner, name, read, write, AUTHOR, AUTHOR, now, now, wrapped.key_id,
                            wrapped.wrapped, versions, 0 if versions > 10 else 10))
        for version in range(1, versions + 1):
            data = {"username": f"svc-{version}", "password": secrets.token_urlsafe(18)}
            version_rows.append((secret_id, version, crypto.encrypt_version(data_key, secret_id, version,
                                                                             sealing.serialize(data)), now, AUTHOR))
    with conn.cursor() as cur:
        with cur.copy("""COPY vault_secrets (id, owner_id, name, read_roles, write_roles, author, updated_by,
                         created, updated, dek_key_id, dek_wrapped, current_version, max_versions) FROM STDIN""") as copy:
            for row in secret_rows:
                copy.write_row(row)
        # The versions' secrets are there by construction: skip the per-row foreign key checks
        # (the secrets' own triggers, such as the per-owner counts, did run).
        cur.execute("SET session_replication_role = replica")
        with cur.copy("COPY vault_secret_versions (secret_id, version, ciphertext, created, created_by) FROM STDIN") as copy:
            for row in version_rows:
                copy.write_row(row)
        cur.execute("SET session_replication_role = DEFAULT")
    return len(secret_rows)


# --------------------------------------------------------------------------------------
# Indexes: dropped before a bulk load, built again after it (much faster than row by row)

def drop_indexes(conn, tables: list[str]) -> list[str]:
    """Drop the plain (non-constraint) indexes of `tables`; returns their definitions."""
    rows = conn.execute(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY (%s) AND t.relnamespace = 'public'::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
              AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)""",
        (tables,)).fetchall()
    for name, _ in rows:
        conn.execute(f"DROP INDEX {name}")
    return [definition for _, definition in rows]


def build_indexes(conn, definitions: list[str]) -> None:
    conn.execute("SET maintenance_work_mem = '512MB'")
    for definition in definitions:
        # A partitioned table's index is defined ON ONLY the parent; built again, it must reach
        # every partition.
        conn.execute(definition.replace(" ON ONLY ", " ON ", 1))


# --------------------------------------------------------------------------------------
# The builders

def build_vault(database_url: str, keyring_spec: str, size: int, *, workers: int, log) -> None:
    layout = Layout(size)
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO vault_roles (id, name) SELECT * FROM unnest(%s::text[], %s::text[])""",
                     ([r[0] for r in layout.roles()], [r[1] for r in layout.roles()]))
        definitions = drop_indexes(conn, ["vault_secrets", "vault_secret_versions"])
        pieces = [("fixtures", 0, 0, size)] + [(kind, first, count, size) for kind, first, count in layout.slices()]
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, initializer=_init_worker, initargs=(database_url, keyring_spec)) as pool:
            done = sum(pool.imap_unordered(_copy_piece, pieces))
        log(f"  vault {size:,}: {done:,} secrets with their versions encrypted and copied in "
            f"{time.monotonic() - started:.0f} s")
        started = time.monotonic()
        build_indexes(conn, definitions)
        log(f"  vault {size:,}: indexes built in {time.monotonic() - started:.0f} s")


def build_audit(database_url: str, size: int, *, log) -> None:
    """The Vault's audit trail: N x 10 events over 30 days, straight from SQL."""
    layout = Layout(size)
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT audit_ensure_partitions(((now() AT TIME ZONE 'UTC') - interval '31 days')::date,"
                     " (now() AT TIME ZONE 'UTC')::date)")
        definitions = drop_indexes(conn, ["audit_events"])
        conn.execute("SET synchronous_commit = off")
        # Principals `user-K` of N/100; targets spread over N names; 1 event in 50 denied.
        conn.execute(
            """INSERT INTO audit_events (service, occurred, request_id, principal, action, target, outcome, details)
               SELECT 'vault', now() - make_interval(secs => %(span)s * (1 - i::float8 / %(n)s)), md5(i::text),
                      'user-' || ((i * 2654435761) %% %(principals)s),
                      CASE WHEN i %% 100 < 90 THEN 'secret.read' WHEN i %% 100 < 97 THEN 'secret.write'
                           ELSE 'secret.update' END,
                      'secret:team-' || lpad(((i * 40503) %% %(teams)s)::text, 4, '0') || '/obj-' || ((i * 7919) %% %(size)s),
                      CASE WHEN i %% 50 = 0 THEN 'denied' ELSE 'success' END, '{"version": 1}'
                 FROM generate_series(1::bigint, %(n)s) i""",
            {"span": AUDIT_DAYS * 86400, "n": layout.audit_events, "principals": layout.principals,
             "teams": layout.teams, "size": size})
        conn.execute(
            """INSERT INTO audit_events (service, occurred, request_id, principal, action, target, outcome, details)
               SELECT 'vault', now() - make_interval(secs => 86400.0 * %(days)s * (1 - i::float8 / %(n)s)),
                      md5('hot' || i), 'svc-rotator', 'secret.read', %(target)s, 'success', '{"version": 1}'
                 FROM generate_series(1::bigint, %(n)s) i""",
            {"days": AUDIT_DAYS, "n": AUDIT_DAYS * HOT_TARGET_PER_DAY, "target": HOT_TARGET})
        # The seeded history stays out of the hash chain (the horizon is put after it): chaining
        # millions of existing events is an upgrade's one-time background job, not what these
        # latencies measure.
        conn.execute("""INSERT INTO audit_chain_heads (service, hash, anchor_hash, horizon)
                        VALUES ('vault', %(zero)s, %(zero)s, pg_current_xact_id())
                        ON CONFLICT (service) DO UPDATE SET horizon = excluded.horizon""", {"zero": bytes(32)})
        log(f"  audit {size:,}: {layout.audit_events + AUDIT_DAYS * HOT_TARGET_PER_DAY:,} events inserted in "
            f"{time.monotonic() - started:.0f} s")
        started = time.monotonic()
        build_indexes(conn, definitions)
        log(f"  audit {size:,}: indexes built in {time.monotonic() - started:.0f} s")


def audit_principal(number: int) -> str:
    """The name the audit builder gives principal `number`."""
    return f"user-{number}"


def build_secrets_manager(database_url: str, size: int, *, log) -> None:
    """The Layout's hosts with 100 managed accounts each, one or two access roles per host."""
    layout = Layout(size)
    started = time.monotonic()
    role_ids = [role_id("ops-team", k) for k in range(layout.sm_roles)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        policy = uuid.uuid4()
        conn.execute(
            """INSERT INTO sm_password_policies (id, name, rotation_interval, password_min_length, password_max_length,
                   use_special_characters, use_lower_case, use_upper_case, use_numbers, max_versions, number_of_retries,
                   retry_interval, max_concurrent_checkouts, max_checkout_duration, rotate_on_release,
                   verify_after_rotation, created_by, updated_by)
               VALUES (%s, 'bench-scale', 0, 20, 24, true, true, true, true, 5, 1, 300, 0, 3600, false, false, %s, %s)""",
            (policy, AUTHOR, AUTHOR))
        definitions = drop_indexes(conn, ["sm_hosts", "sm_accounts"])
        conn.execute(
            """INSERT INTO sm_hosts (id, address, port, operating_system, protocol, password_policy_id, access_roles,
                                     access_role_ids, created_by, updated_by)
               SELECT md5('host' || h)::uuid, '10.' || (h / 65536) || '.' || (h / 256 %% 256) || '.' || (h %% 256),
                      22, 'LINUX', 'NONE', %(policy)s,
                      (SELECT jsonb_agg(jsonb_build_object('id', r, 'name', r)) FROM unnest(roles.ids) r), roles.ids,
                      %(author)s, %(author)s
                 FROM generate_series(0, %(hosts)s - 1) h,
                      LATERAL (SELECT CASE WHEN h %% 2 = 0 THEN ARRAY[(%(roles)s::text[])[1 + h %% %(n_roles)s]]
                                      ELSE ARRAY[(%(roles)s::text[])[1 + h %% %(n_roles)s], (%(roles)s::text[])[1 + (h * 7 + 3) %% %(n_roles)s]]
                                      END AS ids) roles""",
            {"policy": policy, "author": AUTHOR, "hosts": layout.hosts, "roles": role_ids, "n_roles": layout.sm_roles})
        conn.execute(
            """INSERT INTO sm_accounts (id, host_id, account, created_by)
               SELECT gen_random_uuid(), md5('host' || h)::uuid, 'acct' || lpad(a::text, 3, '0'), %(author)s
                 FROM generate_series(0, %(hosts)s - 1) h, generate_series(0, %(per_host)s - 1) a""",
            {"author": AUTHOR, "hosts": layout.hosts, "per_host": layout.accounts_per_host})
        build_indexes(conn, definitions)
    log(f"  secrets manager {size:,}: {layout.hosts * layout.accounts_per_host:,} accounts on {layout.hosts:,} hosts "
        f"in {time.monotonic() - started:.0f} s")


def host_id(number: int) -> str:
    """The id build_secrets_manager gives host `number` (md5('host' || number)::uuid)."""
    return str(uuid.UUID(hashlib.md5(f"host{number}".encode()).hexdigest()))


def analyze(database_url: str) -> None:
    """Hint bits, visibility map and statistics, as a database that has lived a while has them."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def cpu_count() -> int:
    return max(1, min(4, os.cpu_count() or 1))
