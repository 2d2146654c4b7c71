-- HashiCorp-style ACL policies for the KV v2 API (/v1) and the versioned API, bound to token
-- roles through external groups (vault_service.acl). `policy` is the text as written (HCL or
-- JSON); `rules` is its parsed form, so a process loading the policies never parses HCL.
CREATE TABLE vault_acl_policies (
    name       text PRIMARY KEY,
    policy     text NOT NULL,
    rules      jsonb NOT NULL,
    created    timestamptz NOT NULL DEFAULT now(),
    updated    timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT ''
);

-- An external group: applies to a token with a role whose id or name equals `name`.
CREATE TABLE vault_acl_groups (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    type       text NOT NULL DEFAULT 'external',
    policies   text[] NOT NULL DEFAULT '{}',
    metadata   jsonb NOT NULL DEFAULT '{}',
    created    timestamptz NOT NULL DEFAULT now(),
    updated    timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT ''
);

-- Bumped by every policy or group change, in the change's transaction: each process reads it
-- every few seconds and drops its compiled rules when it moved (one row, one integer).
CREATE TABLE vault_acl_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO vault_acl_generation DEFAULT VALUES;

-- Vault's `default` policy, reduced to the paths this server serves: it cannot be deleted, and
-- applies to every caller that has at least one group.
INSERT INTO vault_acl_policies (name, policy, rules) VALUES ('default',
'# Applies to every caller that has a group: its own token, its own capabilities, the mount preflight.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "sys/capabilities-self" {
  capabilities = ["update"]
}

path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}
',
'[{"path": "auth/token/lookup-self", "capabilities": ["read"]},
  {"path": "sys/capabilities-self", "capabilities": ["update"]},
  {"path": "sys/internal/ui/mounts/*", "capabilities": ["read"]}]');
