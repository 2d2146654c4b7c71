-- The workflow engine's grants as the Vault honours them (vault_service.grants): the Secrets
-- Manager tells the Vault each grant's state over its service link (PUT /grants/{request_id});
-- the Vault never asks it. While a grant is live its role counts as the token's.

CREATE TABLE vault_grants (
    request_id      uuid PRIMARY KEY,   -- the access request that gave it
    user_id         text NOT NULL,      -- the token `sub` it counts for
    role_id         text NOT NULL,
    role_name       text NOT NULL,      -- ACL groups bind by role id or name
    grant_type      text NOT NULL CHECK (grant_type IN ('PERMANENT', 'TIME_RESTRICTED', 'FLOATING')),
    grant_start     timestamptz,        -- FLOATING: NULL until its first use (here or in the Secrets Manager)
    grant_end       timestamptz,        -- PERMANENT (and an unused FLOATING): NULL; enforced here by the clock
    floating_length integer NOT NULL DEFAULT 0,  -- hours
    unused_until    timestamptz,        -- FLOATING not yet used: lapses then
    ended           timestamptz,        -- ended by the Secrets Manager (revoke, deletion, expiry): final
    end_reason      text,
    sequence        bigint NOT NULL,    -- the Secrets Manager's number of the last state applied
    updated         timestamptz NOT NULL DEFAULT now()
);
-- What the per-process cache loads: the grants not ended.
CREATE INDEX vault_grants_open ON vault_grants (user_id) WHERE ended IS NULL;

-- Bumped by every grant change in its transaction; each process reads it every few seconds
-- and reloads its grants when it moved (as vault_acl_generation does for policies).
CREATE TABLE vault_grant_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO vault_grant_generation DEFAULT VALUES;
