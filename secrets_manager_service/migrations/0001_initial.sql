-- The Secrets Manager's state. Passwords are never stored here: they live only in
-- the Vault, at `hosts/{host_id}/{account}`. Durations are whole seconds.

-- How passwords are generated, kept, checked out and rotated.
CREATE TABLE sm_password_policies (
    id                       uuid PRIMARY KEY,
    name                     text NOT NULL UNIQUE,
    rotation_interval        bigint NOT NULL,   -- 0 = no scheduled rotation
    password_min_length      integer NOT NULL,
    password_max_length      integer NOT NULL,
    use_special_characters   boolean NOT NULL,
    use_lower_case           boolean NOT NULL,
    use_upper_case           boolean NOT NULL,
    use_numbers              boolean NOT NULL,
    max_versions             integer NOT NULL,  -- passed to the Vault for every account's secret
    number_of_retries        integer NOT NULL,
    retry_interval           bigint NOT NULL,
    max_concurrent_checkouts integer NOT NULL,  -- 0 = unlimited, 1 = exclusive
    max_checkout_duration    bigint NOT NULL,
    rotate_on_release        boolean NOT NULL,
    verify_after_rotation    boolean NOT NULL,
    created                  timestamptz NOT NULL DEFAULT now(),
    updated                  timestamptz NOT NULL DEFAULT now(),
    created_by               text NOT NULL,
    updated_by               text NOT NULL,
    CHECK (password_min_length <= password_max_length)
);

-- Scripts the SSH driver runs to change a password; placeholders are filled at rotation.
CREATE TABLE sm_script_templates (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    operating_system text NOT NULL,
    script           text NOT NULL,
    created          timestamptz NOT NULL DEFAULT now(),
    updated          timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    updated_by       text NOT NULL
);

-- A target host. The foreign keys have no ON DELETE: a policy or template in use
-- by a host cannot be deleted (the API answers 409).
CREATE TABLE sm_hosts (
    id                             uuid PRIMARY KEY,
    address                        text NOT NULL,
    port                           integer NOT NULL,
    operating_system               text NOT NULL,
    protocol                       text NOT NULL,
    certificate_validation_options text,
    use_main_account               boolean NOT NULL DEFAULT false,
    main_account                   text,
    password_policy_id             uuid NOT NULL REFERENCES sm_password_policies (id),
    script_template_id             uuid REFERENCES sm_script_templates (id),
    access_roles                   jsonb NOT NULL DEFAULT '[]',  -- [{id, name}] as registered
    access_role_ids                text[] NOT NULL DEFAULT '{}', -- the same ids, indexed for "hosts I may use"
    created                        timestamptz NOT NULL DEFAULT now(),
    updated                        timestamptz NOT NULL DEFAULT now(),
    created_by                     text NOT NULL,
    updated_by                     text NOT NULL
);
CREATE INDEX sm_hosts_access_role_ids ON sm_hosts USING gin (access_role_ids);
-- Deleting a policy or template checks these foreign keys; without an index that is a scan.
CREATE INDEX sm_hosts_policy ON sm_hosts (password_policy_id);
CREATE INDEX sm_hosts_template ON sm_hosts (script_template_id);

-- A managed account of a host. Its row is the lock that serialises checkouts of it,
-- so the concurrent-checkout limit holds across every replica.
CREATE TABLE sm_accounts (
    id                 uuid PRIMARY KEY,  -- managed_account_id
    host_id            uuid NOT NULL REFERENCES sm_hosts (id) ON DELETE CASCADE,
    account            text NOT NULL,
    last_rotated       timestamptz,
    last_error         text,             -- never contains a password
    last_error_details text,
    rotation_given_up  timestamptz,      -- retries ran out; the schedule waits a full interval from here
    created            timestamptz NOT NULL DEFAULT now(),
    created_by         text NOT NULL,
    updated            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (host_id, account)
);

-- Checkouts. A checkout is live while ended IS NULL AND expires > now(): reads never
-- wait for the worker to mark an expired one.
CREATE TABLE sm_checkouts (
    id                uuid PRIMARY KEY,
    account_id        uuid NOT NULL REFERENCES sm_accounts (id) ON DELETE CASCADE,
    user_id           text NOT NULL,
    explicit_checkout boolean NOT NULL DEFAULT true,
    created           timestamptz NOT NULL DEFAULT now(),
    expires           timestamptz NOT NULL,
    ended             timestamptz,       -- released, or marked expired by the worker
    CHECK (expires > created)
);
CREATE INDEX sm_checkouts_open_by_account ON sm_checkouts (account_id) WHERE ended IS NULL;
CREATE INDEX sm_checkouts_open_by_user ON sm_checkouts (user_id, created) WHERE ended IS NULL;
CREATE INDEX sm_checkouts_open_by_expiry ON sm_checkouts (expires) WHERE ended IS NULL;

-- Pending rotations, at most one per account; workers claim rows with
-- FOR UPDATE SKIP LOCKED, so any number of them may run.
CREATE TABLE sm_rotations (
    account_id uuid PRIMARY KEY REFERENCES sm_accounts (id) ON DELETE CASCADE,
    reason     text NOT NULL,            -- manual | release | schedule
    due        timestamptz NOT NULL DEFAULT now(),
    attempts   integer NOT NULL DEFAULT 0,
    created    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sm_rotations_due ON sm_rotations (due);
