-- Role registry: names learnt from the `roles` claims of verified tokens.
CREATE TABLE vault_roles (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    deleted boolean NOT NULL DEFAULT false
);

-- A secret: shared (owner_id = '') or personal (owner_id = the owner's user id).
-- Its data key is stored only wrapped by a master key (dek_key_id names which).
CREATE TABLE vault_secrets (
    id                   uuid PRIMARY KEY,
    owner_id             text NOT NULL DEFAULT '',
    name                 text NOT NULL,
    read_roles           text[] NOT NULL DEFAULT '{}',
    write_roles          text[] NOT NULL DEFAULT '{}',
    author               text NOT NULL,
    updated_by           text NOT NULL,
    created              timestamptz NOT NULL DEFAULT now(),
    updated              timestamptz NOT NULL DEFAULT now(),
    dek_key_id           text NOT NULL,
    dek_wrapped          bytea NOT NULL,
    current_version      integer NOT NULL DEFAULT 0,   -- highest version ever written
    max_versions         integer NOT NULL DEFAULT 10,  -- 0 = keep every version
    delete_version_after bigint NOT NULL DEFAULT 0,    -- seconds; 0 = never
    cas_required         boolean NOT NULL DEFAULT false,
    custom_metadata      jsonb NOT NULL DEFAULT '{}',
    UNIQUE (owner_id, name)
);
CREATE INDEX vault_secrets_read_roles ON vault_secrets USING gin (read_roles);
CREATE INDEX vault_secrets_write_roles ON vault_secrets USING gin (write_roles);
CREATE INDEX vault_secrets_name_pattern ON vault_secrets (owner_id, name text_pattern_ops);

-- Every written version; ciphertext is NULL once destroyed.
CREATE TABLE vault_secret_versions (
    secret_id     uuid NOT NULL REFERENCES vault_secrets (id) ON DELETE CASCADE,
    version       integer NOT NULL,
    ciphertext    bytea,
    created       timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    deletion_time timestamptz,
    destroyed     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (secret_id, version)
);
