-- Target domains: directories (LDAP, Active Directory) whose user accounts the Secrets Manager
-- scans, onboards, rotates and hands out. As for hosts, no password is ever stored here: the
-- bind passwords are the Vault secret `targetdomains/{id}/bind`, a managed account's password
-- is `targetdomains/{domain_id}/{managed_account_id}`.

CREATE TABLE sm_target_domains (
    id                        uuid PRIMARY KEY,
    name                      text NOT NULL,
    domain_name               text NOT NULL DEFAULT '',
    enabled                   boolean NOT NULL DEFAULT true,
    periodic_scan             boolean NOT NULL DEFAULT false,
    periodic_scan_interval    integer NOT NULL DEFAULT 1440,  -- minutes
    scan_status               text NOT NULL DEFAULT 'NOT_SCANNED',
    scan_message              text NOT NULL DEFAULT '',
    last_scanned              timestamptz,                    -- when the last DONE scan ended
    scan_ended                timestamptz,                    -- when the last scan ended, DONE or FAILED
    auto_onboarding           boolean NOT NULL DEFAULT false,
    -- No ON DELETE: a policy a domain onboards with cannot be deleted (409).
    auto_onboarding_policy_id uuid REFERENCES sm_password_policies (id),
    endpoints                 jsonb NOT NULL,                 -- [Endpoint] without ldap_bind_password
    comment                   text NOT NULL DEFAULT '',
    created                   timestamptz NOT NULL DEFAULT now(),
    author                    text NOT NULL,
    updated                   timestamptz NOT NULL DEFAULT now(),
    updated_by                text NOT NULL
);
CREATE UNIQUE INDEX sm_target_domains_name ON sm_target_domains (lower(name));
CREATE INDEX sm_target_domains_policy ON sm_target_domains (auto_onboarding_policy_id);

-- A directory entry found by a scan. `identity` (source_id, else the DN) keeps it across
-- renames. `removed`: the last complete scan did not find it; its API state is derived
-- (REMOVED, else MANAGED when a managed account refers to it, else UNMANAGED).
CREATE TABLE sm_td_accounts (
    id               uuid PRIMARY KEY,
    domain_id        uuid NOT NULL REFERENCES sm_target_domains (id) ON DELETE CASCADE,
    identity         text NOT NULL,
    dn               text NOT NULL,
    username         text NOT NULL,
    email            text NOT NULL DEFAULT '',
    full_name        text NOT NULL DEFAULT '',
    source_id        text NOT NULL DEFAULT '',
    security_id      text NOT NULL DEFAULT '',
    sam_account_name text NOT NULL DEFAULT '',
    additional_data  jsonb NOT NULL DEFAULT '{}',
    removed          boolean NOT NULL DEFAULT false,
    ignored          boolean NOT NULL DEFAULT false,
    comment          text NOT NULL DEFAULT '',
    created          timestamptz NOT NULL DEFAULT now(),
    updated          timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT '',
    UNIQUE (domain_id, identity)
);
CREATE INDEX sm_td_accounts_username ON sm_td_accounts (domain_id, lower(username));

-- A scanned account the Secrets Manager manages. Its directory fields are its scanned account's.
CREATE TABLE sm_td_managed_accounts (
    id                    uuid PRIMARY KEY,
    domain_id             uuid NOT NULL REFERENCES sm_target_domains (id) ON DELETE CASCADE,
    account_id            uuid NOT NULL UNIQUE REFERENCES sm_td_accounts (id) ON DELETE CASCADE,
    password_policy_id    uuid NOT NULL REFERENCES sm_password_policies (id),  -- in use: 409 on delete
    enabled               boolean NOT NULL DEFAULT true,
    rotation_enabled      boolean NOT NULL DEFAULT true,
    explicit_checkout     boolean NOT NULL DEFAULT false,
    disable_rdp_cert_auth boolean NOT NULL DEFAULT false,
    state                 text NOT NULL DEFAULT 'PENDING',  -- PENDING | ACTIVE | FAILED (REMOVED is the scanned account's)
    comment               text NOT NULL DEFAULT '',
    access_roles          jsonb NOT NULL DEFAULT '[]',
    access_role_ids       text[] NOT NULL DEFAULT '{}',
    last_rotated          timestamptz,
    last_error            timestamptz,
    last_error_details    text,                             -- never a password
    rotation_given_up     timestamptz,                      -- retries ran out; the schedule waits a full interval
    created               timestamptz NOT NULL DEFAULT now(),
    author                text NOT NULL,
    updated               timestamptz NOT NULL DEFAULT now(),
    updated_by            text NOT NULL
);
CREATE INDEX sm_td_managed_accounts_domain ON sm_td_managed_accounts (domain_id);
CREATE INDEX sm_td_managed_accounts_policy ON sm_td_managed_accounts (password_policy_id);
CREATE INDEX sm_td_managed_accounts_roles ON sm_td_managed_accounts USING gin (access_role_ids);

CREATE TABLE sm_td_rotation_history (
    id                 bigserial PRIMARY KEY,
    managed_account_id uuid NOT NULL REFERENCES sm_td_managed_accounts (id) ON DELETE CASCADE,
    version            integer NOT NULL,
    rotated            timestamptz NOT NULL DEFAULT now(),
    trigger            text NOT NULL,  -- MANUAL | SCHEDULED | CHECKOUT_RELEASE | ONBOARDING | PASSWORD_SET
    status             text NOT NULL   -- SUCCESS | FAILED
);
CREATE INDEX sm_td_rotation_history_account ON sm_td_rotation_history (managed_account_id, id DESC);

-- Pending rotations of managed accounts, at most one each, claimed FOR UPDATE SKIP LOCKED.
CREATE TABLE sm_td_rotations (
    managed_account_id uuid PRIMARY KEY REFERENCES sm_td_managed_accounts (id) ON DELETE CASCADE,
    trigger            text NOT NULL,
    due                timestamptz NOT NULL DEFAULT now(),
    attempts           integer NOT NULL DEFAULT 0,
    created            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sm_td_rotations_due ON sm_td_rotations (due);

-- Checkouts of managed accounts; live while ended IS NULL AND expires > now(), as for hosts.
CREATE TABLE sm_td_checkouts (
    id                 uuid PRIMARY KEY,
    managed_account_id uuid NOT NULL REFERENCES sm_td_managed_accounts (id) ON DELETE CASCADE,
    user_id            text NOT NULL,
    explicit_checkout  boolean NOT NULL DEFAULT true,
    created            timestamptz NOT NULL DEFAULT now(),
    expires            timestamptz NOT NULL,
    ended              timestamptz,
    CHECK (expires > created)
);
CREATE INDEX sm_td_checkouts_open_by_account ON sm_td_checkouts (managed_account_id) WHERE ended IS NULL;
CREATE INDEX sm_td_checkouts_open_by_user ON sm_td_checkouts (user_id, created) WHERE ended IS NULL;
CREATE INDEX sm_td_checkouts_open_by_expiry ON sm_td_checkouts (expires) WHERE ended IS NULL;

-- Scans: at most one queued and one running per domain. A running scan holds a lease it
-- renews page by page; a worker that died lets its lease lapse and the scan is taken again.
CREATE TABLE sm_td_scans (
    id          bigserial PRIMARY KEY,
    domain_id   uuid NOT NULL REFERENCES sm_target_domains (id) ON DELETE CASCADE,
    state       text NOT NULL CHECK (state IN ('queued', 'running')),
    queued      timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz
);
CREATE UNIQUE INDEX sm_td_scans_one_queued ON sm_td_scans (domain_id) WHERE state = 'queued';
CREATE UNIQUE INDEX sm_td_scans_one_running ON sm_td_scans (domain_id) WHERE state = 'running';

-- What a running scan has read so far, page by page; merged into sm_td_accounts only when
-- the scan completes, so a failed scan changes nothing. Unlogged: it is rebuilt by a rescan.
CREATE UNLOGGED TABLE sm_td_scan_entries (
    scan_id          bigint NOT NULL REFERENCES sm_td_scans (id) ON DELETE CASCADE,
    identity         text NOT NULL,
    dn               text NOT NULL,
    username         text NOT NULL,
    email            text NOT NULL,
    full_name        text NOT NULL,
    source_id        text NOT NULL,
    security_id      text NOT NULL,
    sam_account_name text NOT NULL,
    additional_data  jsonb NOT NULL
);
-- Not unique: COPY cannot skip duplicates, so the merge keeps one entry per identity.
CREATE INDEX sm_td_scan_entries_identity ON sm_td_scan_entries (scan_id, identity);
