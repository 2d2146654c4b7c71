-- One account model: host accounts and managed directory accounts share one table of
-- checkouts, one rotation queue and one table of write-ahead rotation states, each keyed by
-- (account_kind, account_id). An account of either kind keeps its foreign key of its own
-- (host_account_id or managed_account_id: deleting the account still deletes its rows), and
-- account_id is whichever of the two is set. Today's rows move: sm_td_checkouts,
-- sm_td_rotations and sm_td_rotation_states are emptied into the shared tables and dropped.
-- The kinds' queue reasons stay their own words (hosts: manual | release | schedule; directory
-- accounts: MANUAL | SCHEDULED | CHECKOUT_RELEASE | ONBOARDING): they are what each kind's
-- audit trail and rotation history show. Rotation history is kept for directory accounts only
-- (sm_td_rotation_history; a host account's history is its Vault versions): nothing to join.

-- Each of the three tables takes the same shape: both foreign keys, the kind, and account_id
-- as whichever key is set; today's rows are host accounts'.
ALTER TABLE sm_rotations DROP CONSTRAINT sm_rotations_pkey;
ALTER TABLE sm_rotation_states DROP CONSTRAINT sm_rotation_states_pkey;
DROP INDEX sm_checkouts_open_by_account;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sm_checkouts', 'sm_rotations', 'sm_rotation_states'] LOOP
        EXECUTE format('ALTER TABLE %I RENAME COLUMN account_id TO host_account_id', t);
        EXECUTE format('ALTER TABLE %I ALTER COLUMN host_account_id DROP NOT NULL', t);
        EXECUTE format('ALTER TABLE %I ADD COLUMN managed_account_id uuid REFERENCES sm_td_managed_accounts (id)
                            ON DELETE CASCADE, ADD COLUMN account_kind text NOT NULL DEFAULT %L', t, 'host');
        EXECUTE format('ALTER TABLE %I ALTER COLUMN account_kind DROP DEFAULT', t);
        EXECUTE format('ALTER TABLE %I
                            ADD COLUMN account_id uuid NOT NULL
                                GENERATED ALWAYS AS (coalesce(host_account_id, managed_account_id)) STORED,
                            ADD CONSTRAINT %I CHECK (
                                (account_kind = %L AND host_account_id IS NOT NULL AND managed_account_id IS NULL)
                                OR (account_kind = %L AND managed_account_id IS NOT NULL AND host_account_id IS NULL))',
                       t, t || '_one_account', 'host', 'directory');
        -- (for the cascades of a deleted account)
        EXECUTE format('CREATE INDEX %I ON %I (host_account_id) WHERE host_account_id IS NOT NULL',
                       t || '_by_host_account', t);
        EXECUTE format('CREATE INDEX %I ON %I (managed_account_id) WHERE managed_account_id IS NOT NULL',
                       t || '_by_managed_account', t);
    END LOOP;
END $$;

-- Checkouts: live while ended IS NULL AND expires > now(), of either kind.
INSERT INTO sm_checkouts (id, account_kind, managed_account_id, user_id, explicit_checkout, created, expires, ended,
                          holder_role_ids, holder_admin)
     SELECT id, 'directory', managed_account_id, user_id, explicit_checkout, created, expires, ended,
            holder_role_ids, holder_admin
       FROM sm_td_checkouts;
DROP TABLE sm_td_checkouts;
CREATE INDEX sm_checkouts_open_by_account ON sm_checkouts (account_kind, account_id) WHERE ended IS NULL;

-- The rotation queue: at most one pending rotation per account, claimed FOR UPDATE SKIP LOCKED.
ALTER TABLE sm_rotations ADD PRIMARY KEY (account_kind, account_id);
INSERT INTO sm_rotations (account_kind, managed_account_id, reason, due, attempts, created)
     SELECT 'directory', managed_account_id, trigger, due, attempts, created FROM sm_td_rotations;
DROP TABLE sm_td_rotations;

-- Write-ahead rotation states (0002): the committed step of each rotation under way.
ALTER TABLE sm_rotation_states ADD PRIMARY KEY (account_kind, account_id);
INSERT INTO sm_rotation_states (account_kind, managed_account_id, rotation_id, step, previous_version, pending_version,
                                reason, started, updated)
     SELECT 'directory', managed_account_id, rotation_id, step, previous_version, pending_version, reason, started,
            updated
       FROM sm_td_rotation_states;
DROP TABLE sm_td_rotation_states;
