-- last_error becomes the time of the last failure (the PrivX Go SDK decodes it as a time); the
-- message it held moves into last_error_details, in front of the facts already there. The
-- account's `updated` is the best time known for an old failure.
UPDATE sm_accounts
   SET last_error_details = last_error || coalesce(' (' || nullif(last_error_details, '') || ')', '')
 WHERE last_error IS NOT NULL;
ALTER TABLE sm_accounts
    ALTER COLUMN last_error TYPE timestamptz USING CASE WHEN last_error IS NULL THEN NULL ELSE updated END;

-- A rotation under way, written ahead (after CyberArk's CPM), one committed step at a time, so
-- that a worker killed or a Vault lost at any step leaves a state the next pass reconciles:
--   storing  the new password is being written to the Vault; the target is not touched yet
--   pending  the Vault holds it as version pending_version; the target is being changed
--   changed  the target accepted it; it is being verified and made current in the Vault
-- previous_version is the Vault version current when the rotation began (NULL: none known).
-- The row goes when the rotation is over, in the transaction that records how it ended.
CREATE TABLE sm_rotation_states (
    account_id       uuid PRIMARY KEY REFERENCES sm_accounts (id) ON DELETE CASCADE,
    rotation_id      uuid NOT NULL,
    step             text NOT NULL CHECK (step IN ('storing', 'pending', 'changed')),
    previous_version integer,
    pending_version  integer,
    reason           text NOT NULL,
    started          timestamptz NOT NULL DEFAULT now(),
    updated          timestamptz NOT NULL DEFAULT now()
);

-- The roles a checkout's holder had when checking out, so that an admin reading someone's
-- checkout can tell whether its holder still may use the account.
ALTER TABLE sm_checkouts ADD COLUMN holder_role_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE sm_checkouts ADD COLUMN holder_admin boolean NOT NULL DEFAULT false;
