-- The settings of the one KV v2 mount (HashiCorp's `config` endpoint), which apply to every
-- shared secret through either API: the default max_versions of new secrets (0 = 10),
-- cas_required for every write, and a delete_version_after (seconds; 0 = none, negative =
-- off for every secret). Exactly one row.
CREATE TABLE vault_kv_config (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_versions         integer NOT NULL DEFAULT 0,
    cas_required         boolean NOT NULL DEFAULT false,
    delete_version_after bigint NOT NULL DEFAULT 0,
    updated              timestamptz NOT NULL DEFAULT now(),
    updated_by           text NOT NULL DEFAULT ''
);
INSERT INTO vault_kv_config DEFAULT VALUES;
